"""How fast requests leave: the pacer seam and its fixed-rate implementation.

The engine asks a :class:`Pacer` for permission before each send and tells it how each
answer went. :class:`FixedPacer` holds a constant rate; an adaptive pacer that discovers
the server's limit plugs into the same three calls.
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

from aiolimiter import AsyncLimiter

logger = logging.getLogger("powerp_async.pacing")


@runtime_checkable
class Pacer(Protocol):
    """Decides when the next request may be sent."""

    async def acquire(self) -> None:
        """Wait until one more request may be sent."""

    def on_success(self, latency_s: float) -> None:
        """An answer came back well after ``latency_s`` seconds."""

    def on_throttle(self, sent_at: float, retry_after_s: float | None) -> None:
        """A request sent at monotonic time ``sent_at`` was answered with a 429."""

    @property
    def rate(self) -> float:
        """The current pace in requests per second."""


class FixedPacer:
    """A constant rate of ``max_rate`` requests per second (aiolimiter's leaky bucket).

    It does not slow down when throttled; retries are delayed by the engine instead.
    Created per client, never shared across event loops.
    """

    def __init__(self, max_rate: float) -> None:
        # A one-second bucket of ``max_rate`` lets a burst of that size out at start;
        # a bucket of one request spaced by 1/max_rate keeps the pace even instead.
        self._limiter = AsyncLimiter(1, 1 / max_rate)
        self._rate = max_rate
        self.throttles = 0

    def __repr__(self) -> str:
        return f"<FixedPacer {self._rate:g} req/s>"

    async def acquire(self) -> None:
        await self._limiter.acquire()

    def on_success(self, latency_s: float) -> None:
        pass

    def on_throttle(self, sent_at: float, retry_after_s: float | None) -> None:
        self.throttles += 1

    @property
    def rate(self) -> float:
        return self._rate
