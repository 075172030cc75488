"""A tenant's adaptive pace in Redis: one atomic script reports answers and books.

The state lives in one hash per tenant, on the Redis server's clock (``TIME``, in
microseconds), so no clock of any client is compared with another's:

``rate``
    the pace every process books at, in requests per second;
``mode``, ``wmax``, ``cut_at``, ``cuts``
    whether start-up growth is over, the rate accepted at the last cut, when that cut
    was made, and how many there were;
``pause``
    no slot is booked before this (a long ``Retry-After``, for every process);
``last``
    the latest slot booked (a GCRA schedule with no burst, as in the fixed mode);
``busy``
    whether the latest booking kept the schedule (came within one spacing, or the
    catch-up allowance, of its slot) rather than restarting it after a gap;
``win``, ``acc``, ``acc0``
    answers accepted in the current one-second window and the one before: the rate
    accepted sets a cut.

Each call first takes in what the calling process learnt since its previous call,
then books its next slot:

* **Accepted answers** grow the rate: by one request per second each until the first
  cut (the rate doubles per round of answers), then by ``PROBE_GAIN * wmax / rate``
  each, a gentle linear probe of ``PROBE_GAIN * wmax`` per second of full pace from
  the rate at the last cut. The rate grows only while the tenant keeps up with its
  schedule (``busy``), so one that sends less than its pace does not talk itself up.
* **A 429** cuts only if its request was booked *after* the last cut: the 429s of
  requests already under way at a cut, from any process, make no second one. A cut
  sets ``wmax`` to the rate accepted over the last second (at most the rate then;
  half of it when nothing was accepted) and the rate to ``CUT_FACTOR * wmax``.
* **A Retry-After** above ``PAUSE_ABOVE_S`` (which announces a quota window rather
  than a momentary excess) holds every process's bookings until it has passed.

The rate always stays within ``[floor, ceiling]``. Accepted answers reach Redis with
the calling process's next booking, not at once: one call per request, whatever the
answers, at the cost of a cut measured on answers that lag by up to one booking.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from .._rate_backend import KEY_PREFIX
from ._schedule import CATCH_UP_US

CUT_FACTOR: Final = 0.9
"""A cut sets the rate to this share of the rate accepted."""

PROBE_GAIN: Final = 0.02
"""After the first cut, the rate grows by this share of ``wmax`` per second of
answers."""

PAUSE_ABOVE_S: Final = 1.0
"""A shorter ``Retry-After`` delays only the request that got it (the engine does)."""

MAX_PAUSE_S: Final = 300.0
"""The longest shared pause: a longer ``Retry-After`` says a quota is spent, and the
engine's retries decide what to do with it."""

MAX_PAUSE_US: Final = round(MAX_PAUSE_S * 1e6) + 1_000_000
"""A pause in the state further off than this (a second of slack) was written by no
process of ours."""

SLOTS_AHEAD: Final = 2
"""Slots a live process may hold ahead, a booked one and one of its own spacing:
past the latest pause, a slot further ahead than that many per process (one more
for a process just gone), spaced at the lowest rate, was written by no process of
ours."""

CREDIBLE_RATE: Final = 1e6
"""Requests per second beyond any server's pace: a higher rate in the state is
junk."""

STATE_KEPT_MS: Final = 3_600_000
"""How long the state outlives its last call: a run within the hour starts from the
rate the previous one found rather than discovering it again."""

NO_RETRY_AFTER: Final = -1

