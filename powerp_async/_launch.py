"""The ``powerp`` command's first step: load the command, stoppable from the start.

Loading the command takes about half a second (aiohttp, pyarrow, numpy). A Ctrl-C in
that time would show a traceback of the import, and a SIGTERM or SIGHUP would end the
process without a word, before the command has set up how it stops
(:mod:`powerp_async._stopping`). Here each of them ends it with one line and the
exit code of a stop; nothing was fetched or written yet.

This module imports nothing of the package's but the command itself, when asked.
"""

from __future__ import annotations

import errno
import io
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Final

STOPPED_BY: Final = {
    getattr(signal, name): how
    for name, how in (
        ("SIGINT", "interrupted"),
        ("SIGTERM", "terminated"),
        ("SIGHUP", "hung up"),
    )
    if hasattr(signal, name)
}
"""The signals that stop the command, and the word it ends with for each, while it
loads and once it runs."""

STANDARD_OUTPUT: Final = "standard output"
"""How errors name stdout, which has no file name of its own."""


class _Stopped(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def main(argv: Sequence[str] | None = None) -> int:
    """The ``powerp`` console script, and ``python -m powerp_async``."""
    _open_closed_streams()
    try:
        with _stops_raise():
            from .cli import main as run_command
    except _Stopped as stop:
        how = STOPPED_BY[stop.signum]
        print(f"powerp: {how} while starting; nothing was done", file=sys.stderr)
        return 128 + stop.signum

    try:
        return run_command(argv)
    except KeyboardInterrupt:
        # A Ctrl-C in the moment between the two ways of stopping, or after the
        # command's own was put away as it returned.
        print("powerp: interrupted", file=sys.stderr)
        return 128 + signal.SIGINT
    finally:
        # The command is over, its outcome said: a stop signal now (the second of
        # a supervisor's pair, say) has nothing left to stop, and must not turn the
        # exit code into its own while the interpreter shuts down.
        _ignore_stops()


def _ignore_stops() -> None:
    if threading.current_thread() is threading.main_thread():
        for signum in STOPPED_BY:
            signal.signal(signum, signal.SIG_IGN)


def _open_closed_streams() -> None:
    """Stand in for a standard stream started closed, which Python leaves ``None``.

    A closed stderr (``2>&-``) gets a sink: the command would otherwise fail at its
    first progress line, or print its errors to stdout. A closed stdout fails each
    write as a closed descriptor does: the points of ``powerp query`` must not go
    nowhere with an exit code of success (an export only loses its summary).
    """
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115 (the process's own)
    if sys.stdout is None:
        sys.stdout = _ClosedOutput()


class _ClosedOutput(io.TextIOBase):
    """A standard output that was closed before the command started."""

    def write(self, text: str) -> int:
        raise OSError(errno.EBADF, "it was closed", STANDARD_OUTPUT)

    def writable(self) -> bool:
        return True


@contextmanager
def _stops_raise() -> Iterator[None]:
    """Within: a stop signal raises :class:`_Stopped` where the import is. Signals
    are only handled in the main thread; elsewhere nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    previous: dict[int, Callable[[int, FrameType | None], object] | int | None] = {}
    try:
        for signum in STOPPED_BY:
            previous[signum] = signal.signal(signum, _raise_stopped)
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _raise_stopped(signum: int, frame: FrameType | None) -> None:
    del frame  # the handler's signature; where it landed does not matter
    raise _Stopped(signum)
