"""An export through every fault the simulator has, all at once, checked point by point.

Server errors of every kind (500, a proxy's 502 page, 503, 504), connections reset
halfway through a 200 answer, throttling with ``Retry-After`` in each of its forms, a
short outage and tokens that expire every second: the dataset must still hold
every point the simulator defines, once.

The client's breaker probes after a fraction of a second instead of 5 to 30 s, its
retry budget allows a retry per request and a block gets 12 attempts, since three
requests in ten fail here by design; backoffs are scaled down the same way. All keep
their defaults elsewhere in the tests.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import orjson
import pytest

from powerp_async import ExportSpec, PowerPClient, export
from powerp_async.control import (
    AdaptivePacer,
    BudgetSettings,
    CircuitBreaker,
    CircuitSettings,
    MonotonicClock,
    RateController,
    RateSettings,
    RetryBudget,
)
from powerp_async.models import Measurement
from powerp_async.simulator import (
    Faults,
    Outage,
    RequestLimit,
    Scenario,
    Simulator,
)
from powerp_async.simulator._scenario import RETRY_AFTER_FORMS

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, expected_points
from .test_export import read_dataset

FAULT_STATUSES = ("500", "502", "503", "504")
RESET = "0"  # how the simulator counts an answer cut off mid-body
MAX_ATTEMPTS = 12
"""Enough for a block to outlast the outage and a few random faults besides."""


def everything_at_once(retry_after: str) -> Scenario:
    return Scenario(
        name="everything",
        # Well below the pacer's first rate of 100/s, so that 429s come however
        # loaded the machine: at 60/s a client slowed by other work stayed under it.
        requests=RequestLimit(rate_per_s=30, burst=3),
        faults=Faults(rate=0.3),
        outage=Outage(at_s=0.8, duration_s=1.0),
        retry_after=retry_after,  # type: ignore[arg-type]
    )


def short_backoff_s(attempt: int) -> float:
    """Doubling from 50 ms up to 0.4 s: the engine's shape, scaled to a short test."""
    return min(0.05 * 2**attempt, 0.4)


def patient_pacer() -> AdaptivePacer:
    """The adaptive pacer, with quick probes and retries for a server this faulty."""
    clock = MonotonicClock()
    return AdaptivePacer(
        max_in_flight=6,
        controller=RateController(RateSettings(initial_rate=100.0)),
        breaker=CircuitBreaker(
            CircuitSettings(min_probe_interval_s=0.2, max_probe_interval_s=0.5)
        ),
        budget=RetryBudget(clock, BudgetSettings(max_retry_share=1.0)),
        clock=clock,
    )


@pytest.mark.parametrize("retry_after", RETRY_AFTER_FORMS)
async def test_an_export_through_every_fault_is_exact(
    settings, tmp_path, monkeypatch, retry_after
) -> None:
    monkeypatch.setattr("powerp_async._engine.backoff_s", short_backoff_s)
    faulty = replace(settings, scenario=everything_at_once(retry_after), token_ttl_s=1)
    simulator = Simulator(faulty)
    listed = map(Measurement.from_api, orjson.loads(simulator.tenant.metadata_json()))
    signals = [m for m in listed if m.database_id == 1][:40]
    spec = ExportSpec(
        out=tmp_path / "out",
        start=ANCHOR - timedelta(minutes=60),
        end=ANCHOR,
        window="10s",
        databases=(1,),
        indexes=tuple(m.index for m in signals),
        block_size=2,
        rows_per_flush=3_000,
    )

    async with (
        simulator,
        PowerPClient(
            client_id="tester",
            client_secret=CLIENT_SECRET,
            base_url=simulator.base_url,
            pacer=patient_pacer(),
            max_attempts=MAX_ATTEMPTS,
        ) as client,
    ):
        report = await export(client, spec)

    served = simulator.stats.snapshot()
    by_status = served["requests"]["query"]
    met = {status for status, count in by_status.items() if count}
    assert {*FAULT_STATUSES, RESET, "429"} <= met, by_status
    assert served["tokens_issued"] >= 2  # renewed during the run
    assert report.complete
    assert report.blocks_failed == 0
    expected = expected_points(simulator.tenant, signals, spec.time_range())
    assert report.points == len(expected)
    assert_exact(read_dataset(spec.out), expected)