ADAPTIVE_SCRIPT: Final = """
-- KEYS[1] the tenant's state (hash), KEYS[2] live members: id -> expiry (us)
-- ARGV[1] member id, ARGV[2] membership lifetime (us), ARGV[3] state kept (ms)
-- ARGV[4] floor, ARGV[5] ceiling (0 for none), ARGV[6] rate of a new state,
-- ARGV[7] mode of a new state (0 start-up, 1 after a cut)
-- ARGV[8] the earliest the caller will send, as a delay from now (us)
-- ARGV[9] catch-up allowance (us), ARGV[10] answers accepted since the last call
-- ARGV[11] cut factor, ARGV[12] probe gain, ARGV[13] longest pause (us),
-- ARGV[14] slots each live process may hold ahead, ARGV[15] highest credible rate
-- ARGV[16..] pairs: booking time of a throttled request (us), pause (us, -1 none)
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local floor, ceiling = tonumber(ARGV[4]), tonumber(ARGV[5])

local lifetime = tonumber(ARGV[2])
redis.call('ZADD', KEYS[2], now + lifetime, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('PEXPIRE', KEYS[2], math.floor(lifetime / 1000) + 1)
local live = redis.call('ZCARD', KEYS[2])
local function bounded(rate)
    rate = math.max(rate, floor)
    if ceiling > 0 then rate = math.min(rate, ceiling) end
    return rate
end
local function finite(value)
    if value == nil or value ~= value or value == math.huge or value == -math.huge then
        return nil
    end
    return value
end

local s = {}
local raw = redis.call('HGETALL', KEYS[1])
for i = 1, #raw, 2 do s[raw[i]] = finite(tonumber(raw[i + 1])) end
-- A state with a field missing or out of reason was written by no script of ours:
-- taken as it is, a pause or slot far ahead would hold every process for good. Each
-- live process holds a slot or two at most, at no slower than the floor's spacing.
local span = tonumber(ARGV[14]) * (live + 1) * math.ceil(1000000 / floor)
local damaged = #raw > 0 and not (s.rate and s.rate > 0 and s.rate <= tonumber(ARGV[15])
    and s.wmax and s.wmax >= floor and s.mode and s.cut_at and s.cut_at <= now
    and s.cuts and s.pause and s.pause <= now + tonumber(ARGV[13]) and s.last
    and s.last <= math.max(s.pause, now) + span and s.busy and s.win and s.win <= now
    and s.acc and s.acc0)
if #raw == 0 or damaged then
    -- The 429s of requests booked before the state began make no cut: a state lost
    -- or damaged mid-run would otherwise be cut at once and leave start-up. Those
    -- booked by this very call are its own.
    local start = bounded(tonumber(ARGV[6]))
    s = {rate = start, wmax = start, mode = tonumber(ARGV[7]), cut_at = now - 1,
         cuts = 0, pause = 0, last = 0, busy = 0, win = now, acc = 0, acc0 = 0}
end
s.rate = bounded(s.rate)

local since = now - s.win
if since >= 1000000 then
    s.acc0 = 0
    if since < 2000000 then s.acc0 = s.acc end
    s.acc, s.win, since = 0, now, 0
end

local accepted = tonumber(ARGV[10])
s.acc = s.acc + accepted
if accepted > 0 and s.busy == 1 then
    local grown = s.rate + accepted
    if s.mode == 1 then
        grown = s.rate + accepted * tonumber(ARGV[12]) * s.wmax / s.rate
    end
    s.rate = bounded(grown)
end

local cut = 0
for i = 16, #ARGV, 2 do
    local booked, pause = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
    if pause >= 0 then s.pause = math.max(s.pause, now + pause) end
    if booked > s.cut_at then
        -- Answers lag and a tenant that has just started (or a Redis that has just
        -- restarted) has counted few: one cut never goes below half the rate.
        local accepted_rate = s.acc0 * (1 - since / 1000000) + s.acc
        local wmax = math.min(math.max(accepted_rate, s.rate / 2), s.rate)
        s.wmax = math.max(wmax, floor)
        s.rate = bounded(tonumber(ARGV[11]) * s.wmax)
        s.mode, s.cut_at, s.cuts, cut = 1, now, s.cuts + 1, cut + 1
    end
end

local spacing = math.ceil(1000000 / s.rate)
local slot, busy = now, 0
if s.last + spacing >= now - math.max(spacing, tonumber(ARGV[9])) then
    slot, busy = s.last + spacing, 1
end
slot = math.max(slot, s.pause, now + tonumber(ARGV[8]))
s.last, s.busy = slot, busy

local fields = {}
for name, value in pairs(s) do
    fields[#fields + 1] = name
    fields[#fields + 1] = string.format('%.17g', value)
end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('PEXPIRE', KEYS[1], math.floor((slot - now) / 1000) + tonumber(ARGV[3]))
return {slot, now, live, string.format('%.17g', s.rate), s.cuts, cut, s.mode,
        damaged and 1 or 0}
"""

