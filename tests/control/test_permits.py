"""Permits: the concurrency gate, no leak on cancellation, the circuit breaker."""

from __future__ import annotations

import anyio
import pytest

from powerp_async.control import CircuitState, FakeClock

from .drivers import (
    Clients,
    fixed_rate_pacer,
    gated_clients,
    report_all,
    with_latency,
)

pytestmark = pytest.mark.timeout(10)


async def test_the_gate_admits_as_many_as_rate_and_latency_need(
    clock: FakeClock,
) -> None:
    clients = gated_clients(clock)
    pacer = clients.pacer

    # ceil(1.3 * 100 req/s * 0.01 s) = 2, the floor of the gate.
    assert pacer.concurrency_limit() == 2
    async with anyio.create_task_group() as group:
        clients.start_holding(group, 4)
        await clock.advance(0.5)
        assert (pacer.in_flight, pacer.snapshot().waiting) == (2, 2)
        assert clients.granted == pytest.approx([0.0, 0.01])

        group.cancel_scope.cancel()


async def test_a_request_out_far_longer_than_answers_take_stops_holding_the_gate(
    clock: FakeClock,
) -> None:
    clients = gated_clients(clock)
    pacer = clients.pacer

    async def answered() -> None:
        async with pacer.permit() as permit:
            clients.granted.append(clock.now())
            await clock.sleep(0.005)
            permit.succeeded()

    async with anyio.create_task_group() as group:
        group.start_soon(clients.hold)
        await clock.advance(0.005)
        group.start_soon(answered)
        await clock.advance(0.015)
        clients.start_holding(group, 3)
        await clock.advance(0.9)
        assert (pacer.in_flight, pacer.snapshot().waiting) == (2, 2)

        # Answers take 0.01 s, so after max(1 s, 4 * 0.01 s) the first request,
        # sent before one that was answered, is a straggler: one more goes out.
        # The third, sent after the latest answer, counts on: a server answering
        # nothing may be slow for all.
        await clock.advance(1.0)
        assert (pacer.in_flight, pacer.snapshot().waiting) == (3, 1)
        assert clients.granted == pytest.approx([0.0, 0.01, 0.02, 1.0])

        group.cancel_scope.cancel()


async def test_a_wider_gate_wakes_every_waiter_it_admits(clock: FakeClock) -> None:
    clients = gated_clients(clock)
    pacer = clients.pacer

    async with anyio.create_task_group() as group:
        clients.start_holding(group, 5)
        await clock.advance(0.5)
        assert pacer.in_flight == 2

        # Slower answers: ceil(1.3 * 100 * 0.05) = 7 permits, and no permit released.
        with_latency(pacer, 0.05)
        assert pacer.concurrency_limit() == 7
        await clock.advance(0.5)
        assert pacer.in_flight == 5
        assert clients.granted == pytest.approx([0.0, 0.01, 0.5, 0.51, 0.52])

        group.cancel_scope.cancel()


async def test_a_released_permit_admits_the_next_waiter(clock: FakeClock) -> None:
    clients = gated_clients(clock)

    async with anyio.create_task_group() as group:
        group.start_soon(clients.hold, 0.3)
        group.start_soon(clients.hold, 0.6)
        group.start_soon(clients.hold)
        await clock.advance(1.0)

        assert clients.granted == pytest.approx([0.0, 0.01, 0.3])
        group.cancel_scope.cancel()


async def test_cancelled_waiters_leave_no_trace(clock: FakeClock) -> None:
    clients = gated_clients(clock)
    pacer = clients.pacer

    async with anyio.create_task_group() as group:
        clients.start_holding(group, 4)
        await clock.advance(0.5)
        for scope in clients.scopes[2:]:
            scope.cancel()
        await clock.advance(0.0)
        assert (pacer.in_flight, pacer.snapshot().waiting) == (2, 0)

        clients.scopes[0].cancel()
        group.start_soon(clients.hold)
        await clock.advance(0.0)
        assert (pacer.in_flight, pacer.snapshot().waiting) == (2, 0)
        assert clients.granted == pytest.approx([0.0, 0.01, 0.5])

        group.cancel_scope.cancel()


async def test_cancelled_requests_in_flight_give_their_permits_back(
    clock: FakeClock,
) -> None:
    pacer = fixed_rate_pacer(clock, 100.0)
    clients = Clients(pacer, clock)

    async with anyio.create_task_group() as group:
        clients.start_holding(group, 3)
        await clock.advance(1.0)
        assert pacer.in_flight == 3

        group.cancel_scope.cancel()

    assert pacer.in_flight == 0


