"""The synchronous calls, with and without an event loop already running."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest

from powerp_async import ExportSpec, blocking
from powerp_async.errors import AuthenticationError
from powerp_async.testing import SimulatorThread

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points, span_of

START = ANCHOR - timedelta(minutes=5)


@pytest.fixture(scope="module")
def server():
    with SimulatorThread() as running:
        yield running


def test_plain_script_use(server) -> None:
    config = server.client_config(initial_rate=50)

    signals = blocking.measurements(config)[:12]
    table = blocking.fetch_table(config, signals, START, ANCHOR, window="10s")

    expected = expected_points(server.tenant, signals, span_of(START, ANCHOR, 10**7))
    assert_exact(table, expected)


def test_works_inside_a_running_loop_as_in_a_notebook(server) -> None:
    config = server.client_config(initial_rate=50)

    async def notebook_cell() -> int:
        # A plain call from code that already runs in an event loop.
        return len(blocking.measurements(config))

    assert asyncio.run(notebook_cell()) == len(server.tenant.signals)


def test_errors_reach_the_caller(server) -> None:
    config = server.client_config().with_changes(client_secret="wrong")

    with pytest.raises(AuthenticationError):
        blocking.measurements(config)


def test_blocking_export(server, tmp_path) -> None:
    config = server.client_config(initial_rate=50)
    spec = ExportSpec(
        out=tmp_path / "out", start=START, end=ANCHOR, window="30s", databases=(2,)
    )

    report = blocking.export(config, spec)

    signals = [m for m in blocking.measurements(config) if m.database_id == 2]
    expected = expected_points(
        server.tenant, signals, span_of(START, ANCHOR, 3 * 10**7)
    )
    assert report.complete
    assert report.points == len(expected) > 0


def test_closing_batches_early_with_workers_waiting_is_quiet(server) -> None:
    config = server.client_config(initial_rate=100)
    signals = blocking.measurements(config)[:200]
    batches = blocking.fetch_batches(
        config, signals, ANCHOR - timedelta(hours=6), ANCHOR
    )

    first = next(batches)
    time.sleep(1.0)  # the workers fill the result buffer and wait on it
    batches.close()

    assert first.num_rows > 0
