"""Stop signals: one stop per command, however many signals come."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import anyio
import pytest

from powerp_async._export import MANIFEST_NAME
from powerp_async._stopping import StopSignals
from powerp_async.cli import _at_once_message

pytestmark = [
    pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="POSIX signals"),
    pytest.mark.skipif(
        threading.current_thread() is not threading.main_thread(),
        reason="signals are handled in the main thread only",
    ),
]


@pytest.fixture(autouse=True)
def ctrl_c_as_python_sets_it() -> Iterator[None]:
    """Ctrl-C raising KeyboardInterrupt, as Python sets it up, even where the tests
    were started with it ignored (a script's background job, say), which this
    process and its children would otherwise inherit."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def _default_ctrl_c() -> None:
    """In a child before it starts Python: Ctrl-C back to the system's default, which
    Python replaces with its own handler; an inherited "ignore" it would keep."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


async def _signalled_twice(
    first: signal.Signals, second: signal.Signals, raised: list[str]
) -> None:
    """Signal this process twice in a row, then wait to be cancelled; ``raised``
    gets every ``KeyboardInterrupt`` that lands in this code."""
    for number in (first, second):
        try:
            os.kill(os.getpid(), number)
        except KeyboardInterrupt:
            raised.append(number.name)

    await anyio.sleep(30)


def _run_signalled(
    first: signal.Signals, second: signal.Signals
) -> tuple[StopSignals, list[str]]:
    stops = StopSignals(lambda: "at once")
    raised: list[str] = []
    with stops.handled(), pytest.raises(KeyboardInterrupt):
        # The first signal cancels the run, which anyio.run ends as Ctrl-C does.
        anyio.run(stops.guarded, _signalled_twice, first, second, raised)

    return stops, raised


def test_a_repeated_sigterm_stops_the_run_once() -> None:
    stops, raised = _run_signalled(signal.SIGTERM, signal.SIGTERM)

    # Handed on twice, the second would raise wherever the event loop was.
    assert raised == []
    assert stops.terminated == [signal.SIGTERM]


def test_a_sigterm_after_ctrl_c_changes_nothing() -> None:
    stops, raised = _run_signalled(signal.SIGINT, signal.SIGTERM)

    assert raised == []
    assert stops.terminated == []


def test_a_sighup_after_sigterm_keeps_the_first_reason() -> None:
    stops, raised = _run_signalled(signal.SIGTERM, signal.SIGHUP)

    assert raised == []
    assert stops.terminated == [signal.SIGTERM]


def test_a_sigterm_where_ctrl_c_is_ignored_cancels_the_run_between_steps() -> None:
    # A script's background job ignores Ctrl-C: the loop installs no handler, and a
    # KeyboardInterrupt raised by hand would land wherever the loop was.
    stops = StopSignals(lambda: "at once")
    raised: list[str] = []
    ignoring = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with stops.handled(), pytest.raises(asyncio.CancelledError):
            anyio.run(
                stops.guarded, _signalled_twice, signal.SIGTERM, signal.SIGTERM, raised
            )
    finally:
        signal.signal(signal.SIGINT, ignoring)

    assert raised == []
    assert stops.terminated == [signal.SIGTERM]


def test_the_handlers_before_are_given_back() -> None:
    before = {
        number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)
    }

    _run_signalled(signal.SIGTERM, signal.SIGTERM)

    after = {
        number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)
    }
    assert after == before


def test_a_second_ctrl_c_ends_the_process_at_once() -> None:
    script = textwrap.dedent(
        """
        import os, signal, anyio
        from powerp_async._stopping import StopSignals

        async def twice():
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
            await anyio.sleep(30)

        stops = StopSignals(lambda: "powerp: stopped at once")
        with stops.handled():
            anyio.run(stops.guarded, twice)
        print("not reached")
        """
    )

    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_default_ctrl_c,
    )

    assert done.returncode == 130
    assert done.stderr == "powerp: stopped at once\n"
    assert done.stdout == ""


def test_the_at_once_line_gives_the_resume_command_once_a_journal_exists(
    tmp_path,
) -> None:
    out = tmp_path / "export"
    arguments = ["export", "--demo", "--since", "2h", "--out", str(out)]

    before = _at_once_message(arguments)
    out.mkdir()
    (out / MANIFEST_NAME).write_text("")

    assert before == (
        "powerp: interrupted again; stopped at once, without saving what was "
        "fetched since the last commit"
    )
    assert _at_once_message(arguments) == (
        f"{before}. Resume with: powerp export --out {out} --resume --demo"
    )
