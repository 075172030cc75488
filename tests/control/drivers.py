"""Drivers for pacer tests: a pacer of fixed rate and clients that acquire from it."""

from __future__ import annotations

import random

import anyio
import anyio.abc

from powerp_async.control import (
    AdaptivePacer,
    CircuitBreaker,
    FakeClock,
    RateController,
    RateSettings,
)


def fixed_rate_pacer(
    clock: FakeClock, rate: float, *, max_in_flight: int = 64
) -> AdaptivePacer:
    """A pacer whose rate cannot grow, so that spacing is easy to predict."""
    settings = RateSettings(initial_rate=rate, max_rate=rate)
    return AdaptivePacer(
        max_in_flight=max_in_flight,
        clock=clock,
        controller=RateController(settings, rng=random.Random(1)),
        breaker=CircuitBreaker(rng=random.Random(2)),
    )


def with_latency(pacer: AdaptivePacer, latency_s: float, count: int = 5) -> None:
    for _ in range(count):
        pacer.on_success(latency_s)


def gated_clients(clock: FakeClock) -> Clients:
    """Clients of a 100 req/s pacer whose gate admits ceil(1.3 * 100 * 0.01) = 2."""
    pacer = fixed_rate_pacer(clock, 100.0)
    with_latency(pacer, 0.01)
    return Clients(pacer, clock)


async def report_all(
    pacer: AdaptivePacer, clock: FakeClock, outcome: str, count: int
) -> None:
    """Send ``count`` requests one after another, each with the same ``outcome``."""

    done = anyio.Event()

    async def requests() -> None:
        for _ in range(count):
            async with pacer.permit() as permit:
                if outcome == "refused":
                    permit.failed(connection=True)
                else:
                    permit.throttled(None)
        done.set()

    async with anyio.create_task_group() as group:
        group.start_soon(requests)
        while not done.is_set():
            await clock.advance(0.01)


class Clients:
    """Tasks that acquire from a pacer, each in its own cancel scope."""

    def __init__(self, pacer: AdaptivePacer, clock: FakeClock) -> None:
        self.pacer = pacer
        self.clock = clock
        self.granted: list[float] = []
        self.scopes: list[anyio.CancelScope] = []

    async def acquire(self) -> None:
        with self._scope():
            await self.pacer.acquire()
            self.granted.append(self.clock.now())

    async def hold(self, hold_s: float = 1_000.0) -> None:
        """Take a permit and keep it for ``hold_s`` without reporting an outcome."""
        with self._scope():
            async with self.pacer.permit():
                self.granted.append(self.clock.now())
                await self.clock.sleep(hold_s)

    def start_holding(self, group: anyio.abc.TaskGroup, count: int) -> None:
        for _ in range(count):
            group.start_soon(self.hold)

    def _scope(self) -> anyio.CancelScope:
        scope = anyio.CancelScope()
        self.scopes.append(scope)
        return scope
