"""The scenario's limits on ``/v1/Query``: request rate, cost, size and concurrency.

Each limit is a policy (``async (request, handler) -> response``) that refuses or
passes a query. The meters behind them take the elapsed run time as an argument and
never read a clock themselves, so they can be checked exactly on a fake clock:

- :class:`TokenBucket` holds up to ``capacity`` units and refills at a rate scaled by
  the schedule, so in ``T`` seconds it admits at most ``rate * T + capacity`` units;
- :class:`FixedWindows` admits a count per window, windows counted from the start of
  the run, and tells a refused caller to come back when its window ends. A window's
  count is fixed when it opens, so a schedule step takes effect at the next window.

Only queries with a valid token are metered (``_exchange.limited_query``); the others
get their 401 or 400 from the handler.
"""

from __future__ import annotations

import logging
import math
from typing import Final

from aiohttp import web

from ._answers import Answers, proxy_page
from ._exchange import is_authorized, is_query, limited_query
from ._scenario import CostQuota, RequestLimit, SizeLimit
from ._schedule import RunClock, Schedule
from ._settings import Handler

logger = logging.getLogger("powerp_async.simulator.limits")

TOLERANCE: Final = 1e-9
"""Float slack when comparing tokens, so ``rate * T + burst`` admits exactly that."""

IN_FLIGHT_RETRY_AFTER_S: Final = 1.0
"""A concurrency refusal has no natural end; one second is what servers usually say."""


class TokenBucket:
    """Up to ``capacity`` units, refilled at ``rate_per_s`` times the factor."""

    __slots__ = ("_capacity", "_rate_per_s", "_schedule", "_tokens", "_updated_s")

    def __init__(self, rate_per_s: float, capacity: float, schedule: Schedule) -> None:
        self._rate_per_s = rate_per_s
        self._capacity = capacity
        self._schedule = schedule
        self._tokens = capacity
        self._updated_s = 0.0

    def rate_at(self, elapsed_s: float) -> float:
        return self._rate_per_s * self._schedule.factor_at(elapsed_s)

    def take(self, elapsed_s: float, units: float = 1.0) -> float:
        """Take ``units`` and return 0, or take none and return the seconds to wait."""
        self._refill(elapsed_s)
        if self._tokens + TOLERANCE >= units:
            self._tokens -= units
            return 0.0

        missing = (units - self._tokens) / self._rate_per_s
        return self._schedule.time_to_gather(elapsed_s, missing) - elapsed_s

    def _refill(self, elapsed_s: float) -> None:
        if elapsed_s <= self._updated_s:
            return

        gained = self._rate_per_s * self._schedule.integral(self._updated_s, elapsed_s)
        self._tokens = min(self._capacity, self._tokens + gained)
        self._updated_s = elapsed_s


class FixedWindows:
    """``per_window`` times the schedule factor, per window of ``window_s``."""

    __slots__ = ("_count", "_index", "_per_window", "_schedule", "_window_s")

    def __init__(self, per_window: int, window_s: float, schedule: Schedule) -> None:
        self._per_window = per_window
        self._window_s = window_s
        self._schedule = schedule
        self._index = 0
        self._count = 0

    def take(self, elapsed_s: float) -> float:
        """Count one and return 0, or return the seconds left in the current window."""
        index = math.floor(elapsed_s / self._window_s)
        if index != self._index:
            self._index, self._count = index, 0

        if self._count < self.limit_of(index):
            self._count += 1
            return 0.0

        return (index + 1) * self._window_s - elapsed_s

    def limit_of(self, index: int) -> int:
        """The count window ``index`` admits; a schedule step applies from the next
        window on, since a window's quota is set when it opens."""
        factor = self._schedule.factor_at(index * self._window_s)
        return math.floor(self._per_window * factor + TOLERANCE)


