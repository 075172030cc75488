"""The rate after a cut: a cubic curve back to the limit and on past it.

After each cut the rate follows ``W_max * (1 - depth * (1 - t / K)**3)`` for the
first ``K`` seconds, from ``(1 - depth) * W_max`` at the cut back up to ``W_max``,
flat as it gets there; past ``K`` it goes on as ``W_max + c * (t - K)**3`` with
``c = 0.004 * W_max``, faster and faster, which finds a raised limit. Four kinds of
curve differ in depth and ``K``:

* **common**: depth 0.1 (the cut is to 0.9 times the accepted rate) and ``K`` about
  2.9 s at every scale, so ``c`` gives +10 % over ``W_max`` 2.9 s after the knee and
  twice ``W_max`` about 9 s after the cut. Below about 34 req/s, where each probe
  past the limit costs one 429 out of few requests, the approach to a limit met
  closely (accepted within 10 % of the rate that drew the 429) is stretched to 100
  requests' worth;
* **guess**: as common, but for a ``W_max`` guessed between bounds far apart (a
  first 429 after a stall, where the rate accepted was only a floor of the limit),
  ``K`` is 1 s and the climb past it three times as fast: twice ``W_max`` about
  3 s after the cut;
* **known**: the episodes pinned the limit down (``_ceiling``), so the cut is to
  0.98 times it and the approach lasts at least 4 s and 100 requests: the rate
  spends its time just below the limit instead of well below it. Past the knee the
  curve climbs at the common pace, so a raised limit is found as fast;
* **window**: the quota of a fixed window spread evenly over the next one, from 0.98
  of the pace that would use it all by the window's end up to that pace; past the
  end, if no refusal came, ``c`` is scaled to the window: +10 % after one window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

CUT_FACTOR: Final = 0.9
"""A common cut sets the rate to this share of the accepted rate."""

CUBIC_SCALE: Final = 0.004
"""``c = CUBIC_SCALE * W_max``; steeper curves probe faster but overshoot more."""

RECOVERY_KNEE_S: Final = ((1 - CUT_FACTOR) / CUBIC_SCALE) ** (1 / 3)
"""``K``: seconds after a common cut until the curve is back at ``W_max``."""

GUESS_KNEE_S: Final = 1.0
"""``K`` after a cut whose ``W_max`` is a guess between bounds far apart."""

PROBE_REQUESTS: Final = 100
"""At low rates ``K`` is stretched so that one probe cycle spans this many requests."""

CONFIRMED_LIMIT: Final = 0.1
"""A common ``K`` is stretched only if the accepted rate was this close to the
throttled one."""

KNOWN_CUT_FACTOR: Final = 0.98
"""A cut near a known limit sets the rate to this share of it."""

KNOWN_KNEE_S: Final = 4.0
"""The shortest ``K`` near a known limit."""

WINDOW_PACE_SHARE: Final = 0.98
"""A window's quota is paced to be used up to this share by the window's end."""


@dataclass(frozen=True, slots=True)
class RecoveryCurve:
    """The rate allowed after the cut at ``epoch``; see the module docstring."""

    w_max: float
    epoch: float
    knee_s: float
    depth: float = 1 - CUT_FACTOR
    probe_s: float = RECOVERY_KNEE_S
    """Past the knee, the rate is 10 % above ``w_max`` this long after it."""

    def __post_init__(self) -> None:
        positive = self.w_max > 0 and self.knee_s > 0 and self.probe_s > 0
        if not (positive and 0 < self.depth < 1):
            raise ValueError(f"RecoveryCurve expects positive figures, got {self!r}")

    @property
    def known(self) -> bool:
        """Whether the cut was shallower than a common one."""
        return self.depth < 1 - CUT_FACTOR

    @property
    def floor(self) -> float:
        """Where the curve starts, and the least rate until the next cut."""
        return (1 - self.depth) * self.w_max

    def rate_at(self, now: float) -> float:
        elapsed_s = now - self.epoch - self.knee_s
        if elapsed_s < 0:
            return self.w_max * (1 - self.depth * (-elapsed_s / self.knee_s) ** 3)
        # Past the knee the curve climbs at the common pace even where the approach
        # was stretched, so a raised limit is found as fast.
        progress = elapsed_s / self.probe_s
        return self.w_max * (1 + (1 - CUT_FACTOR) * progress**3)


def common_curve(
    w_max: float, throttled_rate: float, epoch: float, *, stretch: bool = True
) -> RecoveryCurve:
    """The cut to 0.9 times ``w_max``, with ``K`` common, or stretched (if allowed)
    where the rate that drew the 429 was within 10 % of the rate accepted: the cut
    then brackets the limit closely."""
    knee_s = RECOVERY_KNEE_S
    if stretch and w_max >= (1 - CONFIRMED_LIMIT) * throttled_rate:
        knee_s = max(RECOVERY_KNEE_S, PROBE_REQUESTS / w_max)
    return RecoveryCurve(w_max, epoch, knee_s)


def stretched_approach(w_max: float) -> bool:
    """Whether a limit met closely at ``w_max`` is approached over more than the
    common ``K``: below about 34 req/s, where each probe past it costs seconds."""
    return PROBE_REQUESTS / w_max > RECOVERY_KNEE_S


def guess_curve(w_max: float, epoch: float) -> RecoveryCurve:
    """The cut to 0.9 times a ``w_max`` guessed between a floor and a ceiling of the
    limit, probed three times as fast as a common one: back at ``w_max`` after
    ``GUESS_KNEE_S`` and twice it about 3 s after the cut."""
    return RecoveryCurve(w_max, epoch, GUESS_KNEE_S, probe_s=GUESS_KNEE_S)


def known_curve(limit: float, epoch: float) -> RecoveryCurve:
    """The shallow cut and slow approach near a limit the episodes agree on."""
    knee_s = max(KNOWN_KNEE_S, PROBE_REQUESTS / limit)
    return RecoveryCurve(limit, epoch, knee_s, depth=1 - KNOWN_CUT_FACTOR)


def window_curve(
    pace: float, start: float, end: float, window_s: float
) -> RecoveryCurve:
    """``pace`` held from ``start`` to ``end``, the window's reset, then probing on
    for a larger quota window by window: 10 % more after one, 80 % after two."""
    depth = 1 - WINDOW_PACE_SHARE
    return RecoveryCurve(pace, start, end - start, depth=depth, probe_s=window_s)
