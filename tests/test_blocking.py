"""The synchronous calls, with and without an event loop already running."""

from __future__ import annotations

import _thread
import asyncio
import signal
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from powerp_async import ExportSpec, blocking
from powerp_async.errors import AuthenticationError
from powerp_async.testing import SimulatorThread

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points, span_of
from .test_export import read_dataset

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
    # Not a word that paths of other tests hold: a secret is masked wherever it is.
    config = server.client_config().with_changes(client_secret="not-its-secret-2")

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


@pytest.fixture
def ctrl_c_raises() -> Iterator[None]:
    """Ctrl-C raising ``KeyboardInterrupt``, as in a terminal or a notebook: a suite
    started as a background job of a script (``cmd &``) inherits SIGINT ignored, and
    then the Ctrl-C these tests simulate would never arrive."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def _interrupt_after(delay_s: float) -> threading.Timer:
    """Ctrl-C, as a terminal would send it to this (the main) thread."""
    timer = threading.Timer(delay_s, _thread.interrupt_main, args=(signal.SIGINT,))
    timer.start()
    return timer


def _slow_spec(out) -> ExportSpec:
    return ExportSpec(
        out=out,
        start=ANCHOR - timedelta(hours=2),
        end=ANCHOR,
        window="10s",
        databases=(2,),
    )


def _run_cell(runner: str, cell) -> None:
    if runner == "asyncio.run":
        asyncio.run(cell())
        return

    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(cell())
    finally:
        loop.close()


@pytest.mark.parametrize("runner", ["run_until_complete", "asyncio.run"])
def test_ctrl_c_in_a_notebook_cell_stops_the_export_and_frees_its_folder(
    server, tmp_path, runner, ctrl_c_raises
) -> None:
    # A slow pace, so the export is far from done when Ctrl-C comes.
    config = server.client_config(max_rate=8, adaptive=False)
    spec = _slow_spec(tmp_path / "out")

    async def notebook_cell() -> None:
        blocking.export(config, spec)

    timer = _interrupt_after(1.0)
    with pytest.raises(KeyboardInterrupt):
        _run_cell(runner, notebook_cell)
    timer.join()

    # The folder is free at once; the resumed run fetches the rest, exactly.
    report = blocking.export(server.client_config(initial_rate=100), spec, resume=True)
    signals = [m for m in blocking.measurements(config) if m.database_id == 2]
    expected = expected_points(
        server.tenant, signals, span_of(spec.start, spec.end, 10**7)
    )
    assert report.complete
    assert report.points == len(expected) > report.points_this_run > 0
    assert_exact(read_dataset(spec.out), expected)
