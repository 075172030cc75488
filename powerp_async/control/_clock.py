"""Where rate control reads the time and waits: a real clock and a virtual one.

Every wait in this package goes through a :class:`Clock`, so tests can replace the
passage of time. :class:`MonotonicClock` reads ``time.monotonic`` (the same clock the
engine stamps requests with) and sleeps on the event loop. :class:`FakeClock` keeps a
virtual time that moves only when a test tells it to, and then wakes each sleeper in
deadline order, letting all tasks run to a standstill between two wake-ups.

A wait is "until this event is set, or until this deadline", which is what a pacer
needs: it sleeps until its next slot but must wake early when the rate changes.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Final, Protocol

import anyio
import anyio.lowlevel

MAX_SETTLE_ROUNDS: Final = 10_000
"""Event-loop rounds a :class:`FakeClock` allows for tasks to come to a standstill."""


class Clock(Protocol):
    """A source of monotonic time in seconds, and waits measured against it."""

    def now(self) -> float:
        """The current time in seconds; only differences between readings matter."""

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now()`` has reached ``deadline``."""

    async def wait(self, event: anyio.Event, deadline: float = math.inf) -> None:
        """Return once ``event`` is set or ``now()`` has reached ``deadline``."""


class MonotonicClock:
    """The real clock: ``time.monotonic`` and the event loop's sleep."""

    def __repr__(self) -> str:
        return "<MonotonicClock>"

    def now(self) -> float:
        return time.monotonic()

    async def sleep_until(self, deadline: float) -> None:
        await anyio.sleep(max(0.0, deadline - time.monotonic()))

    async def wait(self, event: anyio.Event, deadline: float = math.inf) -> None:
        # The loop's timer may fire a hair early; callers re-read now() after waking.
        with anyio.move_on_after(max(0.0, deadline - time.monotonic())):
            await event.wait()


@dataclass(order=True, slots=True)
class _Alarm:
    deadline: float
    order: int
    event: anyio.Event = field(compare=False)


class FakeClock:
    """Virtual time for tests on the asyncio backend; it never sleeps for real.

    Time stands still until a driving task calls :meth:`advance` or
    :meth:`run_until`. Those fire the due deadlines one at a time, earliest first,
    and after each one let every other task run until all of them wait on this
    clock again. A task blocked on anything else (a lock, a stream) would stop time
    from moving, so :meth:`settle` raises instead of hanging when that happens.
    """

    def __init__(self, start_s: float = 0.0) -> None:
        self._now = start_s
        self._alarms: list[_Alarm] = []
        self._waiting = 0
        self._order = itertools.count()
        self._activity = 0

    def __repr__(self) -> str:
        return f"<FakeClock at {self._now:.6f} s, {self._waiting} waiting>"

    def now(self) -> float:
        return self._now

    async def sleep(self, delay_s: float) -> None:
        """Wait ``delay_s`` virtual seconds."""
        await self.sleep_until(self._now + delay_s)

    async def sleep_until(self, deadline: float) -> None:
        await self.wait(anyio.Event(), deadline)

    async def wait(self, event: anyio.Event, deadline: float = math.inf) -> None:
        self._activity += 1
        if event.is_set() or deadline <= self._now:
            await anyio.lowlevel.checkpoint()
            return

        if math.isfinite(deadline):
            heapq.heappush(self._alarms, _Alarm(deadline, next(self._order), event))
        self._waiting += 1
        try:
            await event.wait()
        finally:
            self._waiting -= 1
            self._activity += 1

    async def advance(self, delta_s: float) -> None:
        """Move time forward by ``delta_s`` seconds, running every task on the way."""
        if not delta_s >= 0:
            raise ValueError(f"delta_s must be zero or more, got {delta_s!r}")
        await self.run_until(self._now + delta_s)

    async def run_until(self, deadline: float) -> None:
        """Move time forward to ``deadline``, waking sleepers in deadline order."""
        while True:
            await self.settle()
            alarm = self._next_alarm(deadline)
            if alarm is None:
                break

            self._now = max(self._now, alarm.deadline)
            alarm.event.set()

        self._now = max(self._now, deadline)

    async def settle(self) -> None:
        """Let every other task run until each one waits on this clock."""
        for _ in range(MAX_SETTLE_ROUNDS):
            activity = self._activity
            await asyncio.sleep(0)
            # A task that runs has just left a wait or is about to enter one. In a
            # round where no wait began or ended, no waiter resumed, so if every
            # other task is waiting on this clock, nothing is left to run.
            if self._activity != activity:
                continue
            if self._waiting >= len(asyncio.all_tasks()) - 1:
                return

        raise RuntimeError(
            f"tasks still running after {MAX_SETTLE_ROUNDS} event-loop rounds: "
            "expected every task other than the driver to wait on the FakeClock; "
            "one may be blocked on a lock, stream or real sleep instead"
        )

    def _next_alarm(self, limit: float) -> _Alarm | None:
        while self._alarms and self._alarms[0].deadline <= limit:
            alarm = heapq.heappop(self._alarms)
            # An alarm whose event was set early belongs to a wait that has ended.
            if not alarm.event.is_set():
                return alarm

        return None
