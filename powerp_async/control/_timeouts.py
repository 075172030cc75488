"""Whether a query that got no answer was too large, or the server is down.

Some servers meet a query too large for them not with 413 but with silence: the
backend works on it until a timeout, the client's own or a gateway's (504). Such a
timeout must teach the size search (:class:`~powerp_async.control.SizeMemory`) as a
413 would, and its block must be split rather than sent whole again; but a server
that answers nothing at all is down, and its timeouts belong to the circuit breaker.
:class:`TimeoutJudge` tells the two apart from the answers around the timeout, over
the time the query waited (at least ``MIN_LOOKBACK_S``):

- a query at least as large answered meanwhile: bad luck (a slow answer, a fault),
  not size; a plain failure, retried whole;
- only smaller queries answered: the size is the cause;
- nothing answered: the size is the cause if no query as large was ever answered
  and another query already went unanswered so (a single timeout is bad luck, and
  the query is sent again whole; two, of whatever sizes, are not), but only while
  the query is above an eighth of the first one that went unanswered so
  (``BLIND_HALVINGS``), since splitting costs a whole timeout per step (blocks
  refused so are cut in quarters, so the last step judged so reaches a sixteenth):
  a server on which even those time out is taken for down.

A 504 that came quickly is a fault like any other 5xx rather than a gateway that
waited for its backend and gave up, so it is taken for a query too large only on the
evidence of smaller queries answered meanwhile; one that took at least 2 s
(``GATEWAY_WAIT_S``), or a quarter of the client's own timeout where that is shorter
(``GATEWAY_WAIT_SHARE``), is judged as a timeout. Gateways give up after anything
from a few seconds to minutes: one that gave up after 4 s, where only the client's
own 60 s counted, held every full query of a whole-tenant export until the run
stopped as an outage, having fetched nothing.

Known shortcomings: a size limit below an eighth of the first query, met before any
answer at all, is taken for an outage; the breaker's probes then ask for the same
small size and time out as well, so the run ends after ``max_outage_s``, with an
error that says every request timed out and that smaller queries may be answered.
And a glitch that leaves several queries unanswered at once before any answer reads
as a size limit: their blocks are cut in quarters, and the search for a larger size
climbs back at the cost of some requests and held tries.
"""

from __future__ import annotations

from collections import deque
from typing import Final

MIN_LOOKBACK_S: Final = 10.0
"""Answers this recent count even for a query that failed at once (a quick 504): at
tens of requests per second a shorter look would often see too few to judge by."""

BLIND_HALVINGS: Final = 3
"""With no answer yet, timeouts split queries down to 2**-3 of the first one only."""


GATEWAY_WAIT_S: Final = 2.0
"""A 504 after this long is a gateway that waited for its backend and gave up,
rather than a quick fault like any other 5xx."""

GATEWAY_WAIT_SHARE: Final = 0.25
"""Or after this share of the client's timeout, where that is shorter."""


class TimeoutJudge:
    """Remembers the sizes of recent answers; see the module docstring.

    ``timeout_s`` is the client's timeout per request: the longest a query waits.
    """

    def __init__(self, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be above zero, got {timeout_s!r}")

        self._timeout_s = timeout_s
        self._horizon_s = max(timeout_s, MIN_LOOKBACK_S)
        self._answers: deque[tuple[float, int]] = deque()
        self._largest_points = 0
        """The largest query ever answered."""
        self._silent = False
        """Whether a query went unanswered since the latest answer (or the start)."""
        self._blind_floor_points: int | None = None

    def __repr__(self) -> str:
        return (
            f"<TimeoutJudge {len(self._answers)} recent answers, largest "
            f"{self._largest_points} points>"
        )

    def on_answered(self, now: float, points: int) -> None:
        """A query of ``points`` was answered at ``now``."""
        self._answers.append((now, points))
        self._largest_points = max(self._largest_points, points)
        self._silent = False
        oldest = now - self._horizon_s
        while self._answers[0][0] < oldest:
            self._answers.popleft()

    def too_large(
        self, now: float, sent_at: float, points: int, *, gateway: bool = False
    ) -> bool:
        """Whether a query of ``points`` sent at ``sent_at``, unanswered at ``now``
        (timed out, or answered 504 with ``gateway``), was too large for the server;
        else the server failed it, or is down."""
        if points < 2:
            return False  # nothing left to split

        since = now - max(now - sent_at, MIN_LOOKBACK_S)
        recent = [size for at, size in self._answers if at >= since]
        if recent:
            return max(recent) < points

        gateway_wait_s = min(GATEWAY_WAIT_S, GATEWAY_WAIT_SHARE * self._timeout_s)
        if gateway and now - sent_at < gateway_wait_s:
            return False

        if points <= self._largest_points:
            return False  # queries the server answered before go unanswered now

        if self._blind_floor_points is None:
            self._blind_floor_points = points >> BLIND_HALVINGS

        repeated, self._silent = self._silent, True
        return repeated and points > self._blind_floor_points
