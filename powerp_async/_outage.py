"""How long the server has failed every request, on the engine's own account.

The adaptive pacer knows an outage from its circuit breaker, but a fixed pace keeps
no such account, and ``max_outage_s`` must hold whatever the pace: the engine counts
from the first failure (a 5xx, no answer, or no token) after the last success, and
a success ends the count. A request that went unanswered counts from when it was
sent, so a run waits out ``max_outage_s`` or one request's timeout, whichever is
longer, rather than the two added up. A 429 neither starts nor ends it: the server
is up.

It also remembers whether every failure of the outage was a request that timed out:
a server that holds queries too large for it until the client gives up looks down,
and the error that ends the run says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class OutageClock:
    """Seconds since every request started failing; 0 while requests succeed.

    >>> now = [100.0]
    >>> outage = OutageClock(lambda: now[0])
    >>> outage.failed(); now[0] = 103.5; outage.failed(); outage.outage_s
    3.5
    >>> outage.succeeded(); outage.outage_s
    0.0
    >>> outage.failed(timed_out=True); outage.only_timeouts
    True
    """

    __slots__ = ("_clock", "_last_success", "_only_timeouts", "_since")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None
        self._last_success = -math.inf
        self._only_timeouts = False

    def failed(self, *, timed_out: bool = False, sent_at: float | None = None) -> None:
        """A request failed; ``timed_out`` if it went unanswered until the client's
        timeout. The outage starts when the first failed request was sent, if that
        is given and no request succeeded since: a server that stopped answering
        failed it from then on, not only once the client gave up waiting."""
        if self._since is None:
            now = self._clock()
            start = now if sent_at is None else max(sent_at, self._last_success)
            self._since = min(start, now)
            self._only_timeouts = timed_out
        elif not timed_out:
            self._only_timeouts = False

    def succeeded(self) -> None:
        self._since = None
        self._last_success = self._clock()
        self._only_timeouts = False

    @property
    def only_timeouts(self) -> bool:
        """Whether the outage so far is made of requests that timed out alone."""
        return self._since is not None and self._only_timeouts

    @property
    def outage_s(self) -> float:
        return 0.0 if self._since is None else self._clock() - self._since
