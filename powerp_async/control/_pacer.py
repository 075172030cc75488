"""The adaptive pacer: when each request may leave, at a rate found while running.

Acquirers line up in one first-come, first-served queue. The one at the head acts as
the dispatcher: it re-reads the rate at every release and waits for the latest of

* its slot, one spacing (``1 / rate``) after the previous release: a GCRA schedule
  with no burst allowance, so an idle pacer lets one request out, not a burst (at
  rates of more than one request per ``CATCH_UP_S``, a release late by up to that
  long keeps the schedule, so the requests held up by a slow event loop catch up
  rather than being lost; at lower rates, only by the margin between the rate and a
  limit the controller knows);
* the end of any hold the controller set after a ``Retry-After`` (window mode);
* for permits only, the circuit breaker's next probe and a free concurrency permit.

The head is woken early whenever one of these may have moved (an answer, a release),
so a cut or a hold applies to requests already waiting, and a larger concurrency limit
lets the next waiter go at its slot without waiting for a release. Each waiter that
leaves the head (served or cancelled) wakes the next, so none is forgotten.

The concurrency limit follows Little's law with a margin:
``C = clamp(ceil(1.3 * rate * RTT_p90), 2, max_in_flight)``, and ``max_in_flight``
until the first round trip is measured. A request out for longer than
``max(1 s, 4 * RTT_p90)`` while one sent after it was answered (a straggler) no
longer counts against it: a query the server sits on until the timeout (one too
large for it, say) would otherwise hold a permit that the law sized for answers in a
fraction of a second, and a few of them would stop the client while the server has
capacity to spare. A server slow to answer anything keeps every request counted.

:meth:`AdaptivePacer.permit` is the full interface: the permit counts as in flight
until its outcome is reported or its ``async with`` block ends, whichever comes first,
so a cancelled or failed request never keeps a permit. :meth:`AdaptivePacer.acquire`
and the ``on_*`` methods implement the plain :class:`~powerp_async.pacing.Pacer`
protocol; they pace and adapt the rate but hold no permit and skip the circuit
breaker, since nothing guarantees that every outcome is reported through them.
"""

from __future__ import annotations

import bisect
import logging
import math
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Final

import anyio

from ..errors import ConfigurationError
from ._budget import RetryBudget
from ._circuit import CircuitBreaker, CircuitState
from ._clock import Clock, MonotonicClock
from ._controller import RateController, RateMode

logger = logging.getLogger("powerp_async.control.pacer")

CONCURRENCY_MARGIN: Final = 1.3
MIN_CONCURRENCY: Final = 2
DEFAULT_MAX_IN_FLIGHT: Final = 128

STRAGGLER_RTTS: Final = 4.0
"""A request out this many times the 90th percentile round trip is a straggler."""

MIN_STRAGGLER_S: Final = 1.0
"""Nor is any request a straggler before this many seconds."""

CATCH_UP_S: Final = 0.025
"""How late a release may be and still keep the schedule; at most this many seconds'
worth of requests then leave back to back to catch up. Only where the spacing is
shorter: at lower rates a late release restarts the schedule."""


@dataclass(frozen=True, slots=True)
class ControlSnapshot:
    """The state of rate control at one moment, for progress displays and events."""

    at_s: float
    """Clock reading when the snapshot was taken."""
    rate: float
    """Requests per second allowed now."""
    accepted_rate: float
    """Successful answers per second over the controller's horizon."""
    accepted: int
    """Successful answers so far; diff two snapshots for a rate over any window."""
    in_flight: int
    concurrency_limit: int
    waiting: int
    """Acquirers queued for a slot."""
    mode: RateMode
    throttles: int
    cuts: int
    hold_s: float
    """Seconds until a hold after ``Retry-After`` ends; 0 when there is none."""
    circuit: CircuitState
    circuit_open_s: float
    """How long the breaker has held requests back; 0 while closed."""
    budget_tokens: float
    rtt_p90_s: float | None

    def __post_init__(self) -> None:
        for name in ("rate", "accepted_rate", "hold_s", "circuit_open_s"):
            value = getattr(self, name)
            if not value >= 0:
                raise ValueError(f"ControlSnapshot.{name} must be >= 0, got {value!r}")

        for name in (
            "accepted",
            "in_flight",
            "concurrency_limit",
            "waiting",
            "throttles",
            "cuts",
        ):
            value = getattr(self, name)
            if value < 0:
                raise ValueError(f"ControlSnapshot.{name} must be >= 0, got {value!r}")


