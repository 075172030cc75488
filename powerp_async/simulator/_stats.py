"""Server-side counters: the ground truth that benchmarks compare clients against.

Counting is a few dictionary increments per request. Per-second counts are keyed by
wall-clock second, so they line up with what a client logs; they are kept for a day.
Each second holds the requests accepted, throttled and failed, and the points that
accepted queries delivered: a benchmark polls ``GET /_simulator/stats?since=<second>``
and appends the seconds it has not seen yet to its time series.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

RETAINED_SECONDS: Final = 86_400
THROTTLED_STATUS: Final = 429
RESET_STATUS: Final = 0
"""Recorded for an answer cut off by a closed connection: no status reached the
client (load testers such as k6 report these the same way)."""

_ACCEPTED, _THROTTLED, _FAILED, _POINTS = range(4)


class SimulatorStats:
    """Requests by endpoint and status, tokens issued, points served, per-second load.

    A request is *accepted* when answered below 400, *throttled* on 429 and *failed*
    on any other status from 400 up, or when its answer was cut off (status 0).
    """

    __slots__ = (
        "_per_second",
        "_wall_clock",
        "points_served",
        "requests",
        "tokens_issued",
    )

    def __init__(self, wall_clock: Callable[[], float] = time.time) -> None:
        self._wall_clock = wall_clock
        self.requests: dict[str, dict[int, int]] = {}
        self.tokens_issued = 0
        self.points_served = 0
        self._per_second: dict[int, list[int]] = {}

    def record(self, endpoint: str, status: int, points: int = 0) -> None:
        """Count one answer; ``points`` only count for an accepted one."""
        by_status = self.requests.setdefault(endpoint, {})
        by_status[status] = by_status.get(status, 0) + 1
        counts = self._counts_now()
        outcome = _outcome(status)
        counts[outcome] += 1
        if outcome == _ACCEPTED and points:
            self.points_served += points
            counts[_POINTS] += points

    def _counts_now(self) -> list[int]:
        second = int(self._wall_clock())
        counts = self._per_second.get(second)
        if counts is None:
            counts = self._per_second[second] = [0, 0, 0, 0]
            self._forget_before(second - RETAINED_SECONDS)

        return counts

    def _forget_before(self, oldest: int) -> None:
        # Seconds are inserted in order, so the stale ones are at the front.
        while self._per_second:
            first = next(iter(self._per_second))
            if first >= oldest:
                break

            del self._per_second[first]

    def snapshot(self, since_second: int | None = None) -> dict[str, object]:
        """The counters as plain JSON-ready data; ``per_second`` from ``since_second``
        on when given (the totals always cover the whole run)."""
        return {
            "requests": {
                endpoint: {str(status): n for status, n in sorted(by_status.items())}
                for endpoint, by_status in sorted(self.requests.items())
            },
            "tokens_issued": self.tokens_issued,
            "points_served": self.points_served,
            "per_second": [
                {
                    "second": second,
                    "accepted": a,
                    "throttled": t,
                    "failed": f,
                    "points": p,
                }
                for second, (a, t, f, p) in self._per_second.items()
                if since_second is None or second >= since_second
            ],
        }


def _outcome(status: int) -> int:
    if status == RESET_STATUS:
        return _FAILED

    if status < 400:
        return _ACCEPTED

    return _THROTTLED if status == THROTTLED_STATUS else _FAILED