ADAPTIVE_SHA: Final = hashlib.sha1(ADAPTIVE_SCRIPT.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Throttle:
    """A 429, as the process reports it to the shared state."""

    booked_us: int
    """Redis time at which its request was booked."""
    pause_us: int = NO_RETRY_AFTER
    """How long every process is to hold off from the report on; -1 for no pause."""

    @classmethod
    def of(cls, booked_us: int, retry_after_s: float | None) -> Throttle:
        """The report of a 429 whose server said ``retry_after_s``; only a long one
        pauses everybody."""
        if retry_after_s is None or not retry_after_s > PAUSE_ABOVE_S:
            return cls(booked_us)

        return cls(booked_us, math.ceil(min(retry_after_s, MAX_PAUSE_S) * 1e6))


@dataclass(frozen=True, slots=True)
class RateBounds:
    """Where a new tenant state starts and what the rate stays within, per second."""

    initial: float
    floor: float
    ceiling: float = math.inf

    def __post_init__(self) -> None:
        if not 0 < self.floor <= self.ceiling:
            raise ValueError(
                "RateBounds expects 0 < floor <= ceiling, got "
                f"{self.floor!r} and {self.ceiling!r}"
            )
        if not self.initial > 0:
            raise ValueError(
                f"RateBounds.initial must be above 0, got {self.initial!r}"
            )


@dataclass(frozen=True, slots=True)
class Reservation:
    """One slot booked at the shared rate, and the state it was booked in."""

    slot_us: int
    """The slot, in microseconds of Redis time."""
    now_us: int
    """Redis time when it was booked."""
    live: int
    """Processes registered under the tenant key, the booking one included."""
    rate: float
    """The shared rate after this call's reports."""
    cuts: int
    """Cuts of the shared rate so far, by any process."""
    cut: int
    """Cuts made by this call's reports: 0 or 1 (the second 429 of one call was
    booked before the first one's cut)."""
    grown_up: bool
    """Whether start-up growth is over (a cut was made)."""
    restarted: bool = False
    """Whether the state held values no process of ours writes (a pause or a slot
    far ahead, a rate that is no number), and was started afresh."""

    @property
    def wait_s(self) -> float:
        """How long to wait before sending; 0 for a slot caught up on."""
        return max(0, self.slot_us - self.now_us) / 1e6


def state_key(tenant: str) -> str:
    """The key of a tenant's adaptive state, in the cluster slot of its members."""
    return f"{KEY_PREFIX}:{{{tenant}}}:adaptive"


def members_key(tenant: str) -> str:
    """The live processes of a tenant, the same set the fixed mode counts."""
    return f"{KEY_PREFIX}:{{{tenant}}}:members"


class SharedRate:
    """Reports answers to one tenant's adaptive state and books slots on it."""

    def __init__(
        self,
        redis: Redis,
        tenant: str,
        member: str,
        *,
        member_ttl_s: float,
        bounds: RateBounds,
    ) -> None:
        self._redis = redis
        self.keys = (state_key(tenant), members_key(tenant))
        self.member = member
        self._member_ttl_us = round(member_ttl_s * 1e6)
        self.bounds = bounds

    async def reserve(
        self,
        *,
        accepted: int = 0,
        throttles: Sequence[Throttle] = (),
        not_before_us: int = 0,
        seed_rate: float | None = None,
    ) -> Reservation:
        """Report ``accepted`` answers and ``throttles``, then book the next slot, in
        one script call; ``seed_rate`` starts a state that Redis lost (restarted) at
        a rate known from before, past start-up, rather than at the initial one.

        Called by digest; a server that lacks the script gets its text once.
        """
        arguments: list[str | int | float] = [*self._fixed_arguments(seed_rate)]
        arguments.append(max(0, not_before_us))
        arguments += [CATCH_UP_US, accepted, CUT_FACTOR, PROBE_GAIN]
        arguments += [MAX_PAUSE_US, SLOTS_AHEAD, CREDIBLE_RATE]
        for throttle in throttles:
            arguments += [throttle.booked_us, throttle.pause_us]
        try:
            answer = await self._redis.evalsha(ADAPTIVE_SHA, 2, *self.keys, *arguments)
        except NoScriptError:
            answer = await self._redis.eval(ADAPTIVE_SCRIPT, 2, *self.keys, *arguments)

        slot_us, now_us, live, rate, cuts, cut, mode, damaged = answer
        grown_up = int(mode) == 1
        return Reservation(
            int(slot_us),
            int(now_us),
            int(live),
            float(rate),
            int(cuts),
            int(cut),
            grown_up,
            restarted=int(damaged) == 1,
        )

    async def leave(self) -> None:
        """Stop being counted among the tenant's processes."""
        await self._redis.zrem(self.keys[1], self.member)

    def _fixed_arguments(self, seed_rate: float | None) -> list[str | int | float]:
        bounds = self.bounds
        ceiling = 0 if bounds.ceiling == math.inf else bounds.ceiling
        start, mode = (bounds.initial, 0) if seed_rate is None else (seed_rate, 1)
        member, lifetime = self.member, self._member_ttl_us
        return [member, lifetime, STATE_KEPT_MS, bounds.floor, ceiling, start, mode]
