"""The raw samples and aggregation windows of one request, shared by all its signals.

Every signal of the simulator is sampled at the same fixed base rate (10 Hz, on the
epoch grid), and a request's windows follow Flux ``aggregateWindow``: epoch-aligned
``[k*w, (k+1)*w)``, intersected with the half-open request range. A window that holds
no sample time can never yield a point, so only windows with samples are kept; this
also bounds the work of any request by its number of samples (under 18,000 in a
30-minute span) rather than by its number of windows.

The timestamps of a request are rendered once here and reused for every signal.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Final, Literal, TypeVar

import numpy as np

from .._time import US_PER_SECOND, from_epoch_us
from ._hashing import BlockPositions, IntArray, block_positions

SAMPLE_PERIOD_US: Final = 100_000
"""The base rate of every simulated signal: one raw sample each 100 ms."""

Label = Literal["stop", "start"]
T = TypeVar("T")

_SECOND_TEXT: Final = tuple(f"{second:02d}".encode() for second in range(60))


class RequestGrid:
    """Sample times and windows of one request range; immutable once built.

    ``window_first_sample[i]`` is the index in ``samples_us`` of the first sample of
    window ``i``; ``labels_us[i]`` is the window's clipped stop (or start).
    """

    __slots__ = (
        "_memo",
        "end_us",
        "label",
        "labels_us",
        "samples_us",
        "start_us",
        "window_first_sample",
        "window_us",
    )

    def __init__(
        self,
        start_us: int,
        end_us: int,
        window_us: int,
        label: Label,
        *,
        samples_end_us: int | None = None,
    ) -> None:
        """``samples_end_us`` ends the samples before ``end_us``: the window that
        holds now has only the samples recorded so far, and keeps its label."""
        if end_us <= start_us or window_us <= 0:
            raise ValueError(
                f"expected start < end and a positive window, got start={start_us} "
                f"end={end_us} window={window_us}"
            )

        self.start_us = start_us
        self.end_us = end_us
        self.window_us = window_us
        self.label = label
        first = -(-start_us // SAMPLE_PERIOD_US)
        samples_end_us = end_us if samples_end_us is None else samples_end_us
        stop = -(-min(end_us, samples_end_us) // SAMPLE_PERIOD_US)
        self.samples_us: IntArray = np.arange(first, stop, dtype=np.int64)
        self.samples_us *= SAMPLE_PERIOD_US
        window_ids = self.samples_us // window_us
        changes = np.flatnonzero(window_ids[1:] != window_ids[:-1]) + 1
        self.window_first_sample: IntArray = np.concatenate(
            (np.zeros(min(1, len(window_ids)), dtype=np.int64), changes)
        )
        self.labels_us = self._labels(window_ids[self.window_first_sample])
        self._memo: dict[Hashable, object] = {}

    def _labels(self, window_ids: IntArray) -> IntArray:
        window_starts = window_ids * self.window_us
        if self.label == "start":
            return np.maximum(window_starts, self.start_us)

        return np.minimum(window_starts + self.window_us, self.end_us)

    @property
    def window_count(self) -> int:
        return len(self.window_first_sample)

    def memo(self, key: Hashable, compute: Callable[[], T]) -> T:
        """Compute a per-request intermediate once (a weather channel, a state)."""
        if key not in self._memo:
            self._memo[key] = compute()

        return self._memo[key]  # type: ignore[return-value]

    def sample_windows(self) -> IntArray:
        """The window position of each sample."""

        def compute() -> IntArray:
            marks = np.zeros(len(self.samples_us), dtype=np.int64)
            marks[self.window_first_sample[1:]] = 1
            return np.cumsum(marks)

        return self.memo("sample_windows", compute)

    def block_offsets(self, block_us: int) -> BlockPositions:
        """Where the samples fall in epoch-aligned blocks of ``block_us`` (a grid
        with samples only)."""
        return self.memo(
            ("blocks", block_us), lambda: block_positions(self.samples_us, block_us)
        )

    def sample_counters(self) -> IntArray:
        """Sample numbers since the epoch, the counters of per-sample noise."""
        return self.memo("sample_counters", lambda: self.samples_us // SAMPLE_PERIOD_US)

    def timestamp_tails(self) -> list[bytes]:
        """``,"timestamp":"...Z"},`` for each window: the end of a point and a comma."""

        def compute() -> list[bytes]:
            stamps = render_timestamps(self.labels_us)
            return [b',"timestamp":"' + stamp + b'"},' for stamp in stamps]

        return self.memo("timestamp_tails", compute)


def render_timestamps(stamps_us: IntArray) -> list[bytes]:
    """RFC 3339 UTC times: whole seconds bare, else the fraction without trailing zeros.

    Work is done per distinct minute and per distinct fraction, since a request holds
    at most 31 minutes and, inside the range, only fractions of the window period.
    """
    seconds = stamps_us // US_PER_SECOND
    minutes = seconds // 60
    minute_text = {m: _minute_prefix(m) for m in np.unique(minutes).tolist()}
    micros = stamps_us - seconds * US_PER_SECOND
    fraction_text = {f: _fraction_suffix(f) for f in np.unique(micros).tolist()}
    return [
        minute_text[m] + _SECOND_TEXT[s] + fraction_text[f]
        for m, s, f in zip(
            minutes.tolist(),
            (seconds - minutes * 60).tolist(),
            micros.tolist(),
            strict=True,
        )
    ]


def format_timestamp(stamp_us: int) -> str:
    """One time as the API renders it, e.g. ``2026-12-04T10:00:00.2Z``."""
    return render_timestamps(np.array([stamp_us], dtype=np.int64))[0].decode()


def _minute_prefix(minute: int) -> bytes:
    moment = from_epoch_us(minute * 60 * US_PER_SECOND)
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"
        f"T{moment.hour:02d}:{moment.minute:02d}:"
    ).encode()


def _fraction_suffix(micros: int) -> bytes:
    if micros == 0:
        return b"Z"

    return b"." + f"{micros:06d}".rstrip("0").encode() + b"Z"
