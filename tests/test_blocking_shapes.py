"""Synchronous batches and DataFrames, from plain code and from a running loop."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta

import pyarrow as pa
import pytest

from powerp_async import POINT_SCHEMA, FetchFailedError, Measurement, blocking
from powerp_async.testing import SimulatorThread

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points, span_of
from .test_frames import frame_as_table

START = ANCHOR - timedelta(minutes=10)
WINDOW_US = 10_000_000


@pytest.fixture(scope="module")
def server():
    with SimulatorThread() as running:
        yield running


@pytest.fixture(scope="module")
def signals(server) -> list[Measurement]:
    return blocking.measurements(server.client_config())[:8]


def portal_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "powerp-blocking"]


def test_batches_in_a_plain_loop(server, signals) -> None:
    config = server.client_config(initial_rate=50)

    batches = list(blocking.fetch_batches(config, signals, START, ANCHOR, window="10s"))

    assert all(b.schema == POINT_SCHEMA and b.num_rows > 0 for b in batches)
    expected = expected_points(
        server.tenant, signals, span_of(START, ANCHOR, WINDOW_US)
    )
    assert_exact(pa.Table.from_batches(batches), expected)
    assert portal_threads() == []


def test_stopping_early_ends_the_fetch(server, signals) -> None:
    config = server.client_config(initial_rate=50)
    stream = blocking.fetch_batches(
        config, signals, START, ANCHOR, window="10s", block_size=1
    )

    first = next(stream)
    stream.close()

    assert first.num_rows > 0
    assert portal_threads() == []


def test_failed_block_raised_after_the_others(server, signals) -> None:
    config = server.client_config(initial_rate=50)
    ghost = Measurement(database_id=signals[0].database_id, index="no-such-signal")
    batches: list[pa.RecordBatch] = []

    def consume() -> None:
        for batch in blocking.fetch_batches(
            config, [*signals, ghost], START, ANCHOR, window="10s", block_size=1
        ):
            batches.append(batch)

    with pytest.raises(FetchFailedError) as caught:
        consume()

    assert [block.indexes for block, _ in caught.value.failures] == [
        ("no-such-signal",)
    ]
    expected = expected_points(
        server.tenant, signals, span_of(START, ANCHOR, WINDOW_US)
    )
    assert_exact(pa.Table.from_batches(batches, POINT_SCHEMA), expected)


def test_frame_in_a_plain_script(server, signals) -> None:
    config = server.client_config(initial_rate=50)

    frame = blocking.fetch_frame(config, signals, START, ANCHOR, window="10s")

    expected = expected_points(
        server.tenant, signals, span_of(START, ANCHOR, WINDOW_US)
    )
    assert_exact(frame_as_table(frame), expected)
    assert set(frame["name"]) == {m.name for m in signals}


def test_batches_and_frames_inside_a_running_loop(server, signals) -> None:
    config = server.client_config(initial_rate=50)

    async def notebook_cell() -> tuple[int, int]:
        # Plain calls from code that already runs in an event loop, as in Jupyter.
        rows = sum(
            batch.num_rows
            for batch in blocking.fetch_batches(
                config, signals, START, ANCHOR, window="10s"
            )
        )
        frame = blocking.fetch_frame(config, signals, START, ANCHOR, window="10s")
        return rows, len(frame)

    expected = expected_points(
        server.tenant, signals, span_of(START, ANCHOR, WINDOW_US)
    )
    assert asyncio.run(notebook_cell()) == (len(expected), len(expected))


def test_ctrl_c_while_waiting_stops_the_fetch(server, signals, monkeypatch) -> None:
    config = server.client_config(initial_rate=50)
    waits = []
    real_wait = blocking._next_batch

    def interrupted_second_wait(*args):
        waits.append(args)
        if len(waits) == 2:
            raise KeyboardInterrupt
        return real_wait(*args)

    monkeypatch.setattr(blocking, "_next_batch", interrupted_second_wait)
    received = []

    def consume() -> None:
        for batch in blocking.fetch_batches(
            config, signals, START, ANCHOR, window="10s", block_size=1
        ):
            received.append(batch)

    with pytest.raises(KeyboardInterrupt):
        consume()

    assert len(received) == 1
    assert received[0].num_rows > 0
    assert portal_threads() == []
