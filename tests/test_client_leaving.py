"""Leaving a stream of results early: quietly, whatever the workers were doing."""

from __future__ import annotations

from datetime import timedelta

import anyio
import pytest

from powerp_async._engine import RESULT_BUFFER, RunStats

from .conftest import ANCHOR

START = ANCHOR - timedelta(hours=6)
END = ANCHOR
WAITING_BLOCKS = RESULT_BUFFER + 3
"""Enough blocks fetched to fill the result buffer and leave workers waiting on it."""


async def _until_workers_wait(stats: RunStats) -> None:
    # Polling on purpose: the counters offer no event to wait on.
    while stats.blocks_done < WAITING_BLOCKS:  # noqa: ASYNC110
        await anyio.sleep(0.01)

    # A moment more for the workers to reach the full buffer.
    await anyio.sleep(0.1)


async def test_break_with_a_full_buffer_leaves_quietly(client) -> None:
    signals = (await client.measurements())[:200]
    stats = RunStats()
    taken = 0

    async with client.fetch(signals, START, END, stats=stats) as results:
        async for _ in results:
            taken += 1
            await _until_workers_wait(stats)
            break

    assert taken == 1
    assert client.pacer.in_flight == 0


async def test_an_error_of_the_consumer_comes_through_unchanged(client) -> None:
    signals = (await client.measurements())[:200]
    stats = RunStats()

    async def consume() -> None:
        async with client.fetch(signals, START, END, stats=stats) as results:
            async for _ in results:
                await _until_workers_wait(stats)
                raise ValueError("the consumer's own error")

    with pytest.raises(ValueError, match="consumer's own") as raised:
        await consume()

    assert type(raised.value) is ValueError


async def test_leaving_batches_early_leaves_quietly(client) -> None:
    signals = (await client.measurements())[:200]
    taken = []
    async with client.fetch_batches(signals, START, END) as batches:
        async for batch in batches:
            taken.append(batch.num_rows)
            await anyio.sleep(1.0)
            break

    assert len(taken) == 1
    assert taken[0] > 0
