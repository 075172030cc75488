"""How the ``powerp`` command stops on a signal: once, whatever comes after.

SIGTERM and SIGHUP stop a run as Ctrl-C does: the event loop's Ctrl-C handler
cancels the run, which commits what it fetched before it ends. One stop is all a run
needs, and signals often come more than once: ``timeout`` and many supervisors signal
both the process and its process group, and a user presses Ctrl-C again when the stop
takes a moment. So:

* a repeated SIGTERM or SIGHUP, or one that follows Ctrl-C, changes nothing;
* a second Ctrl-C ends the process at once, with exit code 130 and one line saying
  so, and leaves the rest of the stop undone: a resume fetches again whatever was not
  committed yet, as after ``kill -9``.

Python's own answer to a second Ctrl-C in an event loop is a ``KeyboardInterrupt``
raised wherever the loop happens to be, in the middle of some task's bookkeeping,
which can leave the loop's shutdown waiting forever for a task whose end was lost.
That is what a repeated SIGTERM did too, handed on to the same handler.

Signals can only be handled in the main thread; elsewhere (a host that runs
:func:`powerp_async.cli.main` in a thread) nothing is set up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from types import FrameType
from typing import Final, ParamSpec, TypeVar

STOP_SIGNALS: Final = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)
)
"""Signals that stop a run as Ctrl-C does; SIGHUP comes when the terminal closes."""

EXIT_AT_ONCE: Final = 130
"""The exit code of a second Ctrl-C, as of the first."""

_P = ParamSpec("_P")
_T = TypeVar("_T")

Handler = Callable[[int, FrameType | None], object]


class StopSignals:
    """The stop signals one command receives, and what each of them does.

    ``terminated`` holds the SIGTERM or SIGHUP that stopped the command, if one did;
    ``at_once`` gives the line written before a second Ctrl-C ends the process.
    """

    def __init__(self, at_once: Callable[[], str]) -> None:
        self.terminated: list[int] = []
        self._at_once = at_once
        self._stopping = False
        self._loop_handler: Handler | None = None
        self._cancel_run: Callable[[], object] | None = None

    @contextlib.contextmanager
    def handled(self) -> Iterator[StopSignals]:
        """Handle SIGTERM and SIGHUP while the block runs, and give the handlers
        before back on the way out, for a host that calls the command's ``main``."""
        if not _in_main_thread():
            yield self
            return

        previous = {
            number: signal.signal(number, self._on_stop) for number in STOP_SIGNALS
        }
        try:
            yield self
        finally:
            for number, handler in previous.items():
                signal.signal(number, handler)

    async def guarded(
        self, function: Callable[_P, Awaitable[_T]], *args: _P.args, **kwargs: _P.kwargs
    ) -> _T:
        """Await ``function`` with Ctrl-C guarded: the event loop's handler takes
        the first, and a second ends the process at once.

        Called as the event loop's main coroutine, after the loop has put its own
        Ctrl-C handler in place, which is put back before the loop ends.
        """
        loop_handler = signal.getsignal(signal.SIGINT)
        if not _in_main_thread():
            return await function(*args, **kwargs)

        if not callable(loop_handler):
            # Ctrl-C ignored (a script's background job): the loop has no handler to
            # hand a stop to, so the stop cancels the run's task itself, between two
            # of the loop's steps, never inside one.
            task = asyncio.current_task()
            assert task is not None
            loop = asyncio.get_running_loop()
            self._cancel_run = lambda: loop.call_soon_threadsafe(task.cancel)
            try:
                return await function(*args, **kwargs)
            finally:
                self._cancel_run = None

        self._loop_handler = loop_handler
        signal.signal(signal.SIGINT, self._on_ctrl_c)
        try:
            return await function(*args, **kwargs)
        finally:
            if signal.getsignal(signal.SIGINT) == self._on_ctrl_c:
                signal.signal(signal.SIGINT, loop_handler)
            self._loop_handler = None

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            return

        self.terminated.append(signum)
        self._stop(frame)

    def _on_ctrl_c(self, signum: int, frame: FrameType | None) -> None:
        if self._stopping:
            os.write(2, f"{self._at_once()}\n".encode())
            os._exit(EXIT_AT_ONCE)

        self._stop(frame)

    def _stop(self, frame: FrameType | None) -> None:
        """Hand the stop to the handler Ctrl-C has now: the event loop's while a run
        is going (it cancels the run), Python's outside it (``KeyboardInterrupt``).
        Where Ctrl-C is ignored (a script's background job), a run's task is
        cancelled, and ``KeyboardInterrupt`` raised outside a run."""
        self._stopping = True
        if self._cancel_run is not None:
            self._cancel_run()
            return

        handler = self._loop_handler or signal.getsignal(signal.SIGINT)
        if not callable(handler):
            raise KeyboardInterrupt

        handler(signal.SIGINT, frame)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()
