"""A bound on the points being fetched at once, which is what costs memory.

The concurrency gate counts requests, but a request of 20 signals over 1,799 windows
brings about 2 MB of JSON and a small one a few kilobytes, so a count of requests that
is right for small blocks would let large ones fill memory. :class:`PointsInFlight`
lets a block start only while the points of the blocks started and not yet handed on
stay within a capacity; a block larger than the whole capacity goes alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from ._clock import Clock, MonotonicClock


class PointsInFlight:
    """Holds of points against a capacity; every release wakes the waiters to look."""

    def __init__(self, capacity: int, clock: Clock | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 point, got {capacity!r}")

        self.capacity = capacity
        self._clock: Clock = clock or MonotonicClock()
        self.used = 0
        self._released = anyio.Event()

    def __repr__(self) -> str:
        return f"<PointsInFlight {self.used:,}/{self.capacity:,}>"

    @asynccontextmanager
    async def hold(self, points: int) -> AsyncIterator[None]:
        """Wait until ``points`` fit, keep them for the ``async with`` block."""
        await self.acquire(points)
        try:
            yield
        finally:
            self.release(points)

    async def acquire(self, points: int) -> None:
        """Wait until ``points`` fit, then count them as in flight."""
        while self.used and self.used + points > self.capacity:
            await self._clock.wait(self._released)

        self.used += points

    def release(self, points: int) -> None:
        """Give back points taken with :meth:`acquire`."""
        self.used -= points
        released, self._released = self._released, anyio.Event()
        released.set()
