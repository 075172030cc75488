"""How many retries the client may spend: a token bucket and a share of traffic.

Retries of failed requests (5xx, resets, timeouts) are paid for from two limits:

* a bucket of tokens, as in botocore's retry quota: a retry costs 5 tokens (10 after a
  timeout, which ties up the server longer), every success puts 1 back, and a slow
  trickle refills it with time so that a run made only of retries cannot stall;
* a share: retries may be at most 10 % of the requests of the last 60 seconds (with a
  small allowance so a quiet client can still retry at all).

An empty budget *delays* a retry until it can be paid for; it never drops one. 429s are
not retries in this sense: throttled requests are governed by the rate controller.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from dataclasses import dataclass
from typing import Final

import anyio

from ..errors import ConfigurationError
from ._clock import Clock

logger = logging.getLogger("powerp_async.control.budget")

UNLIMITED: Final = math.inf


@dataclass(frozen=True, slots=True)
class BudgetSettings:
    """Sizes of the retry budget; costs and refills are in tokens."""

    capacity: float = 500.0
    retry_cost: float = 5.0
    timeout_cost: float = 10.0
    refill_per_success: float = 1.0
    refill_per_s: float = 1.0
    """Trickle that lets retries resume, slowly, when nothing succeeds."""
    max_retry_share: float = 0.1
    """Retries allowed per request sent, over ``share_window_s``."""
    share_window_s: float = 60.0
    min_retries_per_window: int = 10
    """Retries always allowed per ``share_window_s``, however few requests went out."""

    def __post_init__(self) -> None:
        for name in ("capacity", "retry_cost", "timeout_cost", "share_window_s"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigurationError(
                    f"BudgetSettings.{name} must be a number above zero, got {value!r}"
                )

        for name in (
            "refill_per_success",
            "refill_per_s",
            "max_retry_share",
            "min_retries_per_window",
        ):
            value = getattr(self, name)
            if not value >= 0:
                raise ConfigurationError(
                    f"BudgetSettings.{name} must be zero or more, got {value!r}"
                )

        if max(self.retry_cost, self.timeout_cost) > self.capacity:
            raise ConfigurationError(
                f"BudgetSettings.capacity ({self.capacity!r}) must hold at least one "
                f"retry (retry_cost {self.retry_cost!r}, "
                f"timeout_cost {self.timeout_cost!r})"
            )


class RetryBudget:
    """Pays for retries from a token bucket and a share of recent requests."""

    def __init__(self, clock: Clock, settings: BudgetSettings | None = None) -> None:
        self.settings = settings or BudgetSettings()
        self._clock = clock
        self._tokens = self.settings.capacity
        self._refilled_at = clock.now()
        self._requests: deque[float] = deque()
        self._retries: deque[float] = deque()
        self._changed: anyio.Event | None = None
        self.delayed = 0
        """Retries that had to wait for the budget."""
        self._holding = False
        """Whether the latest retry had to wait: a spell of waits is told once."""

    def __repr__(self) -> str:
        return f"<RetryBudget {self.level:.0f}/{self.settings.capacity:.0f} tokens>"

    @property
    def level(self) -> float:
        """Tokens in the bucket now."""
        self._refill(self._clock.now())
        return self._tokens

    def on_request(self, now: float) -> None:
        """A request (first attempt or retry) was sent."""
        self._requests.append(now)
        self._notify()

    def on_success(self, now: float) -> None:
        """A request succeeded: refill the bucket."""
        self._refill(now)
        self._tokens = min(
            self.settings.capacity, self._tokens + self.settings.refill_per_success
        )
        self._notify()

    def ready_at(self, now: float, *, after_timeout: bool = False) -> float:
        """The earliest time a retry could be paid for (``now`` if at once)."""
        self._refill(now)
        missing = self._cost(after_timeout) - self._tokens
        by_tokens = now
        if missing > 0:
            rate = self.settings.refill_per_s
            by_tokens = now + missing / rate if rate > 0 else UNLIMITED

        by_share = now
        allowed = self._allowed_retries(now)  # forgets retries out of the window
        if len(self._retries) + 1 > allowed:
            by_share = self._retries[0] + self.settings.share_window_s
        return max(by_tokens, by_share)

    def try_spend(self, *, after_timeout: bool = False) -> bool:
        """Pay for one retry if the budget allows it now; never waits."""
        now = self._clock.now()
        if self.ready_at(now, after_timeout=after_timeout) > now:
            return False

        self._tokens -= self._cost(after_timeout)
        self._retries.append(now)
        return True

    async def spend(self, *, after_timeout: bool = False) -> float:
        """Pay for one retry, waiting until the budget allows it; returns the wait."""
        started = self._clock.now()
        if self.try_spend(after_timeout=after_timeout):
            self._holding = False
            return 0.0

        self.delayed += 1
        log = logger.debug if self._holding else logger.warning
        self._holding = True
        log("retry budget: %s; delaying retries", self._spent_on(after_timeout))
        while not self.try_spend(after_timeout=after_timeout):
            deadline = self.ready_at(self._clock.now(), after_timeout=after_timeout)
            # A fresh event where the last one was set: a clock may set the event
            # it was given when its deadline passes (the FakeClock does), and the
            # other waiters would then spin on it.
            if self._changed is None or self._changed.is_set():
                self._changed = anyio.Event()
            await self._clock.wait(self._changed, deadline)

        return self._clock.now() - started

    def _spent_on(self, after_timeout: bool) -> str:
        """Which limit holds a retry back, in words."""
        window_s = self.settings.share_window_s
        if len(self._retries) + 1 > self._allowed_retries(self._clock.now()):
            return (
                f"{len(self._retries)} retries in the last {window_s:g} s, as many as "
                f"{self.settings.max_retry_share:.0%} of the {len(self._requests)} "
                "requests sent allow"
            )

        return (
            f"{self._tokens:.0f} of {self.settings.capacity:.0f} tokens left, a retry "
            f"costs {self._cost(after_timeout):g}"
        )

    def _cost(self, after_timeout: bool) -> float:
        return self.settings.timeout_cost if after_timeout else self.settings.retry_cost

    def _allowed_retries(self, now: float) -> float:
        oldest = now - self.settings.share_window_s
        for times in (self._requests, self._retries):
            while times and times[0] <= oldest:
                times.popleft()

        share = self.settings.max_retry_share * len(self._requests)
        return max(float(self.settings.min_retries_per_window), share)

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._refilled_at)
        self._refilled_at = max(self._refilled_at, now)
        self._tokens = min(
            self.settings.capacity, self._tokens + elapsed * self.settings.refill_per_s
        )

    def _notify(self) -> None:
        # Waiters re-check the budget whenever it may have grown.
        if self._changed is not None:
            self._changed.set()
            self._changed = None
