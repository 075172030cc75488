"""The Redis pacer: one fixed pace shared by every process of a tenant.

Within a process, requests line up behind one lock: the first books a slot on the
shared schedule, waits for it, and only then lets the next book. So a process holds
at most one booked slot, processes interleave slot by slot, and a cancelled request
loses one slot at most. Each process also keeps its own requests at least ``1 /
max_rate`` apart, whatever the schedule says.

A backend that cannot be used when the run starts is refused (:meth:`RedisPacer.acheck`,
called by the client as it opens): a wrong address or password is told at once rather
than found out as a run that paces alone. Once the run is going, Redis going away
never stops the export. The first call that fails (refused, reset, no answer within
``timeout_s``, or any error from the server) turns the pacer local: it paces this
process alone at its share of the rate, ``max_rate / n`` for the ``n`` processes last
seen live, continuing from its last slot, and says so once at WARNING. Every
``rejoin_every_s`` one booking is tried again, bounded by the wait for the next local
slot, so a Redis that answers nothing slows nobody down; the first that succeeds
rejoins the shared schedule (logged at INFO). For ``rejoin_every_s + timeout_s``
after that, the process still keeps to its share, since the others may not have
rejoined yet and still pace alone: the pace of the whole never exceeds ``max_rate``,
only the moment of the switch differs from process to process.

Known shortcomings: a pacer used without :meth:`RedisPacer.acheck` that never reached
Redis knows no share and paces at the full rate, as if alone; ``n`` is the count at
the last booking, so a process that joins during an outage is not counted by the
others until Redis is back; and a process cut off from Redis while the others still
reach it paces alone at its share on top of their full pace, which exceeds the rate
until its membership expires and it rejoins: the fallback is made for a Redis that
goes away for everybody.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Final

import anyio

from .._rate_backend import tenant_key
from .._words import plural
from ..errors import ConfigurationError
from ..pacing import Permit, TimedPermit
from ._link import UNREACHABLE, RedisLink, what_failed
from ._schedule import (
    CATCH_UP_US,
    Booking,
    SharedSchedule,
    schedule_keys,
    spacing_us,
)

if TYPE_CHECKING:
    from ..config import ClientConfig

logger = logging.getLogger("powerp_async.redis_pacing")

REDIS_TIMEOUT_S: Final = 0.5
"""Longest wait for Redis to connect or answer before pacing locally."""

MEMBER_TTL_S: Final = 5.0
"""How long a process stays counted after its last booking."""

REJOIN_EVERY_S: Final = 1.0
"""How often a local pacer tries Redis again."""

PROBE_MIN_S: Final = 0.01
"""A rejoin attempt gets at least this long, even when the local slot is due."""

FAR_WAIT_FACTOR: Final = 4.0
"""A booked wait this many times what the process's own rate implies for the live
processes (``n / max_rate``) is told: another process books at a slower rate, or the
schedule holds a slot far ahead."""

FAR_WAIT_MIN_S: Final = 0.1
"""Shorter waits are never told, however long next to the rate: at high rates, a
stall of the event loop or of Redis alone makes waits of that order."""

MAX_WAIT_S: Final = 60.0
"""The longest single wait for a booked slot (unless the own rate implies longer):
a slot further ahead means a schedule that no sane rate made, and the request goes."""


class RedisPacer:
    """A fixed pace of ``max_rate`` per second, shared in Redis by many processes.

    Every process naming the same Redis server and tenant ``key`` books its slots on
    one schedule, so together they send at most ``max_rate`` requests per second.
    Created per client, never shared across event loops; :meth:`aclose` leaves the
    schedule and closes the connection (a client closes the pacer it made itself).

    >>> RedisPacer("redis://:pw@127.0.0.1:6379/0", 20, key="reporting")
    <RedisPacer 20 req/s via redis://***@127.0.0.1:6379/0, key 'reporting', shared>

    ``ClientConfig(..., adaptive=False, max_rate=20, rate_backend="redis://...")``
    gives a client the same, keyed by its API address and client id.
    """

    def __init__(
        self,
        url: str,
        max_rate: float,
        *,
        key: str,
        timeout_s: float = REDIS_TIMEOUT_S,
        member_ttl_s: float = MEMBER_TTL_S,
        rejoin_every_s: float = REJOIN_EVERY_S,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        if not 0 < max_rate < math.inf:
            raise ConfigurationError(
                f"max_rate: expected requests per second above 0, got {max_rate!r}"
            )

        schedule, members = schedule_keys(key)
        kinds = {schedule: "string", members: "zset"}
        self._link = RedisLink(url, key, timeout_s, kinds)
        self._shown_url = self._link.shown_url
        self.key = key
        self._schedule = SharedSchedule(
            self._link.redis, key, self._link.member, member_ttl_s=member_ttl_s
        )
        self._rate = max_rate
        self._spacing_us = spacing_us(max_rate)
        self._max_wait_s = max_wait_s
        self._told_far_wait = False
        self._rejoin_every_s = rejoin_every_s
        self._grace_s = rejoin_every_s + timeout_s
        self._share_until = -math.inf
        """Until then this process keeps to its share of the rate (after a rejoin)."""
        self._lock = anyio.Lock()
        self._last_slot = -math.inf
        self._spare = 0
        self._in_flight = 0
        self._live = 1
        self._joined = False
        self._local: _LocalPace | None = None
        self._rejoin_at = -math.inf

    @classmethod
    def for_tenant(cls, config: ClientConfig) -> RedisPacer:
        """The pacer of ``config``'s ``rate_backend``, ``max_rate`` and tenant key."""
        if config.rate_backend is None or config.max_rate is None:
            raise ConfigurationError(
                "rate_backend: expected a backend URL and a max_rate in the config"
            )

        key = config.rate_key or tenant_key(config.base_url, config.client_id)
        return cls(config.rate_backend, config.max_rate, key=key)

    def __repr__(self) -> str:
        state = "shared" if self.shared else f"alone at 1/{self._live}"
        return (
            f"<RedisPacer {self._rate:g} req/s via {self._shown_url}, "
            f"key {self.key!r}, {state}>"
        )

    @property
    def shared(self) -> bool:
        """Whether requests are paced on the shared schedule (Redis answers)."""
        return self._local is None

    @property
    def live_processes(self) -> int:
        """Processes sharing the pace at the last booking; 1 until the first."""
        return self._live

    @property
    def rate(self) -> float:
        """The tenant's pace while shared; this process's share while alone."""
        return self._rate if self.shared else self._rate / self._live

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def outage_s(self) -> float:
        return 0.0

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        async with self._lock:
            await self._wait_for_slot()

        self._in_flight += 1
        try:
            yield _SharedPermit(self)
        finally:
            self._in_flight -= 1

    async def acheck(self) -> None:
        """Refuse a backend that does not answer now, saying why; register this
        process among the tenant's, so the others count it from their next booking.

        Raises :class:`~powerp_async.ConfigurationError` naming the masked address and
        whether it was unreachable, refused the credentials, or answered an error.
        """
        await self._link.acheck()
        # Counted from now, not from the first booking; a failure here is met again,
        # and handled, at that booking.
        with contextlib.suppress(*UNREACHABLE):
            self._live = await self._schedule.join()
            self._joined = True

    async def before_retry(self, *, after_timeout: bool) -> None:
        pass

    async def aclose(self) -> None:
        """Stop being counted among the tenant's processes; close the connection."""
        await self._link.aclose(self._schedule if self._joined else None)

    async def _wait_for_slot(self) -> None:
        if self._spare:
            self._spare -= 1
            return

        earliest = self._last_slot + self._own_spacing_s()
        slot = self._within_reason(max(await self._next_slot(earliest), earliest))
        self._last_slot = slot
        await anyio.sleep(max(0.0, slot - time.monotonic()))

    def _within_reason(self, slot: float) -> float:
        """The slot, or the longest wait allowed if it is further; a wait far longer
        than this process's rate implies is told once, naming the key."""
        now = time.monotonic()
        implied_s = FAR_WAIT_FACTOR * self._live / self._rate
        longest_s = self._longest_wait_s()
        wait_s = slot - now
        if wait_s > max(implied_s, FAR_WAIT_MIN_S) and not self._told_far_wait:
            self._told_far_wait = True
            logger.warning(
                "rate backend %s, key %r: a booked slot is %.2f s away, %.0f times "
                "what %.3g req/s for %s implies; do all of them share the "
                "same rate? Each wait is cut at %.3g s, after which the request goes",
                self._shown_url,
                self.key,
                wait_s,
                wait_s * self._rate / self._live,
                self._rate,
                plural(self._live, "process", "processes"),
                longest_s,
            )

        return min(slot, now + longest_s)

    def _longest_wait_s(self) -> float:
        """The longest this process waits for a slot: ``max_wait_s``, or a few
        spacings of the processes sharing the rate if that is longer."""
        return max(self._max_wait_s, FAR_WAIT_FACTOR * self._live / self._rate)

    def _own_spacing_s(self) -> float:
        """The least time between two requests of this process."""
        if time.monotonic() < self._share_until:
            return self._live / self._rate

        return 1 / self._rate

    async def _next_slot(self, earliest: float) -> float:
        """When the next request may leave, in this process's monotonic time; not
        before ``earliest``."""
        if self._local is None:
            try:
                return self._joined_at(await self._book(earliest))
            except UNREACHABLE as error:
                self._go_local(error)

        return await self._local_slot(earliest)

    async def _book(self, earliest: float) -> Booking:
        ahead_s = max(0.0, earliest - time.monotonic())  # earliest may be -inf
        not_before_us = math.ceil(ahead_s * 1e6)
        booking = await self._schedule.book(
            self._spacing_us,
            not_before_us=not_before_us,
            furthest_us=math.ceil(self._longest_wait_s() * 1e6),
        )
        if booking.restarted:
            logger.warning(
                "rate backend %s, key %r: the shared schedule held a slot further "
                "ahead than any process waits for, which no powerp process books; it "
                "was started afresh",
                self._shown_url,
                self.key,
            )
        return booking

    async def _local_slot(self, earliest: float) -> float:
        assert self._local is not None
        now = time.monotonic()
        slot = self._local.next_slot(now, self._live / self._rate)
        if now < self._rejoin_at:
            return slot

        self._rejoin_at = now + self._rejoin_every_s
        # A Redis that answers nothing must not hold the local pace up: the attempt
        # gets the time until the local slot, and the slot is kept if it fails.
        with anyio.move_on_after(max(slot - now, PROBE_MIN_S)):
            try:
                booking = await self._book(max(earliest, slot))
            except UNREACHABLE as error:
                logger.debug("rate backend still unreachable: %s", error)
                return slot

            logger.info(
                "rate backend %s is back: sharing %.3g req/s again",
                self._shown_url,
                self._rate,
            )
            self._share_until = time.monotonic() + self._grace_s
            return self._joined_at(booking)

        return slot

    def _joined_at(self, booking: Booking) -> float:
        self._local = None
        self._joined = True
        if time.monotonic() >= self._share_until:
            # Right after a rejoin the count is still growing: the share kept is the
            # one from before the outage.
            self._live = booking.live
        return time.monotonic() + booking.wait_s

    def _go_local(self, error: BaseException) -> None:
        self._local = _LocalPace(self._last_slot)
        self._rejoin_at = time.monotonic() + self._rejoin_every_s
        logger.warning(
            "rate backend %s %s: pacing this process alone at %.3g req/s, its share "
            "(1/%d) of %.3g, until it is back",
            self._shown_url,
            what_failed(error),
            self._rate / self._live,
            self._live,
            self._rate,
        )

    def _give_back(self) -> None:
        self._spare += 1


class _LocalPace:
    """A schedule in this process alone, continuing from the last shared slot."""

    __slots__ = ("_last",)

    def __init__(self, last_slot: float) -> None:
        self._last = last_slot

    def next_slot(self, now: float, spacing_s: float) -> float:
        slot = self._last + spacing_s
        # As in the shared schedule: a slot a little late is kept, a long pause
        # restarts the schedule now, with no burst.
        late_s = max(spacing_s, CATCH_UP_US / 1e6)
        self._last = slot if slot >= now - late_s else now
        return self._last


class _SharedPermit(TimedPermit):
    """A permit of the shared pace: an unused one is given back to this process."""

    __slots__ = ("_pacer",)

    def __init__(self, pacer: RedisPacer) -> None:
        super().__init__()
        self._pacer = pacer

    def unused(self) -> None:
        # The slot was booked and has come: the next request of this process takes
        # it at once rather than booking another.
        self._pacer._give_back()
