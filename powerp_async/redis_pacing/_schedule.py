"""A tenant's send schedule in Redis: one atomic script books each slot.

The schedule is a GCRA with no burst allowance, kept in Redis time: the key holds the
latest slot booked, in microseconds of the server's own clock (``TIME``), and each
booking takes the slot one spacing after it, or *now* if that slot is long past. So
two processes starting together share one pace rather than each starting its own,
and no clock of any client is ever compared with another's: the script reads the
time, books, and says how long to wait, in one call that nothing can interleave.

Each booking also registers its process in a sorted set under the same tenant, with
an expiry a few seconds ahead, and so does :meth:`SharedSchedule.join` as a pacer
opens: the number of live members is how many processes share the pace, which each
needs to know to pace alone at its share when Redis goes away. A process is counted
while it books, and for ``member_ttl_s`` after its last booking; one waiting longer
than that between two requests drops out of the count.

Spacings are whole microseconds, rounded up, so the arithmetic in the script is exact
(slots stay below 2**53) and the pace never exceeds the rate: at 500 requests per
second, 2,000 microseconds each.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from .._rate_backend import KEY_PREFIX

CATCH_UP_US: Final = 25_000
"""A slot booked up to this late (or one spacing, if longer) keeps the schedule, so a
process held up by a slow event loop catches up instead of losing the pace; after a
longer pause the schedule restarts at the current time, with no burst."""

FURTHEST_WAIT_US: Final = 60_000_000
"""A slot further ahead than this is taken for junk unless the caller waits longer."""

SCHEDULE_KEPT_MS: Final = 60_000
"""How long the schedule outlives its latest slot in Redis when nobody books."""

RESERVE_SCRIPT: Final = """
-- KEYS[1] latest slot booked (microseconds of Redis time)
-- KEYS[2] live members: process id -> expiry (microseconds of Redis time)
-- ARGV[1] spacing, ARGV[2] catch-up allowance, ARGV[4] membership lifetime (us)
-- ARGV[3] this process's id, ARGV[5] how long the schedule is kept (ms)
-- ARGV[6] the earliest the caller will send, as a delay from now (us)
-- ARGV[7] the furthest ahead a slot is waited for (us)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local lifetime = tonumber(ARGV[4])
redis.call('ZADD', KEYS[2], now + lifetime, ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[2], math.floor(lifetime / 1000) + 1)
local live = redis.call('ZCARD', KEYS[2])

local spacing = tonumber(ARGV[1])
local slot = now
local last = tonumber(redis.call('GET', KEYS[1]))
-- A slot further ahead than any process waits for was written by no process of
-- ours: kept, it would let each process send one request per longest wait.
local restarted = 0
if last and not (last <= now + tonumber(ARGV[7])) then
    last, restarted = nil, 1
end
if last and last + spacing >= now - tonumber(ARGV[2]) then
    slot = last + spacing
end
local delay = tonumber(ARGV[6])
if delay > 0 then
    slot = math.max(slot, now + delay)
end
local ahead_ms = math.floor(math.max(slot - now, 0) / 1000)
redis.call('SET', KEYS[1], slot, 'PX', ahead_ms + tonumber(ARGV[5]))
return {slot, now, live, restarted}
"""

RESERVE_SHA: Final = hashlib.sha1(RESERVE_SCRIPT.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Booking:
    """One slot booked on the shared schedule."""

    slot_us: int
    """The slot, in microseconds of Redis time."""
    now_us: int
    """Redis time when it was booked."""
    live: int
    """Processes registered under the tenant key, the booking one included."""
    restarted: bool = False
    """Whether the schedule held a slot further ahead than any process books, and
    was started afresh."""

    def __post_init__(self) -> None:
        if self.live < 1:
            raise ValueError(f"Booking.live must be at least 1, got {self.live!r}")

    @property
    def wait_s(self) -> float:
        """How long to wait before sending; 0 for a slot caught up on."""
        return max(0, self.slot_us - self.now_us) / 1e6


def spacing_us(rate: float) -> int:
    """Microseconds between two slots at ``rate`` per second, rounded up."""
    return math.ceil(1e6 / rate - 1e-6)


def schedule_keys(tenant: str) -> tuple[str, str]:
    """The keys of a tenant's schedule and members, in one Redis cluster slot."""
    base = f"{KEY_PREFIX}:{{{tenant}}}"
    return f"{base}:schedule", f"{base}:members"


class SharedSchedule:
    """Books slots of one tenant's schedule and registers this process there."""

    def __init__(
        self, redis: Redis, tenant: str, member: str, *, member_ttl_s: float
    ) -> None:
        self._redis = redis
        self._keys = schedule_keys(tenant)
        self.member = member
        self._member_ttl_us = round(member_ttl_s * 1e6)

    @property
    def keys(self) -> tuple[str, str]:
        return self._keys

    async def book(
        self,
        spacing: int,
        *,
        not_before_us: int = 0,
        furthest_us: int = FURTHEST_WAIT_US,
    ) -> Booking:
        """The next slot at ``spacing`` microseconds, booked in one script call.

        A schedule whose latest slot lies more than ``furthest_us`` ahead (further
        than the caller would wait) holds no slot of a process of ours: it is
        started afresh, and the booking says so (:attr:`Booking.restarted`).

        ``not_before_us`` is the earliest the caller will send, counted from now: the
        slot booked is never earlier, so the schedule records when requests really
        leave (a slot booked earlier and left unused would let the next bookings
        catch up on it, two processes at once).

        The script is called by its digest; a server that does not hold it yet (new,
        restarted, or flushed) answers NOSCRIPT, and the text is sent once instead,
        which also loads it for the next calls.
        """
        catch_up = max(spacing, CATCH_UP_US)
        arguments = (
            *(spacing, catch_up, self.member, self._member_ttl_us, SCHEDULE_KEPT_MS),
            *(max(0, not_before_us), furthest_us),
        )
        try:
            answer = await self._redis.evalsha(RESERVE_SHA, 2, *self._keys, *arguments)
        except NoScriptError:
            answer = await self._redis.eval(RESERVE_SCRIPT, 2, *self._keys, *arguments)

        slot_us, now_us, live, restarted = (int(value) for value in answer)
        return Booking(slot_us, now_us, live, restarted=restarted == 1)

    async def join(self) -> int:
        """Register this process before its first booking; returns the processes
        registered, this one included. Run once, as the pacer opens: the others then
        count it from their next booking, not only from its first."""
        seconds, micros = await self._redis.time()
        now_us = seconds * 1_000_000 + micros
        members = self._keys[1]
        # Plain commands in one transaction, not a script: a server whose scripts
        # fail is found out by the first booking, as a server lost mid-run.
        async with self._redis.pipeline(transaction=True) as steps:
            steps.zadd(members, {self.member: now_us + self._member_ttl_us})
            steps.zremrangebyscore(members, "-inf", now_us)
            steps.pexpire(members, self._member_ttl_us // 1000 + 1)
            steps.zcard(members)
            *_, live = await steps.execute()
        return int(live)

    async def leave(self) -> None:
        """Stop being counted among the tenant's processes."""
        await self._redis.zrem(self._keys[1], self.member)
