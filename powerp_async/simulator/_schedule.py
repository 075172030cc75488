"""Time inside a run, and limits that change during it.

A :class:`RunClock` measures seconds since the server started from the clock it was
given, so tests drive every limit with a fake clock. A :class:`Schedule` is the factor
applied to the configured rates at each moment: a step function that starts at 1. Its
integral is what a bucket refills by, so a rate change in the middle of a refill is
accounted exactly rather than at the next request.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable, Sequence


class RunClock:
    """Seconds since construction, read from ``clock`` (monotonic seconds)."""

    __slots__ = ("_clock", "_start_s")

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._start_s = clock()

    def elapsed_s(self) -> float:
        return self._clock() - self._start_s


class Schedule:
    """The factor on the limits over a run: 1 until the first step, then each step's.

    >>> Schedule(((30.0, 0.5), (60.0, 1.5))).integral(0.0, 90.0)
    90.0
    """

    __slots__ = ("_factors", "_offsets", "_totals")

    def __init__(self, steps: Sequence[tuple[float, float]] = ()) -> None:
        self._offsets = [0.0, *(float(offset) for offset, _ in steps)]
        self._factors = [1.0, *(float(factor) for _, factor in steps)]
        # _totals[i] is the integral from 0 to _offsets[i].
        spans = [b - a for a, b in itertools.pairwise(self._offsets)]
        weighted = (s * f for s, f in zip(spans, self._factors, strict=False))
        self._totals = [0.0, *itertools.accumulate(weighted)]

    @property
    def last_step_s(self) -> float:
        """When the factor last changes; it stays the same from then on."""
        return self._offsets[-1]

    def factor_at(self, elapsed_s: float) -> float:
        return self._factors[self._step(elapsed_s)]

    def integral(self, from_s: float, to_s: float) -> float:
        """The factor integrated over ``[from_s, to_s]``: rate-seconds at rate 1."""
        return self._integral_to(to_s) - self._integral_to(from_s)

    def time_to_gather(self, from_s: float, amount: float) -> float:
        """The earliest moment from ``from_s`` on by which ``amount`` has been gathered.

        ``amount`` is in rate-seconds: the integral of the factor that must pass.
        """
        target = self._integral_to(from_s) + amount
        step = max(0, bisect.bisect_right(self._totals, target) - 1)
        step = max(step, self._step(from_s))
        moment = (
            self._offsets[step] + (target - self._totals[step]) / self._factors[step]
        )
        return max(from_s, moment)

    def _step(self, elapsed_s: float) -> int:
        return max(0, bisect.bisect_right(self._offsets, elapsed_s) - 1)

    def _integral_to(self, elapsed_s: float) -> float:
        if elapsed_s <= 0:
            return elapsed_s  # before the run the factor is 1

        step = self._step(elapsed_s)
        return (
            self._totals[step] + (elapsed_s - self._offsets[step]) * self._factors[step]
        )