@dataclass(eq=False, slots=True)
class _Waiter:
    holds_permit: bool
    wake: anyio.Event = field(default_factory=anyio.Event)
    deadline: float = math.inf
    gated: bool = False
    """Waiting for a concurrency permit, which a release frees before the deadline."""


class Permit:
    """Leave to send one request. Report its outcome once, as soon as it is known."""

    __slots__ = ("_pacer", "_pending", "_slots", "probe", "sent_at")

    def __init__(
        self,
        pacer: AdaptivePacer,
        sent_at: float,
        *,
        probe: bool,
        slots: tuple[float, float] = (-math.inf, -math.inf),
    ) -> None:
        self._pacer = pacer
        self._pending = True
        self._slots = slots
        """The pacer's slot before and with this permit, to give it back unused."""
        self.sent_at = sent_at
        """Clock reading when the permit was granted, i.e. when the request left."""
        self.probe = probe
        """Whether this request probes a server the circuit breaker held back."""

    def __repr__(self) -> str:
        state = "pending" if self._pending else "reported"
        return f"<Permit sent at {self.sent_at:.3f} s, {state}>"

    def succeeded(self, latency_s: float | None = None) -> None:
        """A 2xx answer; ``latency_s`` defaults to the time since the permit."""
        now = self._close()
        latency = now - self.sent_at if latency_s is None else latency_s
        self._pacer._answered(self.sent_at)
        self._pacer._succeeded(now, latency, probe=self.probe)

    def throttled(self, retry_after_s: float | None = None) -> None:
        """A 429, with the parsed ``Retry-After`` in seconds if there was one."""
        now = self._close()
        self._pacer._throttled(now, self.sent_at, retry_after_s, probe=self.probe)

    def failed(self, *, connection: bool = False) -> None:
        """A 5xx, or with ``connection=True`` no answer (refused, reset, timeout)."""
        now = self._close()
        if connection:
            self._pacer.controller.on_lost(self.sent_at)
        else:
            self._pacer.controller.on_server_error(now, self.sent_at)
        self._pacer._failed(now, connection=connection, probe=self.probe)

    def unused(self) -> None:
        """The request was not sent after all: its slot goes to the next one."""
        self._close()
        self._pacer._give_back(*self._slots, probe=self.probe)

    def _close(self) -> float:
        if not self._pending:
            raise RuntimeError("this permit's outcome was already reported")

        self._pending = False
        return self._pacer._release(self.sent_at)

    def _abandon(self) -> None:
        if self._pending:
            self._pending = False
            now = self._pacer._release(self.sent_at)
            self._pacer.breaker.on_abandoned(now, probe=self.probe)


