"""How long the server has failed every request, on the engine's own account.

The adaptive pacer knows an outage from its circuit breaker, but a fixed pace keeps
no such account, and ``max_outage_s`` must hold whatever the pace: the engine counts
from the first failure (a 5xx, no answer, or no token) after the last success, and
a success ends the count. A 429 neither starts nor ends it: the server is up.
"""

from __future__ import annotations

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
    """

    __slots__ = ("_clock", "_since")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._since: float | None = None

    def failed(self) -> None:
        if self._since is None:
            self._since = self._clock()

    def succeeded(self) -> None:
        self._since = None

    @property
    def outage_s(self) -> float:
        return 0.0 if self._since is None else self._clock() - self._since
