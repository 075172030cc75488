"""Latency, random faults, connections reset mid-body, and outages."""

from __future__ import annotations

import statistics
from collections import Counter

import aiohttp
import pytest

from powerp_async.simulator._faults import FaultPicker, LatencyModel
from powerp_async.simulator._scenario import (
    Faults,
    Latency,
    Outage,
    RequestLimit,
    Scenario,
)
from powerp_async.simulator._scenarios import seeded_rng

from .conftest import query_body
from .test_limits import scenario_api, served_app

MIX = (("500", 2.0), ("502", 1.0), ("503", 1.0), ("504", 1.0), ("reset", 1.0))
STATUS_OF = {None: 200, "500": 500, "502": 502, "503": 503, "504": 504, "reset": 0}


def test_the_fault_mix_keeps_its_proportions_over_a_seeded_run() -> None:
    draws = 200_000
    picker = FaultPicker(Faults(0.05, MIX), seeded_rng(7, "faults"))
    counts = Counter(picker.pick() for _ in range(draws))

    shares = {kind: counts[kind] / draws for kind in STATUS_OF if kind}
    # Four standard deviations of a binomial share at this size: at most 0.0012.
    assert shares == pytest.approx(
        {
            "500": 0.05 / 3,
            "502": 0.05 / 6,
            "503": 0.05 / 6,
            "504": 0.05 / 6,
            "reset": 0.05 / 6,
        },
        abs=0.0012,
    )
    assert 1 - counts[None] / draws == pytest.approx(0.05, abs=0.002)


def test_the_same_seed_draws_the_same_faults() -> None:
    def sequence(seed: int) -> list[str | None]:
        picker = FaultPicker(Faults(0.3), seeded_rng(seed, "faults"))
        return [picker.pick() for _ in range(500)]

    assert sequence(1) == sequence(1)
    assert sequence(1) != sequence(2)


async def test_a_seeded_run_over_http_meets_the_drawn_faults_in_order(clock) -> None:
    faults = Faults(0.25, MIX)
    picker = FaultPicker(faults, seeded_rng(5, "faults"))
    expected = [STATUS_OF[picker.pick()] for _ in range(60)]
    async with scenario_api(Scenario(faults=faults), clock, seed=5) as api:
        seen = [await _status_or_reset(api) for _ in range(60)]
        snapshot = api.simulator.stats.snapshot()

    assert seen == expected
    assert snapshot["requests"]["query"] == {
        str(status): count for status, count in sorted(Counter(expected).items())
    }
    failed = sum(second["failed"] for second in snapshot["per_second"])
    assert failed == 60 - expected.count(200)
    assert snapshot["points_served"] == 20 * expected.count(200)


async def _status_or_reset(api) -> int:
    try:
        return (await api.query()).status
    except aiohttp.ClientPayloadError:
        return 0


@pytest.mark.parametrize(
    ("kind", "status", "content_type", "body"),
    [
        (
            "500",
            500,
            "application/json",
            b'{"error":"internal_error","message":"the query failed on the server"}',
        ),
        (
            "502",
            502,
            "text/html",
            b"<!DOCTYPE html>\n<html><head><title>502 Bad Gateway</title></head>\n"
            b"<body><h1>502 Bad Gateway</h1><p>The backend sent an invalid answer.</p>"
            b"<hr><p>edge proxy</p></body></html>\n",
        ),
        (
            "503",
            503,
            "application/json",
            b'{"error":"unavailable","message":"the service is overloaded; expected '
            b'to accept queries again soon"}',
        ),
        (
            "504",
            504,
            "text/html",
            b"<!DOCTYPE html>\n<html><head><title>504 Gateway Timeout</title></head>\n"
            b"<body><h1>504 Gateway Timeout</h1><p>The backend did not answer in "
            b"time.</p><hr><p>edge proxy</p></body></html>\n",
        ),
    ],
)
async def test_each_fault_answers_as_its_source_would(
    clock, kind, status, content_type, body
) -> None:
    scenario = Scenario(faults=Faults(1.0, ((kind, 1.0),)), retry_after="fractional")
    async with scenario_api(scenario, clock) as api:
        answer = await api.query()

    assert answer.status == status
    assert answer.headers["Content-Type"].split(";")[0] == content_type
    assert answer.body == body
    assert answer.headers.get("Retry-After") == ("1.000" if kind == "503" else None)


