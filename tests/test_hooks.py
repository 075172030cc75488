"""The caller's hooks: refused when they cannot be called, shielded when they fail."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pyarrow as pa
import pytest

from powerp_async import ExportSpec, PowerPClient, TimeRange, export
from powerp_async.errors import ConfigurationError
from powerp_async.events import RequestDone

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, expected_points

START = ANCHOR - timedelta(minutes=20)
ASYNC_REFUSED = (
    "expected a plain function, got an async one, which would never be awaited: "
    "the run calls its hooks in its own steps. Hand on what it is given instead, "
    "to a queue's put_nowait, say"
)


async def _async_hook(*args: object) -> None:
    """A hook written as a coroutine function."""


class _AsyncCallable:
    async def __call__(self, *args: object) -> None:
        """A hook whose calls are coroutines."""


@pytest.mark.parametrize("hook", [_async_hook, _AsyncCallable()])
def test_an_async_event_hook_is_refused_when_given(simulator, hook) -> None:
    with pytest.raises(ConfigurationError) as caught:
        PowerPClient(
            client_id="tester",
            client_secret=CLIENT_SECRET,
            base_url=simulator.base_url,
            on_event=hook,
        )

    assert str(caught.value) == f"on_event: {ASYNC_REFUSED}"


async def test_an_async_progress_hook_is_refused_before_the_folder_is_made(
    client, tmp_path
) -> None:
    spec = ExportSpec(out=tmp_path / "out", start=START, end=ANCHOR, databases=(2,))

    with pytest.raises(ConfigurationError) as caught:
        await export(client, spec, progress=_async_hook)

    assert str(caught.value) == f"progress: {ASYNC_REFUSED}"
    assert not spec.out.exists()


async def test_a_failing_progress_hook_is_logged_once_and_the_export_goes_on(
    client, tmp_path, caplog
) -> None:
    spec = ExportSpec(out=tmp_path / "out", start=START, end=ANCHOR, databases=(2,))
    calls = []

    def broken(stats: object, total: int) -> None:
        calls.append(total)
        raise ValueError("a progress bar with a bug")

    with caplog.at_level(logging.ERROR, logger="powerp_async.hooks"):
        report = await export(client, spec, progress=broken)

    assert report.complete
    assert len(calls) >= 2  # at least the first and the last word
    assert caplog.text.count("the progress hook failed") == 1
    assert "a progress bar with a bug" in caplog.text


async def test_a_hook_raising_cancelled_error_is_shielded_too(
    simulator, caplog
) -> None:
    # A CancelledError out of a plain function is the hook's own failure; let
    # through, it ended a worker as if the run were cancelled, losing its blocks.
    done: list[RequestDone] = []

    def cancelling(event: object) -> None:
        if isinstance(event, RequestDone):
            done.append(event)
            if len(done) == 2:
                raise asyncio.CancelledError

    async with PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        initial_rate=100,
        on_event=cancelling,
    ) as client:
        signals = [m for m in await client.measurements() if m.database_id == 2]
        with caplog.at_level(logging.ERROR, logger="powerp_async.hooks"):
            table = await client.fetch_table(signals, START, ANCHOR, window="1m")

    span = TimeRange.snap(START, ANCHOR, 60_000_000)
    assert_exact(
        pa.Table.from_batches(table.to_batches()),
        expected_points(simulator.tenant, signals, span),
    )
    assert caplog.text.count("the on_event hook failed") == 1
