"""Server-side counters: the ground truth that benchmarks compare clients against.

Counting is a few dictionary increments per request. Per-second counts are keyed by
wall-clock second, so they line up with what a client logs; they are kept for a day.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

RETAINED_SECONDS: Final = 86_400
THROTTLED_STATUS: Final = 429


class SimulatorStats:
    """Requests by endpoint and status, tokens issued, points served, per-second load.

    A request is *accepted* when answered below 400, *throttled* on 429 and *failed*
    on any other status from 400 up.
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

    def record(self, endpoint: str, status: int) -> None:
        by_status = self.requests.setdefault(endpoint, {})
        by_status[status] = by_status.get(status, 0) + 1
        second = int(self._wall_clock())
        counts = self._per_second.get(second)
        if counts is None:
            counts = self._per_second[second] = [0, 0, 0]
            self._forget_before(second - RETAINED_SECONDS)

        counts[_outcome(status)] += 1

    def _forget_before(self, oldest: int) -> None:
        # Seconds are inserted in order, so the stale ones are at the front.
        while self._per_second:
            first = next(iter(self._per_second))
            if first >= oldest:
                break

            del self._per_second[first]

    def snapshot(self) -> dict[str, object]:
        """The counters as plain JSON-ready data."""
        return {
            "requests": {
                endpoint: {str(status): n for status, n in sorted(by_status.items())}
                for endpoint, by_status in sorted(self.requests.items())
            },
            "tokens_issued": self.tokens_issued,
            "points_served": self.points_served,
            "per_second": [
                {"second": second, "accepted": a, "throttled": t, "failed": f}
                for second, (a, t, f) in self._per_second.items()
            ],
        }


def _outcome(status: int) -> int:
    if status < 400:
        return 0

    return 1 if status == THROTTLED_STATUS else 2