async def test_a_cancelled_head_hands_its_turn_to_the_next(clock: FakeClock) -> None:
    clients = Clients(fixed_rate_pacer(clock, 10.0), clock)

    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(clients.acquire)
        await clock.advance(0.05)
        clients.scopes[1].cancel()
        await clock.advance(1.0)

    assert clients.granted == pytest.approx([0.0, 0.1])


async def test_an_exception_in_the_block_gives_the_permit_back(
    clock: FakeClock,
) -> None:
    pacer = fixed_rate_pacer(clock, 10.0)

    with pytest.raises(KeyError):
        async with pacer.permit():
            raise KeyError("boom")

    assert pacer.in_flight == 0


async def test_an_outcome_is_reported_once(clock: FakeClock) -> None:
    pacer = fixed_rate_pacer(clock, 10.0)

    async with pacer.permit() as permit:
        assert pacer.in_flight == 1
        await clock.advance(0.0)
        permit.succeeded(0.2)
        assert pacer.in_flight == 0
        with pytest.raises(RuntimeError, match="outcome was already reported"):
            permit.failed()

    assert pacer.in_flight == 0
    assert pacer.controller.rtt_p90_s == 0.2


async def test_the_breaker_holds_requests_and_lets_one_probe_through(
    clock: FakeClock,
) -> None:
    pacer = fixed_rate_pacer(clock, 100.0)
    await report_all(pacer, clock, "refused", 5)
    probe_at = pacer.breaker.next_probe_at
    assert pacer.snapshot().circuit is CircuitState.OPEN
    assert pacer.breaker.opened_at == pytest.approx(0.04)
    assert 5.04 <= probe_at <= 10.04

    outcomes: list[tuple[float, bool]] = []

    async def request(fail: bool) -> None:
        async with pacer.permit() as permit:
            outcomes.append((clock.now(), permit.probe))
            await clock.sleep(0.1)
            if fail:
                permit.failed()
            else:
                permit.succeeded()

    async with anyio.create_task_group() as group:
        group.start_soon(request, False)
        group.start_soon(request, False)
        await clock.run_until(probe_at + 0.05)
        assert outcomes == [(probe_at, True)]
        assert pacer.snapshot().circuit is CircuitState.HALF_OPEN

        await clock.advance(1.0)

    assert [probe for _, probe in outcomes] == [True, False]
    assert [at for at, _ in outcomes] == pytest.approx([probe_at, probe_at + 0.1])
    assert pacer.breaker.state is CircuitState.CLOSED


async def test_a_cancelled_probe_is_replaced_at_once(clock: FakeClock) -> None:
    pacer = fixed_rate_pacer(clock, 100.0)
    await report_all(pacer, clock, "refused", 5)
    probe_at = pacer.breaker.next_probe_at
    clients = Clients(pacer, clock)

    async with anyio.create_task_group() as group:
        group.start_soon(clients.hold)
        group.start_soon(clients.hold)
        await clock.run_until(probe_at + 1.0)
        assert clients.granted == [probe_at]

        clients.scopes[0].cancel()
        await clock.advance(0.0)
        assert clients.granted == [probe_at, probe_at + 1.0]
        assert pacer.breaker.state is CircuitState.HALF_OPEN
        group.cancel_scope.cancel()


async def test_a_429_never_opens_the_breaker(clock: FakeClock) -> None:
    pacer = fixed_rate_pacer(clock, 100.0)

    await report_all(pacer, clock, "throttled", 40)

    assert pacer.breaker.state is CircuitState.CLOSED
    # Each 429 answered a request sent after the previous cut: 40 episodes.
    assert (pacer.controller.throttles, pacer.controller.cuts) == (40, 40)


async def test_an_unused_permit_gives_its_slot_to_the_next_request(
    clock: FakeClock,
) -> None:
    pacer = fixed_rate_pacer(clock, 1.0)
    granted: list[float] = []

    async def send(use: bool) -> None:
        async with pacer.permit() as permit:
            granted.append(clock.now())
            if use:
                permit.succeeded(0.1)
            else:
                permit.unused()

    async with anyio.create_task_group() as group:
        group.start_soon(send, True)
        await clock.advance(0.5)
        group.start_soon(send, False)
        group.start_soon(send, True)
        group.start_soon(send, True)
        await clock.advance(5.0)

    # At 1 req/s: 0, then 1 given back and taken again at 1, then 2.
    assert granted == pytest.approx([0.0, 1.0, 1.0, 2.0])
    assert pacer.in_flight == 0
