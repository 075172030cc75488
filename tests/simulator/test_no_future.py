"""No data after now: a window that starts after now has no point, as on a real
historian."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from powerp_async._time import format_wire
from powerp_async.simulator import Simulator, SimulatorSettings

from .conftest import ANCHOR_US, fetch_token, post_query, query_body

NOW_US = ANCHOR_US - 90_000_000
"""The simulator's now: half past the minute, 90 s before the anchor."""


@pytest.fixture
async def sim(sim_settings: SimulatorSettings) -> AsyncIterator[Simulator]:
    async with Simulator(sim_settings, wall_clock=lambda: NOW_US / 1e6) as running:
        yield running


def minutes(start_min: int, end_min: int) -> dict[str, str]:
    """A query body of signal 1 in 1-minute windows, in minutes from the anchor."""
    return query_body(
        measurementIndexes=["1"],
        startTime=format_wire(ANCHOR_US + start_min * 60_000_000),
        endTime=format_wire(ANCHOR_US + end_min * 60_000_000),
        windowPeriod="1m",
    )


async def test_windows_that_end_after_now_have_no_points(http, sim) -> None:
    token = await fetch_token(http, sim)

    status, points = await post_query(http, sim, token, minutes(-4, 2))

    # At 11:58:30 the windows ending 11:57 and 11:58 are over and the one ending
    # 11:59 holds now; none after it has a point.
    assert status == 200
    assert [p["timestamp"] for p in points] == [
        "2026-12-04T11:57:00Z",
        "2026-12-04T11:58:00Z",
        "2026-12-04T11:59:00Z",
    ]


async def test_a_range_after_now_is_answered_empty(http, sim) -> None:
    token = await fetch_token(http, sim)

    assert await post_query(http, sim, token, minutes(-1, 5)) == (200, [])


async def test_the_window_that_holds_now_has_only_the_samples_so_far(http, sim) -> None:
    token = await fetch_token(http, sim)
    counting = {**minutes(-4, 2), "aggFunction": "count"}

    status, points = await post_query(http, sim, token, counting)

    # Ten samples a second: whole minutes hold 600; at 11:58:30 the minute that
    # holds now has those from 11:58:00.0 to 11:58:30.0.
    assert status == 200
    assert [(p["timestamp"], p["value"]) for p in points] == [
        ("2026-12-04T11:57:00Z", 600),
        ("2026-12-04T11:58:00Z", 600),
        ("2026-12-04T11:59:00Z", 301),
    ]
