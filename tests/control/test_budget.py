"""The retry budget: it runs dry, delays retries instead of dropping them, refills."""

from __future__ import annotations

import logging

import anyio
import pytest

from powerp_async.control import BudgetSettings, FakeClock, RetryBudget
from powerp_async.errors import ConfigurationError

pytestmark = pytest.mark.timeout(10)


def small_budget(clock: FakeClock, **changes: float) -> RetryBudget:
    """Room for four retries, no time refill, no share limit unless asked."""
    settings: dict[str, float] = {
        "capacity": 20.0,
        "refill_per_s": 0.0,
        "min_retries_per_window": 1_000,
    }
    settings.update(changes)
    return RetryBudget(clock, BudgetSettings(**settings))  # type: ignore[arg-type]


def empty_budget(clock: FakeClock, **changes: float) -> RetryBudget:
    budget = small_budget(clock, **changes)
    while budget.try_spend():
        pass
    return budget


async def spend_in_task(
    budget: RetryBudget, clock: FakeClock, finished: list[float]
) -> None:
    await budget.spend()
    finished.append(clock.now())


def test_retries_deplete_the_bucket(clock: FakeClock) -> None:
    budget = small_budget(clock)

    assert [budget.try_spend() for _ in range(5)] == [True] * 4 + [False]
    assert budget.level == 0.0
    assert budget.ready_at(0.0) == float("inf")


def test_a_retry_after_a_timeout_costs_double(clock: FakeClock) -> None:
    budget = small_budget(clock)

    assert budget.try_spend(after_timeout=True)
    assert budget.level == 10.0


async def test_an_empty_bucket_delays_a_retry_until_successes_refill_it(
    clock: FakeClock,
) -> None:
    budget = empty_budget(clock)
    finished: list[float] = []

    async with anyio.create_task_group() as group:
        group.start_soon(spend_in_task, budget, clock, finished)
        await clock.advance(3.0)
        for _ in range(4):
            budget.on_success(clock.now())
        await clock.advance(1.0)
        assert finished == []

        budget.on_success(clock.now())
        await clock.advance(0.0)

    assert finished == [4.0]
    assert budget.level == 0.0
    assert budget.delayed == 1


async def test_an_empty_bucket_refills_with_time(clock: FakeClock) -> None:
    budget = empty_budget(clock, refill_per_s=2.0)
    finished: list[float] = []

    async with anyio.create_task_group() as group:
        group.start_soon(spend_in_task, budget, clock, finished)
        await clock.advance(10.0)

    assert finished == [2.5]
    assert budget.level == pytest.approx(15.0)


def test_the_bucket_never_overflows(clock: FakeClock) -> None:
    budget = small_budget(clock, refill_per_s=1.0)
    budget.try_spend()
    for _ in range(100):
        budget.on_success(clock.now())

    assert budget.level == 20.0


async def test_retries_are_held_to_a_share_of_recent_requests(
    clock: FakeClock,
) -> None:
    budget = RetryBudget(clock, BudgetSettings(min_retries_per_window=2))
    for second in range(30):
        budget.on_request(float(second))
    await clock.advance(30.0)

    # 10 % of 30 requests in the last 60 s: three retries.
    assert [budget.try_spend() for _ in range(4)] == [True, True, True, False]
    assert budget.ready_at(30.0) == 90.0

    # A fourth retry needs 40 requests.
    for _ in range(9):
        budget.on_request(30.0)
    assert budget.ready_at(30.0) == 90.0
    budget.on_request(30.0)
    assert budget.try_spend()


async def test_a_share_limited_retry_goes_when_old_retries_expire(
    clock: FakeClock,
) -> None:
    budget = RetryBudget(clock, BudgetSettings(min_retries_per_window=1))
    budget.on_request(0.0)
    assert budget.try_spend()
    finished: list[float] = []

    async with anyio.create_task_group() as group:
        group.start_soon(spend_in_task, budget, clock, finished)
        await clock.advance(100.0)

    assert finished == [60.0]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"capacity": 0.0}, "BudgetSettings.capacity must be a number above zero"),
        ({"refill_per_s": -1.0}, "BudgetSettings.refill_per_s must be zero or more"),
        ({"capacity": 8.0}, r"capacity \(8.0\) must hold at least one retry"),
    ],
)
def test_settings_name_the_bad_field(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        BudgetSettings(**changes)  # type: ignore[arg-type]


async def test_a_spell_of_delays_is_told_once_naming_the_limit(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    budget = empty_budget(clock, refill_per_s=5.0)  # a retry's 5 tokens a second
    shared = small_budget(clock, min_retries_per_window=1)
    finished: list[float] = []

    with caplog.at_level(logging.DEBUG, logger="powerp_async.control.budget"):
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(spend_in_task, budget, clock, finished)
            await clock.advance(3.0)
            await clock.advance(1.0)
            await budget.spend()  # paid at once: the spell is over

            assert shared.try_spend()
            group.start_soon(spend_in_task, shared, clock, finished)
            await clock.advance(0.0)
            group.cancel_scope.cancel()

    assert finished == [1.0, 2.0, 3.0]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warned == [
        "retry budget: 0 of 20 tokens left, a retry costs 5; delaying retries",
        "retry budget: 1 retries in the last 60 s, as many as 10% of the 0 requests "
        "sent allow; delaying retries",
    ]
    assert len(caplog.records) == 4  # and the two later waits of the spell, at debug