async def test_a_reset_breaks_a_200_answer_midway(clock) -> None:
    scenario = Scenario(faults=Faults(1.0, (("reset", 1.0),)))
    async with scenario_api(scenario, clock) as api:
        headers = {
            "Authorization": f"Bearer {api.token}",
            "Accept-Encoding": "identity",
        }
        url = f"{api.simulator.base_url}/v1/Query"
        async with api.http.post(url, json=query_body(), headers=headers) as response:
            status = response.status
            encoding = response.headers["Transfer-Encoding"]
            start = await response.content.readany()
            with pytest.raises(aiohttp.ClientPayloadError):
                await response.read()

        snapshot = api.simulator.stats.snapshot()

    assert (status, encoding) == (200, "chunked")
    assert start.startswith(b'[{"index":"1","value":')
    assert snapshot["requests"]["query"] == {"0": 1}
    assert snapshot["points_served"] == 0
    totals = [
        sum(second[outcome] for second in snapshot["per_second"])
        for outcome in ("accepted", "throttled", "failed", "points")
    ]
    assert totals == [1, 0, 1, 0]  # the token, and the broken query


async def test_an_outage_answers_503_to_everything_while_it_lasts(clock) -> None:
    outage = Outage(at_s=5.0, duration_s=10.0)
    scenario = Scenario(outage=outage, retry_after="fractional")
    async with scenario_api(scenario, clock) as api:
        clock.now_s = 1004.999
        before = await api.query()
        clock.now_s = 1005.0
        first = await api.query()
        url = f"{api.simulator.base_url}/v1/measurements"
        async with api.http.get(url) as response:
            metadata = response.status

        clock.now_s = 1014.5
        last = await api.query()
        clock.now_s = 1015.0
        after = await api.query()

    assert before.status == 200
    assert (first.status, first.headers["Retry-After"]) == (503, "10.000")
    assert first.json() == {
        "error": "unavailable",
        "message": "the service is down for maintenance; expected back in 10.000 s",
    }
    assert metadata == 503
    assert (last.status, last.headers["Retry-After"]) == (503, "0.500")
    assert after.status == 200


def test_latency_is_lognormal_around_its_median() -> None:
    model = LatencyModel(Latency(median_ms=100.0, spread=0.69), seeded_rng(1, "x"))
    samples = sorted(model.sample_s(0) for _ in range(20_000))

    median = statistics.median(samples)
    p99 = samples[int(0.99 * len(samples))]
    assert median == pytest.approx(0.100, rel=0.02)
    assert p99 / median == pytest.approx(4.98, rel=0.1)  # exp(2.326 * 0.69)


def test_latency_grows_with_the_points_asked_for() -> None:
    latency = Latency(median_ms=100.0, spread=0.0, per_point_us=2.0)
    model = LatencyModel(latency, seeded_rng(1, "x"))

    assert model.sample_s(0) == pytest.approx(0.100, abs=1e-12)
    assert model.sample_s(20 * 1799) == pytest.approx(0.100 + 0.07196, abs=1e-12)


async def test_answers_take_their_drawn_latency_and_refusals_two_ms() -> None:
    sleeps: list[float] = []

    async def record(seconds: float) -> None:
        sleeps.append(seconds)

    latency = Latency(median_ms=100.0, spread=0.5, per_point_us=50.0)
    scenario = Scenario(requests=RequestLimit(1.0), latency=latency)
    async with served_app(scenario, record, seed=3) as api:
        statuses = await api.statuses(2)

    model = LatencyModel(latency, seeded_rng(3, "latency"))
    assert statuses == [200, 429]
    # The token, the query of 20 points, then the refusal.
    assert sleeps == [model.sample_s(0), model.sample_s(20), 0.002]
