"""The bound on points in flight: a block waits while its points would not fit."""

from __future__ import annotations

import anyio
import pytest

from powerp_async.control import FakeClock, PointsInFlight

pytestmark = pytest.mark.timeout(10)


async def test_blocks_wait_until_their_points_fit(clock: FakeClock) -> None:
    points = PointsInFlight(1_000, clock)
    log: list[tuple[str, float, int]] = []

    async def fetch(name: str, size: int, takes_s: float) -> None:
        async with points.hold(size):
            log.append((name, clock.now(), points.used))
            await clock.sleep(takes_s)

    async with anyio.create_task_group() as group:
        group.start_soon(fetch, "a", 600, 1.0)
        await clock.advance(0.0)
        group.start_soon(fetch, "b", 300, 3.0)
        group.start_soon(fetch, "c", 400, 1.0)
        await clock.advance(10.0)

    assert log == [("a", 0.0, 600), ("b", 0.0, 900), ("c", 1.0, 700)]
    assert points.used == 0


async def test_a_block_larger_than_the_capacity_goes_alone(clock: FakeClock) -> None:
    points = PointsInFlight(1_000, clock)
    log: list[tuple[str, float]] = []

    async def fetch(name: str, size: int) -> None:
        async with points.hold(size):
            log.append((name, clock.now()))
            await clock.sleep(1.0)

    async with anyio.create_task_group() as group:
        group.start_soon(fetch, "small", 10)
        await clock.advance(0.0)
        group.start_soon(fetch, "huge", 5_000)
        await clock.advance(10.0)

    assert log == [("small", 0.0), ("huge", 1.0)]


async def test_a_cancelled_hold_gives_its_points_back(clock: FakeClock) -> None:
    points = PointsInFlight(100, clock)

    async def fetch() -> None:
        async with points.hold(80):
            await clock.sleep(100.0)

    async with anyio.create_task_group() as group:
        group.start_soon(fetch)
        await clock.advance(1.0)
        assert points.used == 80
        group.cancel_scope.cancel()

    assert points.used == 0
    with pytest.raises(ValueError, match="capacity must be at least 1 point, got 0"):
        PointsInFlight(0)
