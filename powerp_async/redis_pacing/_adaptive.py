"""The adaptive Redis pacer: a pace discovered together by every process of a tenant.

Within a process, requests line up behind one lock, as in the fixed mode: the first
books a slot, waits for it, and only then lets the next book, so a process holds at
most one booked slot. Each booking is one script call (:mod:`._shared_rate`) that also
carries what this process learnt since its previous one: how many answers were
accepted, and the 429s with the Redis time at which their requests were booked. So a
burst of 429s on many processes makes one cut of the shared rate, and every process
books at the cut rate from its next request on.

When Redis goes away mid-run, the first call that fails turns the pacer local: an
:class:`~powerp_async.control.AdaptivePacer` of this process alone takes over,
starting at its share of the last shared rate (``rate / n`` for the ``n`` processes
last seen live) and finding its own rate from there, said once at WARNING. Every
``rejoin_every_s`` one booking is tried again, given no longer than one local spacing;
the first that succeeds rejoins the shared rate (INFO), seeding it with the last rate
known here if Redis lost it. For ``rejoin_every_s + timeout_s`` after that the
process still keeps at least its share's spacing, since the others may still pace
alone.

Known shortcomings: a process's answers reach Redis with its next booking, so a
process that stops sending leaves its last reports untold; a process that holds a
slot booked before a cut or a pause sends that one request at the old pace; and the
local pacers of an outage discover their rates afresh, each from its share, so their
sum may overshoot the limit until each has been cut.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import anyio

from .._rate_backend import tenant_key
from ..control import AdaptivePacer, RateController, RateSettings
from ..errors import ConfigurationError
from ..pacing import Permit
from ._link import UNREACHABLE, RedisLink, said, what_failed
from ._pacer import MEMBER_TTL_S, PROBE_MIN_S, REDIS_TIMEOUT_S, REJOIN_EVERY_S
from ._shared_rate import (
    RateBounds,
    Reservation,
    SharedRate,
    Throttle,
    members_key,
    state_key,
)

if TYPE_CHECKING:
    from ..config import ClientConfig

logger = logging.getLogger("powerp_async.redis_pacing")

START_RATE: Final = 4.0
"""Requests per second before anything is known, as the local controller starts."""

MIN_RATE: Final = 0.1
"""No cut goes below this, unless a lower ceiling is set."""

DEFAULT_MAX_IN_FLIGHT: Final = 128
"""Concurrent requests of the local pacer that stands in while Redis is away."""


class AdaptiveRedisPacer:
    """A pace discovered from the server's answers, shared in Redis by many processes.

    Every process naming the same Redis server and tenant ``key`` books its requests
    at one shared rate, which grows with accepted answers and is cut once per episode
    of 429s, whichever processes get them. ``min_rate`` and ``max_rate`` bound it.
    Created per client, never shared across event loops; :meth:`aclose` leaves the
    tenant and closes the connection.

    >>> AdaptiveRedisPacer("redis://:pw@127.0.0.1:6379/0", key="tenant", max_rate=50)
    <AdaptiveRedisPacer 4 req/s via redis://***@127.0.0.1:6379/0, key 'tenant', shared>
    """

    def __init__(
        self,
        url: str,
        *,
        key: str,
        initial_rate: float = START_RATE,
        min_rate: float = MIN_RATE,
        max_rate: float | None = None,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        timeout_s: float = REDIS_TIMEOUT_S,
        member_ttl_s: float = MEMBER_TTL_S,
        rejoin_every_s: float = REJOIN_EVERY_S,
    ) -> None:
        ceiling = math.inf if max_rate is None else max_rate
        floor = min(min_rate, ceiling)
        if not 0 < floor <= initial_rate <= ceiling:
            raise ConfigurationError(
                "rates: expected 0 < min_rate <= initial_rate <= max_rate, got "
                f"{min_rate!r}, {initial_rate!r} and {max_rate!r}"
            )

        kinds = {state_key(key): "hash", members_key(key): "zset"}
        self._link = RedisLink(url, key, timeout_s, kinds)
        self._shown_url = self._link.shown_url
        self.key = key
        bounds = RateBounds(initial_rate, floor, ceiling)
        self._state = SharedRate(
            self._link.redis,
            key,
            self._link.member,
            member_ttl_s=member_ttl_s,
            bounds=bounds,
        )
        self._max_in_flight = max_in_flight
        self._rejoin_every_s = rejoin_every_s
        self._grace_s = rejoin_every_s + timeout_s
        self._lock = anyio.Lock()
        self._rate = initial_rate
        self._live = 1
        self._cuts = 0
        self._joined = False
        self._accepted = 0
        self._throttles: list[Throttle] = []
        self._spare: list[int] = []
        self._in_flight = 0
        self._last_sent = -math.inf
        self._share_until = -math.inf
        self._local: AdaptivePacer | None = None
        self._rejoin_at = -math.inf

    @classmethod
    def for_tenant(cls, config: ClientConfig) -> AdaptiveRedisPacer:
        """The pacer of ``config``'s ``rate_backend``, its rates and tenant key."""
        if config.rate_backend is None:
            raise ConfigurationError(
                "rate_backend: expected a backend URL in the config"
            )

        key = config.rate_key or tenant_key(config.base_url, config.client_id)
        ceiling = config.max_rate or math.inf
        return cls(
            config.rate_backend,
            key=key,
            initial_rate=min(config.initial_rate, ceiling),
            max_rate=config.max_rate,
            max_in_flight=config.max_in_flight,
        )

    def __repr__(self) -> str:
        state = "shared" if self.shared else f"alone at 1/{self._live}"
        return (
            f"<AdaptiveRedisPacer {self.rate:.3g} req/s via {self._shown_url}, "
            f"key {self.key!r}, {state}>"
        )

    @property
    def shared(self) -> bool:
        """Whether requests are paced at the shared rate (Redis answers)."""
        return self._local is None

    @property
    def live_processes(self) -> int:
        """Processes sharing the pace at the last booking; 1 until the first."""
        return self._live

    @property
    def cuts(self) -> int:
        """Cuts of the shared rate by any process, as of the last booking."""
        return self._cuts

    @property
    def rate(self) -> float:
        """The shared rate at the last booking; this process's own rate while alone."""
        return self._rate if self._local is None else self._local.rate

    @property
    def in_flight(self) -> int:
        local = 0 if self._local is None else self._local.in_flight
        return self._in_flight + local

    @property
    def outage_s(self) -> float:
        return 0.0 if self._local is None else self._local.outage_s

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        async with self._lock:
            booked_us = await self._wait_for_slot()

        if booked_us is None:
            assert self._local is not None
            async with self._local.permit() as permit:
                yield permit
            return

        self._in_flight += 1
        try:
            yield _SharedPermit(self, booked_us)
        finally:
            self._in_flight -= 1

    async def before_retry(self, *, after_timeout: bool) -> None:
        if self._local is not None:
            await self._local.before_retry(after_timeout=after_timeout)

    async def acheck(self) -> None:
        """Refuse a backend that does not answer now, saying why (see
        :meth:`RedisPacer.acheck <powerp_async.redis_pacing.RedisPacer.acheck>`)."""
        await self._link.acheck()

    async def aclose(self) -> None:
        """Stop being counted among the tenant's processes; close the connection."""
        await self._link.aclose(self._state if self._joined else None)

    async def _wait_for_slot(self) -> int | None:
        """Wait for this process's next shared slot and return the Redis time it was
        booked at; ``None`` when the local pacer is to pace the request."""
        if self._spare:
            return self._spare.pop()

        if self._local is not None:
            return await self._rejoin()

        try:
            reservation = await self._reserve()
        except UNREACHABLE as error:
            self._go_local(error)
            return None

        await self._wait(reservation)
        return reservation.now_us

    async def _reserve(self, *, seed: bool = False) -> Reservation:
        earliest = self._last_sent + self._own_spacing_s()
        ahead_us = math.ceil(max(0.0, earliest - time.monotonic()) * 1e6)
        throttles, self._throttles = self._throttles, []
        accepted, self._accepted = self._accepted, 0
        reservation = await self._state.reserve(
            accepted=accepted,
            throttles=throttles,
            not_before_us=ahead_us,
            seed_rate=self._rate if seed and self._joined else None,
        )
        self._took(reservation)
        return reservation

    def _took(self, reservation: Reservation) -> None:
        self._joined = True
        self._rate = reservation.rate
        self._cuts = reservation.cuts
        if time.monotonic() >= self._share_until:
            # Right after a rejoin the count is still growing: the share kept is the
            # one from before the outage.
            self._live = reservation.live
        if reservation.restarted:
            logger.warning(
                "rate backend %s, key %r: the shared state held values no powerp "
                "process writes (a pause or slot far ahead, or a rate that is no "
                "number), and was started afresh",
                self._shown_url,
                self.key,
            )
        if reservation.cut:
            logger.info(
                "throttled: shared rate cut to %.3g req/s (cut %d, key %r)",
                reservation.rate,
                reservation.cuts,
                self.key,
            )

    async def _wait(self, reservation: Reservation) -> None:
        self._last_sent = time.monotonic() + reservation.wait_s
        await anyio.sleep(reservation.wait_s)

    def _own_spacing_s(self) -> float:
        """The least time between two requests of this process: its share's spacing
        just after a rejoin, none otherwise."""
        if time.monotonic() < self._share_until:
            return self._live / self._rate

        return 0.0

    async def _rejoin(self) -> int | None:
        """Try Redis again if it is time: the booking time of a shared slot once it
        is back, ``None`` while the local pacer goes on."""
        assert self._local is not None
        now = time.monotonic()
        if now < self._rejoin_at:
            return None

        self._rejoin_at = now + self._rejoin_every_s
        # Answers of requests sent before the outage are old news by now.
        self._accepted, self._throttles = 0, []
        # The others may still pace alone for a while: the count of processes from
        # before the outage is kept, and this one keeps to its share meanwhile.
        self._share_until = now + self._grace_s
        # A Redis that answers nothing must not hold the local pace up: the attempt
        # gets one local spacing, and the local pace goes on if it fails.
        reservation = None
        with anyio.move_on_after(max(1 / self._local.rate, PROBE_MIN_S)):
            try:
                reservation = await self._reserve(seed=True)
            except UNREACHABLE as error:
                logger.debug("rate backend still unreachable: %s", said(error))

        if reservation is None:
            return None

        self._local = None
        logger.info(
            "rate backend %s is back: sharing %.3g req/s again",
            self._shown_url,
            reservation.rate,
        )
        await self._wait(reservation)
        return reservation.now_us

    def _go_local(self, error: BaseException) -> None:
        share = self._rate / self._live
        ceiling = self._state.bounds.ceiling / self._live
        limits = RateSettings(
            initial_rate=share,
            min_rate=min(self._state.bounds.floor, share),
            max_rate=max(ceiling, share),
        )
        self._local = AdaptivePacer(
            max_in_flight=self._max_in_flight, controller=RateController(limits)
        )
        self._rejoin_at = time.monotonic() + self._rejoin_every_s
        logger.warning(
            "rate backend %s %s: pacing this process alone from %.3g req/s, its share "
            "(1/%d) of %.3g, until it is back",
            self._shown_url,
            what_failed(error),
            share,
            self._live,
            self._rate,
        )


class _SharedPermit:
    """A permit at the shared rate: its answer is told with the next booking."""

    __slots__ = ("_pacer", "booked_us", "sent_at")

    def __init__(self, pacer: AdaptiveRedisPacer, booked_us: int) -> None:
        self._pacer = pacer
        self.booked_us = booked_us
        """Redis time when the request's slot was booked."""
        self.sent_at = time.monotonic()

    def succeeded(self, latency_s: float | None = None) -> None:
        self._pacer._accepted += 1

    def throttled(self, retry_after_s: float | None = None) -> None:
        self._pacer._throttles.append(Throttle.of(self.booked_us, retry_after_s))

    def failed(self, *, connection: bool = False) -> None:
        # A 5xx or a lost connection says nothing about the rate.
        pass

    def unused(self) -> None:
        # The slot was booked and has come: the next request of this process takes
        # it at once rather than booking another.
        self._pacer._spare.append(self.booked_us)
