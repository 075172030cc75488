"""The clock seam: virtual time that wakes sleepers in order, and the real clock."""

from __future__ import annotations

import math

import anyio
import pytest

from powerp_async.control import FakeClock, MonotonicClock


async def test_sleepers_wake_at_their_deadlines_in_order(clock: FakeClock) -> None:
    woken: list[tuple[str, float]] = []

    async def sleeper(name: str, delay_s: float) -> None:
        await clock.sleep(delay_s)
        woken.append((name, clock.now()))

    async with anyio.create_task_group() as group:
        group.start_soon(sleeper, "late", 3.0)
        group.start_soon(sleeper, "early", 1.0)
        group.start_soon(sleeper, "middle", 2.5)
        await clock.advance(2.0)
        assert woken == [("early", 1.0)]
        assert clock.now() == 2.0

        await clock.advance(5.0)

    assert woken == [("early", 1.0), ("middle", 2.5), ("late", 3.0)]
    assert clock.now() == 7.0


async def test_a_set_event_ends_a_wait_before_its_deadline(clock: FakeClock) -> None:
    event = anyio.Event()
    ended_at: list[float] = []

    async def waiter() -> None:
        await clock.wait(event, 10.0)
        ended_at.append(clock.now())

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await clock.advance(4.0)
        event.set()
        await clock.advance(0.0)

    assert ended_at == [4.0]


async def test_a_wait_without_deadline_lasts_until_its_event(clock: FakeClock) -> None:
    event = anyio.Event()
    ended_at: list[float] = []

    async def waiter() -> None:
        await clock.wait(event)
        ended_at.append(clock.now())

    async with anyio.create_task_group() as group:
        group.start_soon(waiter)
        await clock.advance(1_000.0)
        assert ended_at == []

        event.set()
        await clock.settle()

    assert ended_at == [1_000.0]


async def test_time_stands_still_without_a_driver(clock: FakeClock) -> None:
    await clock.sleep(0.0)
    await clock.wait(anyio.Event(), deadline=-1.0)
    assert clock.now() == 0.0


async def test_advancing_backwards_is_refused(clock: FakeClock) -> None:
    with pytest.raises(ValueError, match="delta_s must be zero or more, got -1"):
        await clock.advance(-1.0)


async def test_a_task_blocked_elsewhere_is_reported(clock: FakeClock) -> None:
    async with anyio.create_task_group() as group:
        group.start_soon(anyio.Event().wait)
        with pytest.raises(RuntimeError, match="blocked on a lock, stream"):
            await clock.advance(1.0)
        group.cancel_scope.cancel()


async def test_the_monotonic_clock_returns_at_once_when_nothing_is_left() -> None:
    clock = MonotonicClock()
    before = clock.now()
    event = anyio.Event()
    event.set()

    await clock.wait(event, math.inf)
    await clock.wait(anyio.Event(), before - 1.0)
    await clock.sleep_until(before - 1.0)

    assert clock.now() >= before
    assert repr(clock) == "<MonotonicClock>"