class AdaptivePacer:
    """Paces requests at a discovered rate, under a concurrency gate and a breaker.

    Create one per client and rate-limit scope, never share one across event loops.
    The engine's calls, per request::

        async with pacer.permit() as permit:
            response = await send(...)  # permit.sent_at is the send time
            ...  # then exactly one of:
            permit.succeeded(latency_s)  # 2xx
            permit.throttled(retry_after_s)  # 429; requeue the block at once
            permit.failed(connection=...)  # 5xx, or no answer at all

    and before re-sending a block that failed (not one that was throttled)::

        await pacer.budget.spend(after_timeout=...)
    """

    def __init__(
        self,
        *,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        controller: RateController | None = None,
        breaker: CircuitBreaker | None = None,
        budget: RetryBudget | None = None,
        clock: Clock | None = None,
    ) -> None:
        if max_in_flight < 1:
            raise ConfigurationError(
                f"max_in_flight must be at least 1, got {max_in_flight!r}"
            )

        self.max_in_flight = max_in_flight
        self.clock: Clock = clock or MonotonicClock()
        self.controller = controller or RateController()
        self.breaker = breaker or CircuitBreaker()
        self.budget = budget or RetryBudget(self.clock)
        self._queue: deque[_Waiter] = deque()
        self._last_slot = -math.inf
        self._in_flight = 0
        self._sends_in_flight: list[float] = []
        """Send times of the permits in flight, in order."""
        self._latest_answered_send = -math.inf
        """The send time of the latest request answered 2xx."""
        self._runs = 0
        """Runs going on, each counted from :meth:`begin_run` to :meth:`end_run`."""
        self._planning = 0
        """Runs still taking blocks from their plan (:meth:`planning`)."""

    def __repr__(self) -> str:
        return (
            f"<AdaptivePacer {self.rate:.3g} req/s, {self._in_flight} in flight, "
            f"{len(self._queue)} waiting>"
        )

    @property
    def rate(self) -> float:
        """The current pace in requests per second."""
        return self.controller.rate_at(self.clock.now())

    @property
    def in_flight(self) -> int:
        """Permits granted whose outcome is not reported yet."""
        return self._in_flight

    def concurrency_limit(self) -> int:
        """Permits that may be in flight at once at the current rate and latency."""
        rtt_s = self.controller.rtt_p90_s
        if rtt_s is None:
            return self.max_in_flight

        needed = math.ceil(CONCURRENCY_MARGIN * self.rate * rtt_s)
        return min(self.max_in_flight, max(MIN_CONCURRENCY, needed))

    def snapshot(self) -> ControlSnapshot:
        """The current state, as a frozen record."""
        now = self.clock.now()
        controller = self.controller
        return ControlSnapshot(
            at_s=now,
            rate=controller.rate_at(now),
            accepted_rate=controller.accepted_rate(now),
            accepted=controller.accepted_total,
            in_flight=self._in_flight,
            concurrency_limit=self.concurrency_limit(),
            waiting=len(self._queue),
            mode=controller.mode,
            throttles=controller.throttles,
            cuts=controller.cuts,
            hold_s=max(0.0, controller.barrier_until - now),
            circuit=self.breaker.state,
            circuit_open_s=self.breaker.open_for_s(now),
            budget_tokens=self.budget.level,
            rtt_p90_s=controller.rtt_p90_s,
        )

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        """Wait for a slot, a concurrency permit and the breaker, then hold a permit.

        The permit is given back when its outcome is reported or, at the latest, when
        the block ends (by exception or cancellation too).
        """
        permit = await self._admit(holds_permit=True)
        try:
            yield permit
        finally:
            permit._abandon()

    def begin_run(self) -> None:
        """A run starts: an outage that stopped an earlier one counts from now,
        and the server is probed at once, so a client outlives an outage."""
        self.breaker.count_afresh(self.clock.now())
        self._runs += 1
        self._allow_probes()

    def end_run(self) -> None:
        """A run begun with :meth:`begin_run` ended, however it ended."""
        self._runs -= 1
        self._allow_probes()

    @contextmanager
    def planning(self) -> Iterator[None]:
        """While a run takes blocks from its plan. Once every run has taken its last
        one, the rate no longer probes past the limit (``may_probe``): that could
        only delay the last answers. Queries sent outside any run probe as ever."""
        self._planning += 1
        self._allow_probes()
        try:
            yield
        finally:
            self._planning -= 1
            self._allow_probes()

    def _allow_probes(self) -> None:
        self.controller.may_probe = self._runs <= 0 or self._planning > 0

    async def before_retry(self, *, after_timeout: bool) -> None:
        """Wait until the retry budget allows one more retry of a failed request."""
        await self.budget.spend(after_timeout=after_timeout)

    @property
    def outage_s(self) -> float:
        """How long the circuit has been open (0 while it is closed)."""
        return self.breaker.open_for_s(self.clock.now())

    async def acquire(self) -> None:
        """Wait for a slot at the current rate (the plain ``Pacer`` protocol)."""
        await self._admit(holds_permit=False)

    def on_success(self, latency_s: float) -> None:
        """An answer accepted after ``latency_s`` seconds (``Pacer`` protocol)."""
        self._succeeded(self.clock.now(), latency_s, probe=None)

    def on_throttle(self, sent_at: float, retry_after_s: float | None) -> None:
        """A 429 for a request sent at ``sent_at`` (``Pacer`` protocol)."""
        self._throttled(self.clock.now(), sent_at, retry_after_s, probe=None)

    async def _admit(self, *, holds_permit: bool) -> Permit:
        waiter = _Waiter(holds_permit)
        self._queue.append(waiter)
        try:
            await self._wait_for_turn(waiter)
        finally:
            self._leave(waiter)

        return self._grant(holds_permit)

    async def _wait_for_turn(self, waiter: _Waiter) -> None:
        while True:
            deadline = self._ready_at(waiter)
            if deadline <= self.clock.now():
                return

            waiter.wake = anyio.Event()
            waiter.deadline = deadline
            await self.clock.wait(waiter.wake, deadline)

    def _ready_at(self, waiter: _Waiter) -> float:
        if self._queue[0] is not waiter:
            return math.inf

        now = self.clock.now()
        slot = self._last_slot + 1 / self.controller.rate_at(now)
        ready = max(slot, self.controller.barrier_until)
        if not waiter.holds_permit:
            return ready

        free_at = self._permit_free_at(now)
        waiter.gated = free_at > now
        return max(ready, free_at, self.breaker.ready_at(now))

    def _permit_free_at(self, now: float) -> float:
        """When a concurrency permit is free: now, when the oldest request counted
        becomes a straggler, or at a release (``inf``) with the round trip unknown."""
        limit = self.concurrency_limit()
        if self._in_flight < limit:
            return now

        rtt_s = self.controller.rtt_p90_s
        if rtt_s is None:
            return math.inf

        # Only requests sent before one that was answered since: while nothing
        # comes back the server is slow for all, and sending more would only pile
        # requests up in its queue.
        straggler_s = max(MIN_STRAGGLER_S, STRAGGLER_RTTS * rtt_s)
        cutoff = min(now - straggler_s, self._latest_answered_send)
        sends = self._sends_in_flight
        if len(sends) - bisect.bisect_left(sends, cutoff) < limit:
            return now

        oldest_counted = sends[len(sends) - limit]
        if oldest_counted < self._latest_answered_send:
            return oldest_counted + straggler_s
        return math.inf

    def _leave(self, waiter: _Waiter) -> None:
        was_head = self._queue[0] is waiter
        self._queue.remove(waiter)
        if was_head and self._queue:
            self._queue[0].wake.set()

    def _grant(self, holds_permit: bool) -> Permit:
        now = self.clock.now()
        spacing = 1 / self.controller.rate_at(now)
        slot = self._last_slot + spacing
        # A waiter woken a little late keeps the schedule, so the average rate holds:
        # at hundreds of requests per second the event loop is often later than one
        # spacing, and restarting each time would lose a share of the rate to every
        # delay. Where the spacing is longer than that, a late release restarts the
        # schedule, but for the margin below a known limit: catching up further
        # would send two requests closer than the limit allows, and a bucket that
        # holds a single token refuses the second. After an idle spell or a hold the
        # schedule restarts now, no burst.
        previous_slot = self._last_slot
        late_s = CATCH_UP_S if spacing <= CATCH_UP_S else self._margin_s(spacing)
        self._last_slot = slot if slot >= now - late_s else now
        self.controller.on_sent(now)
        self.budget.on_request(now)
        probe = False
        if holds_permit:
            self._in_flight += 1
            bisect.insort(self._sends_in_flight, now)
            probe = self.breaker.on_admitted(now)
        slots = (previous_slot, self._last_slot)
        return Permit(self, now, probe=probe, slots=slots)

    def _margin_s(self, spacing: float) -> float:
        """How much sooner than ``spacing`` a request may follow the one before
        without going faster than the limit the controller pinned down (none while
        it knows no limit). Without it, each late wake-up would be lost for good: at
        5 requests per second, a few milliseconds each cost 2% of the rate."""
        known = self.controller.known_limit
        if known is None:
            return 0.0

        return max(0.0, spacing - 1 / known)

    def _give_back(self, previous_slot: float, slot: float, *, probe: bool) -> None:
        # Only the latest slot can be returned; a later one was spaced from it.
        if self._last_slot == slot:
            self._last_slot = previous_slot
        self.breaker.on_abandoned(self.clock.now(), probe=probe)
        if self._queue:
            self._queue[0].wake.set()

    def _answered(self, sent_at: float) -> None:
        self._latest_answered_send = max(self._latest_answered_send, sent_at)

    def _release(self, sent_at: float) -> float:
        self._in_flight -= 1
        del self._sends_in_flight[bisect.bisect_left(self._sends_in_flight, sent_at)]
        self._nudge()
        return self.clock.now()

    def _nudge(self) -> None:
        # A head waiting for a permit or a probe result is woken to look again. One
        # waiting for a time re-reads everything then: a cut or a hold only moves
        # that time later, and a faster rate is picked up within one old spacing.
        if self._queue and (
            self._queue[0].deadline == math.inf or self._queue[0].gated
        ):
            self._queue[0].wake.set()

    def _succeeded(self, now: float, latency_s: float, *, probe: bool | None) -> None:
        self.controller.on_success(now, latency_s)
        self.budget.on_success(now)
        if probe is not None:
            self.breaker.on_success(now, probe=probe)
        self._nudge()

    def _throttled(
        self,
        now: float,
        sent_at: float,
        retry_after_s: float | None,
        *,
        probe: bool | None,
    ) -> None:
        self.controller.on_throttle(now, sent_at, retry_after_s)
        if probe is not None:
            # A throttling server is alive: never a failure for the breaker.
            self.breaker.on_success(now, probe=probe)
        self._nudge()

    def _failed(self, now: float, *, connection: bool, probe: bool) -> None:
        self.breaker.on_failure(now, connection=connection, probe=probe)
        self._nudge()
