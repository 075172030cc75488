"""Progress, redrawn on a terminal or logged now and then; the run's summary."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from typing import Final, TextIO

from ._engine import RunStats
from ._export import ExportReport
from ._words import DROPPED_WHY, plural
from .control import AdaptivePacer, CircuitState
from .pacing import Pacer

LOG_INTERVAL_S: Final = 30.0
"""How often a progress line is written where it cannot be redrawn."""
SHOWN_HOLD_S: Final = 1.0
"""A hold the server's ``Retry-After`` asked for is shown from this long on."""


class ProgressLine:
    """Redraws one line on a terminal: blocks, points, requests, pace and ETA.

    With a pacer it also shows the request rate the client holds and how many
    requests are in flight, so a user sees the controller find the server's limit;
    with the adaptive pacer also the controller's mode, the concurrency limit and the
    breaker's state when it is not closed. Blocks cut to fit a size limit are counted.
    """

    def __init__(
        self,
        stream: TextIO,
        pacer: Pacer | None = None,
        columns: Callable[[], int] | None = None,
    ) -> None:
        self._stream = stream
        self._pacer = pacer
        self._columns = columns or _terminal_columns
        self._width = 0

    def __call__(self, stats: RunStats, total_blocks: int) -> None:
        # A line as wide as the terminal wraps, and "\r" then redraws only its last
        # row, leaving a new row behind at every redraw: so it is cut to fit, by one
        # column less, since a cursor in the last column wraps on some terminals.
        fits = self._columns() - 1
        line = _describe(stats, total_blocks, self._pacer)[:fits]
        self._stream.write("\r" + line.ljust(min(self._width, fits)))
        self._stream.flush()
        self._width = len(line)

    def close(self) -> None:
        if self._width:
            self._stream.write("\n")
            self._stream.flush()


class ProgressLog:
    """The same facts as :class:`ProgressLine`, as a plain line now and then.

    For a log file or a pipe, where a redrawn line would pile up: one line every
    ``interval_s`` (default :data:`LOG_INTERVAL_S`), so a long wait (a server that
    is down, say) still shows the run is alive, while a short run adds nothing to
    its summary.
    """

    def __init__(
        self,
        stream: TextIO,
        pacer: Pacer | None = None,
        interval_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._pacer = pacer
        self._interval_s = LOG_INTERVAL_S if interval_s is None else interval_s
        self._clock = clock
        self._next_s: float | None = None

    def __call__(self, stats: RunStats, total_blocks: int) -> None:
        now_s = self._clock()
        if self._next_s is None:
            self._next_s = now_s + self._interval_s
        if now_s < self._next_s:
            return

        self._next_s = now_s + self._interval_s
        line = _describe(stats, total_blocks, self._pacer)
        self._stream.write(f"powerp: {stats.elapsed_s:.0f} s: {line}\n")
        self._stream.flush()

    def close(self) -> None:
        """Nothing to end: every line is already whole."""


def _describe(stats: RunStats, total_blocks: int, pacer: Pacer | None) -> str:
    elapsed = max(stats.elapsed_s, 1e-6)
    pace = stats.points / elapsed
    done = stats.blocks_done + stats.blocks_failed
    line = (
        f"{done:,}/{total_blocks:,} blocks  {plural(stats.points, 'point')}  "
        f"{plural(stats.requests, 'request')}  {pace:,.0f} points/s  "
        f"ETA {_eta(done, total_blocks, stats)}"
    )
    if pacer is not None:
        line += "  " + _control(pacer)
    if stats.throttled or stats.retries:
        retries = plural(stats.retries, "retry", "retries")
        line += f"  ({stats.throttled} throttled, {retries})"
    cut = stats.presplit_blocks + stats.splits
    if cut:
        line += f"  {plural(cut, 'block')} cut to fit"
    if stats.signals_refused:
        line += f"  {plural(stats.signals_refused, 'signal block')} refused"
    return line


def _terminal_columns() -> int:
    """The terminal's width, read at every redraw since a window can be resized."""
    return shutil.get_terminal_size().columns


def _control(pacer: Pacer) -> str:
    """The pacer's state: rate and in flight, and for the adaptive one much more."""
    if not isinstance(pacer, AdaptivePacer):
        return f"{pacer.rate:.1f} req/s, {pacer.in_flight} in flight"

    # The pace is what the pacer allows; beside it, what the server answered well,
    # since a pace that grew while answers failed would read as the rate reached.
    # The limit follows the rate and the latency, so it may fall below the requests
    # already out (queries the server holds, say): "12 in flight (limit 2)" reads
    # as that, where "12/2" read as a miscount.
    snapshot = pacer.snapshot()
    text = (
        f"{snapshot.rate:.1f} req/s {snapshot.mode}, "
        f"{snapshot.accepted_rate:.1f} answered/s, "
        f"{snapshot.in_flight} in flight (limit {snapshot.concurrency_limit})"
    )
    if snapshot.circuit is not CircuitState.CLOSED:
        text += f", circuit {snapshot.circuit} {snapshot.circuit_open_s:.0f} s"
    if snapshot.hold_s >= SHOWN_HOLD_S:
        # Otherwise a wait for a quota window to reset looks like a stalled run.
        text += f", holding {snapshot.hold_s:.0f} s as the server asked"
    return text


def _eta(done: int, total: int, stats: RunStats) -> str:
    fresh = done - stats.blocks_resumed
    if fresh <= 0 or total <= done:
        return "--:--"
    seconds = int(stats.elapsed_s / fresh * (total - done))
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return (
        f"{hours}:{minutes:02d}:{seconds:02d}"
        if hours
        else f"{minutes:02d}:{seconds:02d}"
    )


def summary(report: ExportReport) -> str:
    """A few lines that say what the export holds and what it cost."""
    pace = report.points_this_run / report.elapsed_s if report.elapsed_s else 0.0
    state = "complete" if report.complete else "INCOMPLETE"
    lines = [
        f"Export {state}: {plural(report.points, 'point')} in "
        f"{plural(report.parts, 'file')}, "
        f"{report.blocks_committed:,}/{report.blocks_total:,} blocks",
        f"This run: {plural(report.points_this_run, 'point')}, "
        f"{plural(report.requests, 'request')}, "
        f"{plural(report.retries, 'retry', 'retries')}, {report.throttled} throttled, "
        f"{report.elapsed_s:.1f} s ({pace:,.0f} points/s)",
    ]
    if report.gaps:
        lines.append(
            f"{plural(len(report.gaps), 'signal range')} without data: returned "
            "empty or with every point dropped, or before the signal's first point "
            "as listed (see _report.json)"
        )
    if report.dropped_points:
        lines.append(
            f"Dropped {plural(report.dropped_points, 'point')} {DROPPED_WHY} (see "
            "_report.json)"
        )
    if report.unchecked_parts:
        lines.append(
            f"{plural(report.unchecked_parts, 'file')} committed by a version that "
            "recorded no sizes or checksums: a resume checks only that they exist"
        )
    if report.failures:
        lines.append(
            f"{plural(report.blocks_failed, 'block')} failed; "
            f"first: {report.failures[0]}"
        )
    return "\n".join(lines)
