"""A pacer of the caller's: its rate checked, its failures kept to their blocks."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import pyarrow as pa
import pytest

from powerp_async import FixedPacer, PowerPClient, TimeRange
from powerp_async.errors import ConfigurationError, FetchFailedError, PowerPError
from powerp_async.models import Block, Measurement
from powerp_async.pacing import Permit
from powerp_async.simulator import Simulator

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, expected_points

START = ANCHOR - timedelta(hours=3)


class _CancellingPacer(FixedPacer):
    """A fixed pace whose third permit raises ``CancelledError`` instead."""

    def __init__(self) -> None:
        super().__init__(200)
        self.permits = 0

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        self.permits += 1
        if self.permits == 3:
            raise asyncio.CancelledError
        async with super().permit() as permit:
            yield permit


async def test_a_cancelled_error_from_the_pacer_fails_only_its_block(simulator) -> None:
    # Let through, it ended the workers as a cancellation would: all but 3 of the
    # blocks went missing from a run that raised nothing or named only those 3.
    signals: list[Measurement] = []
    with pytest.raises(FetchFailedError) as caught:
        await _fetch_with(simulator, _CancellingPacer(), signals)

    [(failed, error)] = caught.value.failures
    assert "a CancelledError was raised while it was fetched" in str(error)
    span = TimeRange.snap(START, ANCHOR, 60_000_000)
    expected = {
        key: value
        for key, value in expected_points(simulator.tenant, signals, span).items()
        if not _in_block(key, failed)
    }
    assert caught.value.fetched is not None
    assert_exact(pa.Table.from_batches(caught.value.fetched.to_batches()), expected)


async def _fetch_with(
    simulator: Simulator, pacer: FixedPacer, signals: list[Measurement]
) -> None:
    """Fetch database 2 through ``pacer``, its signals put in ``signals`` first."""
    async with PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        pacer=pacer,
    ) as client:
        signals += [m for m in await client.measurements() if m.database_id == 2]
        await client.fetch_table(signals, START, ANCHOR, window="1m")


def _in_block(key: tuple[int, str, str, int], block: Block) -> bool:
    """Whether the point ``key`` is one of ``block``'s; the simulator labels each
    window by its end."""
    database, index, aggregation, stamp_us = key
    return (
        database == block.database_id
        and aggregation == block.aggregation
        and index in block.indexes
        and block.start_us < stamp_us <= block.end_us
    )


class _CancellingOutage(FixedPacer):
    """A fixed pace whose second look at the outage (a second into a run that takes
    some two at this pace) raises ``CancelledError``."""

    def __init__(self) -> None:
        super().__init__(20)
        self.looks = 0

    @property
    def outage_s(self) -> float:
        self.looks += 1
        if self.looks == 2:
            raise asyncio.CancelledError
        return 0.0


async def test_a_cancelled_error_in_a_task_of_the_run_stops_it_with_an_error(
    simulator,
) -> None:
    # Let through, the outage watcher ended as if cancelled, the task group stopped
    # the run, and fetch_table returned part of the points without a word.
    with pytest.raises(PowerPError) as caught:
        await _fetch_with(simulator, _CancellingOutage(), [])

    assert str(caught.value) == (
        "the run stopped: a CancelledError was raised in it though nothing cancelled "
        "it (by the pacer, or a hook?)"
    )


@pytest.mark.parametrize("rate", [-1, 0, math.nan, math.inf, 0.0001, "20", True])
def test_a_fixed_pacer_refuses_a_rate_that_would_never_send(rate: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        FixedPacer(rate)  # type: ignore[arg-type]

    assert str(caught.value) == (
        f"FixedPacer: max_rate must be requests per second from 0.001 up, got {rate!r}"
    )
