"""Waits the server announced for everyone: a 503 with a ``Retry-After``.

The adaptive pacer stops sending while the server is down (its circuit breaker), but
a fixed pace learns nothing from answers: during an outage it would keep sending
first tries at the full rate, each refused, however long the server said to wait.
:class:`AnnouncedHold` keeps the latest such announcement and holds every request
until then; the engine uses it only for pacers without a breaker of their own, and
only once every request has failed for a moment (a lone 503 amid answers delays the
retry of its own block only).
A 429's ``Retry-After`` delays the retry of its own block only: under a fixed pace
the rate was chosen by the user, and the other requests keep it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import anyio

logger = logging.getLogger("powerp_async.engine.announced")


class AnnouncedHold:
    """The end of the latest wait a 503 announced; :meth:`wait` sleeps until then.

    >>> now = [10.0]
    >>> hold = AnnouncedHold(lambda: now[0])
    >>> hold.announced(5.0); hold.remaining_s
    5.0
    >>> now[0] = 14.0; hold.announced(0.5); hold.remaining_s
    1.0
    """

    __slots__ = ("_clock", "_until")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._until = 0.0

    @property
    def remaining_s(self) -> float:
        return max(0.0, self._until - self._clock())

    def announced(self, retry_after_s: float) -> None:
        """The server asked for ``retry_after_s`` seconds of quiet; a shorter wait
        than one announced before does not shorten it."""
        until = self._clock() + retry_after_s
        if until <= self._until:
            return

        if self.remaining_s == 0.0:
            logger.warning(
                "the server is unavailable and asked to wait %.1f s: holding every "
                "request until then",
                retry_after_s,
            )
        self._until = until

    async def wait(self) -> None:
        """Return once no announced wait is running."""
        # Polling on purpose: a later announcement may move the end while asleep.
        while (remaining_s := self.remaining_s) > 0:  # noqa: ASYNC110
            await anyio.sleep(remaining_s)
