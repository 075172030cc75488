"""Server-side counters: the ground truth that benchmarks compare clients against.

Counting is a few dictionary increments per request. Per-second counts are keyed by
wall-clock second, so they line up with what a client logs; they are kept for a day.
Each second holds the requests accepted, throttled and failed, and the points that
accepted queries delivered: a benchmark polls ``GET /_simulator/stats?since=<second>``
and appends the seconds it has not seen yet to its time series; ``&endpoint=query``
gives the seconds of the queries alone, without the token and listing requests.
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


class _Seconds:
    """Counts per wall-clock second, kept for ``RETAINED_SECONDS``."""

    __slots__ = ("_counts",)

    def __init__(self) -> None:
        self._counts: dict[int, list[int]] = {}

    def at(self, second: int) -> list[int]:
        counts = self._counts.get(second)
        if counts is None:
            counts = self._counts[second] = [0, 0, 0, 0]
            self._forget_before(second - RETAINED_SECONDS)

        return counts

    def _forget_before(self, oldest: int) -> None:
        # Seconds are inserted in order, so the stale ones are at the front.
        while self._counts:
            first = next(iter(self._counts))
            if first >= oldest:
                break

            del self._counts[first]

    def rows(self, since_second: int | None) -> list[dict[str, int]]:
        return [
            {
                "second": second,
                "accepted": a,
                "throttled": t,
                "failed": f,
                "points": p,
            }
            for second, (a, t, f, p) in self._counts.items()
            if since_second is None or second >= since_second
        ]


class SimulatorStats:
    """Requests by endpoint and status, tokens issued, points served, per-second load.

    A request is *accepted* when answered below 400, *throttled* on 429 and *failed*
    on any other status from 400 up, or when its answer was cut off (status 0). The
    per-second counts cover every endpoint, and are kept for each one apart too.
    """

    __slots__ = (
        "_by_endpoint",
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
        self._per_second = _Seconds()
        self._by_endpoint: dict[str, _Seconds] = {}

    def record(self, endpoint: str, status: int, points: int = 0) -> None:
        """Count one answer; ``points`` only count for an accepted one."""
        by_status = self.requests.setdefault(endpoint, {})
        by_status[status] = by_status.get(status, 0) + 1
        second = int(self._wall_clock())
        outcome = _outcome(status)
        if outcome == _ACCEPTED and points:
            self.points_served += points

        for seconds in (self._per_second, self._endpoint_seconds(endpoint)):
            counts = seconds.at(second)
            counts[outcome] += 1
            if outcome == _ACCEPTED and points:
                counts[_POINTS] += points

    def _endpoint_seconds(self, endpoint: str) -> _Seconds:
        seconds = self._by_endpoint.get(endpoint)
        if seconds is None:
            seconds = self._by_endpoint[endpoint] = _Seconds()

        return seconds

    def snapshot(
        self, since_second: int | None = None, endpoint: str | None = None
    ) -> dict[str, object]:
        """The counters as plain JSON-ready data; ``per_second`` from ``since_second``
        on when given, and of ``endpoint`` alone when given (the totals always cover
        the whole run and every endpoint)."""
        if endpoint is None:
            seconds = self._per_second
        else:
            seconds = self._by_endpoint.get(endpoint, _Seconds())
        return {
            "requests": {
                endpoint: {str(status): n for status, n in sorted(by_status.items())}
                for endpoint, by_status in sorted(self.requests.items())
            },
            "tokens_issued": self.tokens_issued,
            "points_served": self.points_served,
            "per_second": seconds.rows(since_second),
        }


def _outcome(status: int) -> int:
    if status == RESET_STATUS:
        return _FAILED

    if status < 400:
        return _ACCEPTED

    return _THROTTLED if status == THROTTLED_STATUS else _FAILED