class RequestRateLimit:
    """429 for queries beyond the request rate, with ``Retry-After``."""

    __slots__ = ("_answers", "_limit", "_meter", "_run")

    def __init__(
        self, limit: RequestLimit, schedule: Schedule, run: RunClock, answers: Answers
    ) -> None:
        self._limit = limit
        self._run = run
        self._answers = answers
        self._meter: TokenBucket | FixedWindows
        if limit.window_s is None:
            self._meter = TokenBucket(limit.rate_per_s, limit.burst, schedule)
        else:
            self._meter = FixedWindows(limit.per_window, limit.window_s, schedule)

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if not is_query(request) or not is_authorized(request):
            return await handler(request)

        elapsed_s = self._run.elapsed_s()
        wait_s = self._meter.take(elapsed_s)
        if wait_s <= 0:
            return await handler(request)

        logger.debug("query throttled by the request limit for %.3f s", wait_s)
        message = (
            f"too many queries: expected at most {self._allowed(elapsed_s)}, got one "
            f"more; retry in {wait_s:.3f} s"
        )
        return await self._answers.refuse(429, "rate_limited", message, wait_s)

    def _allowed(self, elapsed_s: float) -> str:
        if isinstance(self._meter, TokenBucket):
            rate_per_s = self._meter.rate_at(elapsed_s)
            return f"{rate_per_s:g} per second (burst {self._limit.burst})"

        window_s = self._limit.window_s or 1.0
        count = self._meter.limit_of(math.floor(elapsed_s / window_s))
        return f"{count} per {window_s:g} s window"


class CostLimit:
    """429 for queries beyond the points quota; 413 for one larger than the bucket."""

    __slots__ = ("_answers", "_bucket", "_quota", "_run")

    def __init__(
        self, quota: CostQuota, schedule: Schedule, run: RunClock, answers: Answers
    ) -> None:
        self._quota = quota
        self._run = run
        self._answers = answers
        self._bucket = TokenBucket(quota.points_per_s, quota.capacity_points, schedule)

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        query = await limited_query(request)
        if query is None:
            return await handler(request)

        cost = query.cost_points
        if cost > self._quota.capacity_points:
            message = (
                f"the query costs {cost} points: expected at most "
                f"{self._quota.capacity_points:g} points at once; ask for fewer "
                "signals or a shorter range"
            )
            return await self._answers.refuse(413, "query_too_costly", message)

        elapsed_s = self._run.elapsed_s()
        wait_s = self._bucket.take(elapsed_s, cost)
        if wait_s <= 0:
            return await handler(request)

        logger.debug("query of %d points over the quota for %.3f s", cost, wait_s)
        message = (
            "points quota exhausted: expected at most "
            f"{self._bucket.rate_at(elapsed_s):g} points per second, got a query of "
            f"{cost} points; retry in {wait_s:.3f} s"
        )
        return await self._answers.refuse(429, "quota_exceeded", message, wait_s)


class SizeCap:
    """413 for a query over ``max_points`` (or ``max_signals``), or a long hold and a
    504."""

    __slots__ = ("_answers", "_limit")

    def __init__(self, limit: SizeLimit, answers: Answers) -> None:
        self._limit = limit
        self._answers = answers

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        query = await limited_query(request)
        if query is None or not self._over(query.cost_points, len(query.signals)):
            return await handler(request)

        if self._limit.answer == "timeout":
            logger.debug("holding a query of %d points", query.cost_points)
            await self._answers.hold(self._limit.hold_s)
            text = f"The backend gave no answer within {self._limit.hold_s:g} s."
            return proxy_page(504, text)

        message = (
            f"the query asks for {len(query.signals)} signals x "
            f"{query.window_count} windows = {query.cost_points} points: expected at "
            f"most {self._limit.max_points} points"
            f"{self._signals_said()} per query; ask for fewer signals or a shorter "
            "range"
        )
        return await self._answers.refuse(413, "query_too_large", message)

    def _over(self, points: int, signals: int) -> bool:
        most = self._limit.max_signals
        return points > self._limit.max_points or (most is not None and signals > most)

    def _signals_said(self) -> str:
        most = self._limit.max_signals
        return "" if most is None else f" and {most} signals"


class InFlightCap:
    """429 for a query while ``max_in_flight`` others are still being answered."""

    __slots__ = ("_answers", "_in_flight", "_max_in_flight")

    def __init__(self, max_in_flight: int, answers: Answers) -> None:
        self._max_in_flight = max_in_flight
        self._answers = answers
        self._in_flight = 0

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if not is_query(request) or not is_authorized(request):
            return await handler(request)

        if self._in_flight >= self._max_in_flight:
            message = (
                f"too many queries at once: expected at most {self._max_in_flight} "
                f"in flight, got {self._in_flight + 1}"
            )
            wait_s = IN_FLIGHT_RETRY_AFTER_S
            return await self._answers.refuse(
                429, "too_many_in_flight", message, wait_s
            )

        self._in_flight += 1
        try:
            return await handler(request)
        finally:
            self._in_flight -= 1
