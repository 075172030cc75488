"""The adaptive pacer: exact spacing, cuts and holds for waiters, its state."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import anyio
import pytest

from powerp_async.control import (
    AdaptivePacer,
    CircuitState,
    ControlSnapshot,
    FakeClock,
    RateController,
    RateMode,
    RateSettings,
)
from powerp_async.errors import ConfigurationError
from powerp_async.pacing import Pacer

from .drivers import Clients, fixed_rate_pacer, with_latency

pytestmark = pytest.mark.timeout(10)


async def test_requests_leave_evenly_spaced_with_no_initial_burst(
    clock: FakeClock,
) -> None:
    clients = Clients(fixed_rate_pacer(clock, 10.0), clock)

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(clients.acquire)
        await clock.advance(0.0)
        assert clients.granted == [0.0]

        await clock.advance(1.0)

    assert clients.granted == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4], abs=1e-12)


async def test_an_idle_pacer_lets_one_request_out_not_a_burst(clock: FakeClock) -> None:
    clients = Clients(fixed_rate_pacer(clock, 10.0), clock)

    async with anyio.create_task_group() as group:
        group.start_soon(clients.acquire)
        await clock.advance(5.0)
        for _ in range(3):
            group.start_soon(clients.acquire)
        await clock.advance(1.0)

    assert clients.granted == pytest.approx([0.0, 5.0, 5.1, 5.2], abs=1e-12)


async def test_a_cut_applies_to_requests_already_waiting(clock: FakeClock) -> None:
    pacer = AdaptivePacer(
        clock=clock, controller=RateController(RateSettings(initial_rate=10.0))
    )
    clients = Clients(pacer, clock)

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(clients.acquire)
        await clock.advance(0.05)
        assert clients.granted == [0.0]

        # Nothing was accepted yet, so the rate is halved, then cut to 0.9 of it.
        pacer.on_throttle(0.0, None)
        assert pacer.rate == pytest.approx(4.5)
        await clock.advance(1.0)

    assert clients.granted == pytest.approx([0.0, 1 / 4.5, 2 / 4.5])


async def test_no_request_leaves_before_a_hold_and_none_in_a_burst_after(
    clock: FakeClock,
) -> None:
    pacer = fixed_rate_pacer(clock, 10.0)
    clients = Clients(pacer, clock)

    async with anyio.create_task_group() as group:
        for _ in range(4):
            group.start_soon(clients.acquire)
        await clock.advance(0.05)
        pacer.on_throttle(0.0, 2.0)
        hold_until = pacer.controller.barrier_until
        assert 2.05 <= hold_until <= 2.25
        assert pacer.snapshot().mode is RateMode.WINDOW

        await clock.run_until(hold_until - 1e-9)
        assert clients.granted == [0.0]

        await clock.advance(2.0)

    # Spaced at the pace after the hold, which moves a little as sends are counted.
    spacing = 1 / pacer.controller.rate_at(hold_until)
    first, after_hold, *later = clients.granted
    gaps = [b - a for a, b in itertools.pairwise([after_hold, *later])]
    assert (first, after_hold) == pytest.approx((0.0, hold_until))
    assert gaps == pytest.approx([spacing, spacing], rel=0.05)


async def test_the_plain_pacer_protocol_holds_no_permit(clock: FakeClock) -> None:
    pacer = fixed_rate_pacer(clock, 10.0)

    assert isinstance(pacer, Pacer)
    await pacer.acquire()
    pacer.on_success(0.1)
    pacer.on_throttle(0.0, None)
    assert pacer.in_flight == 0
    assert pacer.controller.cuts == 1


READY_SNAPSHOT = ControlSnapshot(
    at_s=0.0,
    rate=10.0,
    accepted_rate=3.0,
    accepted=3,
    in_flight=1,
    concurrency_limit=3,
    waiting=0,
    mode=RateMode.STARTUP,
    throttles=0,
    cuts=0,
    hold_s=0.0,
    circuit=CircuitState.CLOSED,
    circuit_open_s=0.0,
    budget_tokens=500.0,
    rtt_p90_s=0.2,
)


async def test_the_snapshot_shows_every_part(clock: FakeClock) -> None:
    pacer = fixed_rate_pacer(clock, 10.0)
    with_latency(pacer, 0.2, count=3)

    async with pacer.permit():
        snapshot = pacer.snapshot()

    # ceil(1.3 * 10 req/s * 0.2 s) = 3 permits; 3 answers within the 1 s horizon.
    assert snapshot == READY_SNAPSHOT
    assert repr(pacer) == "<AdaptivePacer 10 req/s, 0 in flight, 0 waiting>"


@pytest.mark.parametrize("field", ["accepted", "cuts", "in_flight", "rate", "hold_s"])
def test_a_snapshot_refuses_negative_values(field: str) -> None:
    changes: dict[str, Any] = {field: -1}
    with pytest.raises(ValueError, match=rf"ControlSnapshot.{field} must be >= 0"):
        dataclasses.replace(READY_SNAPSHOT, **changes)


def test_the_rate_probes_while_a_run_plans_or_outside_any_run() -> None:
    pacer = AdaptivePacer()
    seen = [pacer.controller.may_probe]  # queries sent one by one, outside a run

    pacer.begin_run()
    with pacer.planning():
        seen.append(pacer.controller.may_probe)
        pacer.begin_run()  # a second run on the same client, planning too
        with pacer.planning():
            seen.append(pacer.controller.may_probe)
        seen.append(pacer.controller.may_probe)  # the first still plans
    seen.append(pacer.controller.may_probe)  # both took their last block
    pacer.end_run()
    seen.append(pacer.controller.may_probe)  # one still ends
    pacer.end_run()
    seen.append(pacer.controller.may_probe)

    assert seen == [True, True, True, True, False, False, True]


def test_max_in_flight_must_allow_a_request() -> None:
    with pytest.raises(ConfigurationError, match="max_in_flight must be at least 1"):
        AdaptivePacer(max_in_flight=0)


async def test_a_late_release_keeps_the_schedule_and_catches_up(
    clock: FakeClock,
) -> None:
    clients = Clients(fixed_rate_pacer(clock, 200.0), clock)

    async with anyio.create_task_group() as group:
        group.start_soon(clients.acquire)
        await clock.advance(0.012)
        # Due at 0.005 and 0.010 but asked for only at 0.012, as from a busy loop.
        for _ in range(3):
            group.start_soon(clients.acquire)
        await clock.advance(0.1)

    assert clients.granted == pytest.approx([0.0, 0.012, 0.012, 0.015], abs=1e-12)


async def test_a_release_later_than_the_catch_up_restarts_the_schedule(
    clock: FakeClock,
) -> None:
    clients = Clients(fixed_rate_pacer(clock, 200.0), clock)

    async with anyio.create_task_group() as group:
        group.start_soon(clients.acquire)
        await clock.advance(0.04)
        for _ in range(2):
            group.start_soon(clients.acquire)
        await clock.advance(0.1)

    assert clients.granted == pytest.approx([0.0, 0.04, 0.045], abs=1e-12)


async def test_at_a_low_rate_a_late_release_restarts_the_schedule(
    clock: FakeClock,
) -> None:
    clients = Clients(fixed_rate_pacer(clock, 10.0), clock)

    async with anyio.create_task_group() as group:
        group.start_soon(clients.acquire)
        await clock.advance(0.12)
        # The slot was at 0.1 and the request came at 0.12: keeping the schedule
        # would send the next one at 0.2, only 0.08 s later, which a bucket holding
        # one token refuses. So the schedule restarts at 0.12.
        for _ in range(2):
            group.start_soon(clients.acquire)
        await clock.advance(0.5)

    assert clients.granted == pytest.approx([0.0, 0.12, 0.22], abs=1e-12)


class KnowingController(RateController):
    """A controller whose episodes pinned the limit down at 10.5 requests/s."""

    @property
    def known_limit(self) -> float | None:
        return 10.5


@pytest.mark.parametrize(
    ("asked_at", "granted"),
    [
        # Late by 3 ms: the next request still follows 0.097 s later, above the
        # limit's spacing of 1 / 10.5 = 0.0952 s, so the schedule holds.
        (0.103, [0.0, 0.103, 0.2]),
        # Late by 20 ms: keeping the schedule would go faster than the limit.
        (0.12, [0.0, 0.12, 0.22]),
    ],
)
async def test_below_a_known_limit_a_late_release_keeps_the_schedule_by_the_margin(
    clock: FakeClock, asked_at: float, granted: list[float]
) -> None:
    settings = RateSettings(initial_rate=10.0, max_rate=10.0)
    pacer = AdaptivePacer(clock=clock, controller=KnowingController(settings))
    clients = Clients(pacer, clock)

    async with anyio.create_task_group() as group:
        group.start_soon(clients.acquire)
        await clock.advance(asked_at)
        for _ in range(2):
            group.start_soon(clients.acquire)
        await clock.advance(0.5)

    assert clients.granted == pytest.approx(granted, abs=1e-12)
