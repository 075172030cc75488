"""A token-bucket server and a pool of clients, run on virtual time.

The server keeps the ground truth: per simulated second, how many requests it accepted
and how many it throttled. Everything is seeded, so a run is the same every time.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import anyio

from powerp_async.control import AdaptivePacer, FakeClock, RateController

THROTTLE_LATENCY_S = 0.002
"""429s come back almost at once: the server refuses before doing any work."""


@dataclass(slots=True)
class TokenBucketServer:
    """Accepts ``rate`` requests per second with a burst of ``burst_s * rate``."""

    clock: FakeClock
    rate: float
    burst_s: float = 0.1
    tokens: float = 0.0
    updated_at: float = 0.0
    accepted: Counter[int] = field(default_factory=Counter)
    throttled: Counter[int] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    @property
    def capacity(self) -> float:
        return max(1.0, self.burst_s * self.rate)

    def set_rate(self, rate: float) -> None:
        self._refill()
        self.rate = rate
        self.tokens = min(self.tokens, self.capacity)

    def admit(self) -> bool:
        self._refill()
        second = int(self.clock.now())
        if self.tokens >= 1:
            self.tokens -= 1
            self.accepted[second] += 1
            return True

        self.throttled[second] += 1
        return False

    def _refill(self) -> None:
        now = self.clock.now()
        self.tokens = min(
            self.capacity, self.tokens + (now - self.updated_at) * self.rate
        )
        self.updated_at = now

    def accepted_between(self, start_s: int, end_s: int) -> int:
        return sum(self.accepted[second] for second in range(start_s, end_s))

    def throttled_share(self, start_s: int, end_s: int) -> float:
        throttled = sum(self.throttled[second] for second in range(start_s, end_s))
        total = throttled + self.accepted_between(start_s, end_s)
        return throttled / total if total else 0.0

    def converged_at(self, since_s: int, rate: float, end_s: int) -> int | None:
        """First second from ``since_s`` that starts 5 good seconds in a row.

        A good second has at least 90 % of ``rate`` accepted and at most 5 % of its
        requests throttled (the convergence rule of the benchmark goals).
        """
        good = [self._good_second(second, rate) for second in range(since_s, end_s)]
        for offset in range(len(good) - 4):
            if all(good[offset : offset + 5]):
                return since_s + offset
        return None

    def _good_second(self, second: int, rate: float) -> bool:
        accepted = self.accepted[second]
        throttled = self.throttled[second]
        return accepted >= 0.9 * rate and throttled <= 0.05 * (accepted + throttled)


@dataclass(frozen=True, slots=True)
class Phase:
    """From ``at_s`` on, the server accepts ``rate`` requests per second."""

    at_s: float
    rate: float


async def simulate(
    phases: Sequence[Phase],
    *,
    duration_s: float,
    workers: int = 48,
    median_rtt_s: float = 0.08,
    seed: int = 7,
) -> tuple[TokenBucketServer, AdaptivePacer]:
    """Run ``workers`` clients, always busy, against the server for ``duration_s``."""
    clock = FakeClock()
    rng = random.Random(seed)
    pacer = AdaptivePacer(
        max_in_flight=workers, clock=clock, controller=RateController(rng=rng)
    )
    server = TokenBucketServer(clock, phases[0].rate)

    async def client() -> None:
        while True:
            async with pacer.permit() as permit:
                if server.admit():
                    await clock.sleep(rng.lognormvariate(0, 0.3) * median_rtt_s)
                    permit.succeeded()
                else:
                    await clock.sleep(THROTTLE_LATENCY_S)
                    permit.throttled(None)

    async with anyio.create_task_group() as group:
        for _ in range(workers):
            group.start_soon(client)

        for phase in phases[1:]:
            await clock.run_until(phase.at_s)
            server.set_rate(phase.rate)

        await clock.run_until(duration_s)
        group.cancel_scope.cancel()

    return server, pacer
