"""Stop sending to a server that is down, and find out when it is back.

The breaker is **closed** while the server works. It **opens** when at least half of
the last 20 requests failed (5xx or no answer), all 20 within 10 seconds, or after 5
connection failures in a row. Counting the last 20 rather than every request of the
window lets a busy client see an outage within 20 requests, not after seconds of
successes have been outweighed. While open, nothing is sent until a probe is due, 5 to
6 seconds later; after 10 failed probes (about a minute) the pause grows, doubling up
to 30 seconds, since the server is then unlikely to be back at any moment. The next
request is let through alone as a probe (**half-open**). Any answer from the server
closes the breaker again; a failed probe reopens it.

A 429 never trips the breaker: a throttling server is alive, and the rate controller
deals with it. Requests that were already in flight when the breaker opened report
into the void: only the probe decides.
"""

from __future__ import annotations

import logging
import math
import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ..errors import ConfigurationError

logger = logging.getLogger("powerp_async.control.circuit")

PROBE_JITTER: Final = 1.2
"""A pause between probes lasts up to this multiple of the shortest."""


class CircuitState(StrEnum):
    """Whether requests may go out."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass(frozen=True, slots=True)
class CircuitSettings:
    """When the breaker opens and how often it probes."""

    failure_share: float = 0.5
    min_requests: int = 20
    window_s: float = 10.0
    max_connection_failures: int = 5
    """Consecutive connection failures that open the breaker on their own."""
    min_probe_interval_s: float = 5.0
    max_probe_interval_s: float = 30.0
    patient_probes: int = 10
    """Failed probes before the pause between probes starts to grow."""

    def __post_init__(self) -> None:
        if not 0 < self.failure_share <= 1:
            raise ConfigurationError(
                "CircuitSettings.failure_share must lie in (0, 1], "
                f"got {self.failure_share!r}"
            )

        for name in (
            "min_requests",
            "window_s",
            "max_connection_failures",
            "min_probe_interval_s",
            "patient_probes",
        ):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigurationError(
                    f"CircuitSettings.{name} must be above zero, got {value!r}"
                )

        if not self.max_probe_interval_s >= self.min_probe_interval_s:
            raise ConfigurationError(
                "CircuitSettings.max_probe_interval_s must be at least "
                f"min_probe_interval_s ({self.min_probe_interval_s!r}), "
                f"got {self.max_probe_interval_s!r}"
            )


class CircuitBreaker:
    """Tracks failures and gates sends; see the module docstring."""

    def __init__(
        self,
        settings: CircuitSettings | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings or CircuitSettings()
        self._rng = rng or random.Random()
        self._state = CircuitState.CLOSED
        self.opened_at: float | None = None
        """When the breaker last left the closed state; ``None`` while closed."""
        self.next_probe_at = -math.inf
        self.openings = 0
        self.probes = 0
        self._failed_probes = 0
        self._outcomes: deque[tuple[float, bool]] = deque()
        self._failures = 0
        self._connection_failures = 0

    def __repr__(self) -> str:
        return f"<CircuitBreaker {self.state}, opened {self.openings} times>"

    @property
    def state(self) -> CircuitState:
        """Closed, open, or half-open while a probe is out."""
        return self._state

    def open_for_s(self, now: float) -> float:
        """How long requests have been held back; 0 while closed."""
        return 0.0 if self.opened_at is None else now - self.opened_at

    def ready_at(self, now: float) -> float:
        """The earliest time a request may go: at once, at the next probe, or never
        while a probe is out (``inf``)."""
        if self.state is CircuitState.CLOSED:
            return now
        if self.state is CircuitState.OPEN:
            return self.next_probe_at
        return math.inf

    def on_admitted(self, now: float) -> bool:
        """A request goes out now; returns whether it is the probe."""
        if self.state is not CircuitState.OPEN:
            return False

        self._state = CircuitState.HALF_OPEN
        self.probes += 1
        logger.info("circuit half-open: probing the server")
        return True

    def on_success(self, now: float, *, probe: bool = False) -> None:
        """The server answered normally (a 429 counts too: the server is alive)."""
        if probe:
            self._close(now)
        elif self.state is CircuitState.CLOSED:
            self._connection_failures = 0
            self._record(now, failed=False)

    def on_failure(
        self, now: float, *, connection: bool = False, probe: bool = False
    ) -> None:
        """A 5xx (``connection=False``) or no answer at all (``connection=True``)."""
        if probe:
            self._failed_probes += 1
            self._open(now, "the probe failed")
            return
        if self.state is not CircuitState.CLOSED:
            return

        self._record(now, failed=True)
        self._connection_failures = self._connection_failures + 1 if connection else 0
        if self._connection_failures >= self.settings.max_connection_failures:
            self._open(now, f"{self._connection_failures} connection failures in a row")
        elif self._share_too_high():
            self._open(
                now,
                f"{self._failures} of {len(self._outcomes)} requests failed "
                f"within {self.settings.window_s:g} s",
            )

    def count_afresh(self, now: float) -> None:
        """Count an outage from ``now`` and let a probe go at once: a new run
        starts, and the server may have come back since the last one gave up."""
        if self.state is CircuitState.CLOSED:
            return

        self.opened_at = now
        if self.state is CircuitState.OPEN:
            self.next_probe_at = now
            logger.info("circuit open since an earlier run: probing the server")

    def on_abandoned(self, now: float, *, probe: bool = False) -> None:
        """A request ended without an outcome (cancelled); a lost probe is retried."""
        if probe and self.state is CircuitState.HALF_OPEN:
            self._state = CircuitState.OPEN
            self.next_probe_at = now

    def _record(self, now: float, *, failed: bool) -> None:
        self._outcomes.append((now, failed))
        self._failures += failed
        oldest = now - self.settings.window_s
        outcomes = self._outcomes
        while outcomes and (
            outcomes[0][0] <= oldest or len(outcomes) > self.settings.min_requests
        ):
            _, old_failed = outcomes.popleft()
            self._failures -= old_failed

    def _share_too_high(self) -> bool:
        count = len(self._outcomes)
        if count < self.settings.min_requests:
            return False
        return self._failures >= self.settings.failure_share * count

    def _open(self, now: float, reason: str) -> None:
        if self.state is CircuitState.CLOSED:
            self.opened_at = now
            self.openings += 1

        self._state = CircuitState.OPEN
        delay_s = self._rng.uniform(*self._probe_pause_s())
        self.next_probe_at = now + delay_s
        logger.warning("circuit open (%s); next probe in %.1f s", reason, delay_s)

    def _probe_pause_s(self) -> tuple[float, float]:
        """The bounds of the jittered pause before the next probe."""
        settings = self.settings
        shortest = settings.min_probe_interval_s
        doublings = max(0, self._failed_probes - settings.patient_probes)
        longest = shortest * PROBE_JITTER * 2 ** min(doublings, 16)
        return shortest, min(settings.max_probe_interval_s, longest)

    def _close(self, now: float) -> None:
        logger.info(
            "circuit closed: the server answered after %.1f s", self.open_for_s(now)
        )
        self._state = CircuitState.CLOSED
        self.opened_at = None
        self._failed_probes = 0
        self._connection_failures = 0
        self._outcomes.clear()
        self._failures = 0
