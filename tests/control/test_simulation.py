"""Discovery against a simulated token-bucket server, 60 virtual seconds at a time.

The server's own per-second counts are the ground truth. Runs are seeded and
deterministic, so besides the goals each run's exact figures are pinned: a change
in behaviour shows up here even when it still meets the goals.
"""

from __future__ import annotations

import pytest

from .simulation import Phase, simulate

pytestmark = pytest.mark.timeout(20)


@pytest.mark.parametrize(
    ("rate", "accepted", "throttled"),
    [(5, 242, 2), (20, 997, 8), (100, 4998, 10), (300, 15020, 12)],
)
async def test_a_steady_limit_is_found_and_held(
    rate: int, accepted: int, throttled: int
) -> None:
    server, _ = await simulate([Phase(0.0, rate)], duration_s=60.0)

    # From the tenth second on: at least 95 % of the limit, at most 2 % refused.
    assert server.accepted_between(10, 60) >= 0.95 * 50 * rate
    assert server.throttled_share(10, 60) <= 0.02
    assert server.accepted_between(10, 60) == accepted
    assert sum(server.throttled[second] for second in range(10, 60)) == throttled


async def test_a_cold_start_reaches_the_limit_within_fifteen_seconds() -> None:
    server, _ = await simulate([Phase(0.0, 100.0)], duration_s=30.0)

    converged = server.converged_at(0, 100.0, 30)
    assert converged is not None
    assert converged <= 15
    # Windows of two round trips rather than of a whole second, which take 8 s.
    assert converged == 2


async def test_a_halved_limit_is_followed_within_five_seconds() -> None:
    server, pacer = await simulate(
        [Phase(0.0, 100.0), Phase(30.0, 50.0)], duration_s=60.0
    )

    converged = server.converged_at(30, 50.0, 60)
    assert converged is not None
    assert converged - 30 <= 5
    assert converged == 31
    # Refusals caused by the drop stay well under one second of the old limit.
    assert sum(server.throttled[second] for second in range(30, 35)) == 11
    assert pacer.controller.rate_at(60.0) == pytest.approx(50.0, rel=0.1)


async def test_a_tripled_limit_is_found_within_twenty_seconds() -> None:
    server, _ = await simulate([Phase(0.0, 50.0), Phase(30.0, 150.0)], duration_s=60.0)

    converged = server.converged_at(30, 150.0, 60)
    assert converged is not None
    assert converged - 30 <= 20
    assert converged == 40
