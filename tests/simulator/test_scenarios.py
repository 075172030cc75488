"""Scenarios: validation, presets by name, ``powerp simulate`` options, the ceiling of
an export, and the per-second stats a benchmark reads."""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import aiohttp
import pytest
from aiohttp import web
from hypothesis import given, settings
from hypothesis import strategies as st

from powerp_async.errors import ConfigurationError
from powerp_async.models import Measurement
from powerp_async.planning import TimeRange, max_slice_us, plan_totals
from powerp_async.simulator import SimulatorSettings, SimulatorStats, build_app
from powerp_async.simulator._app import POLICIES
from powerp_async.simulator._ceiling import (
    Ceiling,
    _count_blocks,
    ceiling,
    fewest_requests,
)
from powerp_async.simulator._cli import _parser, run
from powerp_async.simulator._scenario import (
    CostQuota,
    Faults,
    Latency,
    Outage,
    RequestLimit,
    Scenario,
    SizeLimit,
)
from powerp_async.simulator._scenario_cli import scenario_from_options
from powerp_async.simulator._scenarios import (
    PRESET_EXAMPLES,
    REALISTIC_LATENCY,
    named_scenario,
)

from .conftest import ANCHOR_US, fetch_token
from .test_limits import Api, Served

START = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
SPAN = TimeRange(ANCHOR_US, ANCHOR_US + 7_200_000_000, 1_000_000)
"""Two hours of one-second windows: five slices of 1,440 windows."""


def signals(
    database_id: int, aggregation: str, count: int, first: datetime | None = None
) -> list[Measurement]:
    return [
        Measurement(
            database_id, str(n), default_agg=aggregation, first_data_point=first
        )
        for n in range(1, count + 1)
    ]


EXPORT = signals(1, "mean", 45) + signals(2, "last", 7)
"""Three blocks and one per slice: 20 requests of 52 x 7,200 = 374,400 points."""


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: RequestLimit(0),
            "RequestLimit.rate_per_s must be a positive number, got 0",
        ),
        (
            lambda: RequestLimit(1, burst=0),
            "RequestLimit.burst must be a whole number >= 1, got 0",
        ),
        (
            lambda: RequestLimit(0.5, window_s=1),
            "RequestLimit.rate_per_s * window_s must allow at least one request per "
            "window, got 0.5 * 1",
        ),
        (
            lambda: RequestLimit(3, window_s=0.5),
            "RequestLimit.rate_per_s * window_s must be a whole number of requests "
            "per window, got 3 * 0.5 = 1.5",
        ),
        (
            lambda: CostQuota(float("nan")),
            "CostQuota.points_per_s must be a positive number, got nan",
        ),
        (
            lambda: SizeLimit(10, answer="drop"),
            "SizeLimit.answer must be one of '413', 'timeout', got 'drop'",
        ),
        (
            lambda: Latency(spread=-1),
            "Latency.spread must be a number from 0 to 3, got -1",
        ),
        (
            # Its tail would overflow the latency drawn for a query.
            lambda: Latency(spread=1e6),
            "Latency.spread must be a number from 0 to 3, got 1000000.0",
        ),
        (lambda: Faults(1.5), "Faults.rate must be a share from 0 to 1, got 1.5"),
        (
            lambda: Faults(0.1, (("418", 1.0),)),
            "Faults.mix must be a non-empty tuple of (kind, weight) pairs with kinds "
            "from 500, 502, 503, 504, reset and positive weights, got the item "
            "('418', 1.0)",
        ),
        (lambda: Outage(-1, 5), "Outage.at_s must be a number >= 0, got -1"),
        (
            lambda: Scenario(max_in_flight=0),
            "Scenario.max_in_flight must be a whole number >= 1, got 0",
        ),
        (
            lambda: Scenario(retry_after="never"),
            "Scenario.retry_after must be one of 'seconds', 'fractional', "
            "'http-date', 'missing', got 'never'",
        ),
        (
            lambda: Scenario(schedule=((30, 0.5), (10, 2))),
            "Scenario.schedule must be a tuple of (offset_s, factor) pairs with "
            "offsets >= 0 in increasing order and positive factors, got the step "
            "(10, 2)",
        ),
        (
            lambda: Scenario(requests=CostQuota(5)),
            "Scenario.requests must be a RequestLimit or None, got CostQuota",
        ),
        (
            lambda: SimulatorSettings(scenario="bucket-100"),
            "SimulatorSettings.scenario must be a Scenario or None, got str",
        ),
    ],
)
def test_bad_scenarios_name_the_field(build, message) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build()

    assert str(caught.value) == message


def test_the_default_simulator_has_no_limits() -> None:
    settings = SimulatorSettings(anchor_us=ANCHOR_US)

    assert settings.scenario is None
    assert build_app(settings)[POLICIES] == ()


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (
            "bucket-100",
            Scenario(
                name="bucket-100",
                requests=RequestLimit(100.0, burst=10),
                latency=REALISTIC_LATENCY,
            ),
        ),
        (
            "window-10s",
            Scenario(
                name="window-10s",
                requests=RequestLimit(100.0, window_s=10.0),
                latency=REALISTIC_LATENCY,
            ),
        ),
        (
            "faults-5pct",
            Scenario(
                name="faults-5pct",
                requests=RequestLimit(100.0, burst=10),
                faults=Faults(0.05),
                latency=REALISTIC_LATENCY,
            ),
        ),
        (
            "outage-30s",
            Scenario(
                name="outage-30s",
                requests=RequestLimit(100.0, burst=10),
                outage=Outage(20.0, 30.0),
                latency=REALISTIC_LATENCY,
            ),
        ),
        (
            "halve-then-triple",
            Scenario(
                name="halve-then-triple",
                requests=RequestLimit(100.0, burst=10),
                schedule=((30.0, 0.5), (60.0, 1.5)),
                latency=REALISTIC_LATENCY,
            ),
        ),
        ("none", Scenario(name="none")),
    ],
)
def test_presets_by_name(name, expected) -> None:
    assert named_scenario(name) == expected


def test_every_listed_preset_builds_under_its_own_name() -> None:
    assert [named_scenario(name).name for name in PRESET_EXAMPLES] == list(
        PRESET_EXAMPLES
    )


def test_an_unknown_preset_lists_the_known_ones() -> None:
    with pytest.raises(ConfigurationError) as caught:
        named_scenario("bucket")

    assert str(caught.value) == (
        "unknown scenario 'bucket': expected one of none, bucket-<rate>, "
        "window-<seconds>s, cost-quota, size-limit, size-timeout, concurrency-<n>, "
        "faults-<percent>pct, outage-<seconds>s, halve-then-triple"
    )


def test_a_preset_describes_itself_in_one_line() -> None:
    assert named_scenario("size-timeout").describe() == (
        "size-timeout: at most 10000 points per query, else held 90 s, 504; latency "
        "median 100 ms + 2 us/point; Retry-After seconds"
    )


def options_scenario(*argv: str) -> Scenario | None:
    return scenario_from_options(_parser().parse_args(list(argv)))


def test_options_refine_a_preset() -> None:
    scenario = options_scenario(
        "--scenario", "bucket-100", "--burst", "1", "--retry-after-form", "http-date"
    )

    assert scenario == Scenario(
        name="bucket-100 (refined)",
        requests=RequestLimit(100.0, burst=1),
        latency=REALISTIC_LATENCY,
        retry_after="http-date",
    )


def test_options_alone_build_every_part() -> None:
    scenario = options_scenario(
        *("--rate", "50", "--window-s", "10", "--max-in-flight", "8"),
        *("--quota-points", "1e5", "--max-points", "10000", "--oversize", "timeout"),
        *("--latency-ms", "120", "--latency-per-point-us", "1.5"),
        *("--fault-rate", "0.05", "--fault-mix", "500=2,reset=1"),
        *("--outage-at", "20", "--outage-s", "30", "--schedule", "30:0.5,60:1.5"),
    )

    assert scenario == Scenario(
        name="custom",
        requests=RequestLimit(50.0, window_s=10.0),
        cost=CostQuota(100_000.0),
        size=SizeLimit(10_000, answer="timeout"),
        max_in_flight=8,
        latency=Latency(median_ms=120.0, per_point_us=1.5),
        faults=Faults(0.05, (("500", 2.0), ("reset", 1.0))),
        outage=Outage(20.0, 30.0),
        schedule=((30.0, 0.5), (60.0, 1.5)),
    )


def test_zero_latency_removes_the_presets_latency_and_no_option_means_none() -> None:
    scenario = options_scenario("--scenario", "faults-5pct", "--latency-ms", "0")

    assert scenario is not None
    assert (scenario.latency, scenario.faults) == (None, Faults(0.05))
    assert options_scenario() is None
    assert options_scenario("--scenario", "none") == Scenario(name="none")


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--burst", "5"], "powerp simulate: --burst needs --rate as well\n"),
        (
            ["--outage-at", "5"],
            "powerp simulate: --outage-at needs --outage-s as well\n",
        ),
        (
            ["--outage-s", "5"],
            "powerp simulate: --outage-s needs --outage-at as well\n",
        ),
        (
            ["--oversize", "timeout", "--oversize-hold-s", "5"],
            "powerp simulate: --oversize, --oversize-hold-s needs --max-points as "
            "well\n",
        ),
        (
            ["--fault-rate", "2"],
            "powerp simulate: --fault-rate must be a share from 0 to 1, got 2.0\n",
        ),
        (
            ["--max-points", "0"],
            "powerp simulate: --max-points must be a whole number >= 1, got 0\n",
        ),
        (
            ["--rate", "10", "--max-in-flight", "0"],
            "powerp simulate: --max-in-flight must be a whole number >= 1, got 0\n",
        ),
        (
            ["--rate", "5", "--window-s", "0.5"],
            "powerp simulate: --rate * --window-s must be a whole number of requests "
            "per window, got 5 * 0.5 = 2.5\n",
        ),
        (
            ["--rate", "1e300", "--window-s", "1e300"],
            "powerp simulate: --rate * --window-s must be a whole number of requests "
            "per window, got 1e+300 * 1e+300 = inf\n",
        ),
        (
            ["--rate", "0.5", "--window-s", "1"],
            "powerp simulate: --rate * --window-s must allow at least one request per "
            "window, got 0.5 * 1\n",
        ),
        (
            ["--scenario", "bucket-20", "--latency-ms", "-1"],
            "powerp simulate: --latency-ms must be a positive number, got -1.0\n",
        ),
        (
            ["--scenario", "bucket-0"],
            "powerp simulate: RequestLimit.rate_per_s must be a positive number, "
            "got 0.0\n",
        ),
    ],
)
def test_inconsistent_options_are_usage_errors(capsys, argv, error) -> None:
    assert run(argv) == 2
    assert capsys.readouterr().err == error


def test_a_malformed_schedule_is_refused_by_the_parser(capsys) -> None:
    assert run(["--schedule", "30-0.5"]) == 2
    assert "expected offset:factor pairs such as 30:0.5,60:1.5, got '30-0.5'" in (
        capsys.readouterr().err
    )


def test_the_presets_can_be_listed(capsys) -> None:
    assert run(["--list-scenarios"]) == 0

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(PRESET_EXAMPLES)
    assert lines[0] == "none: no limits, no faults"
    assert lines[3] == (
        "bucket-100: 100 queries/s, burst 10; latency median 100 ms + 2 us/point; "
        "Retry-After seconds"
    )


async def test_the_cli_serves_a_scenario_and_its_stats() -> None:
    child = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "powerp_async.simulator", "--port", "0"),
        *("--anchor", "2026-12-04T12:00:00Z", "--scenario", "window-1s"),
        *("--rate", "1", "--latency-ms", "0"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        ready = (await asyncio.wait_for(child.stdout.readline(), timeout=30)).decode()
        described = (await child.stdout.readline()).decode()
        base_url = re.fullmatch(r"PowerP simulator serving (\S+)\n", ready).group(1)
        statuses, retry_after, totals = await _two_queries_and_stats(base_url)
    finally:
        child.terminate()
        await asyncio.wait_for(child.communicate(), timeout=30)

    assert described == (
        "scenario window-1s (refined): 1 queries per 1 s window; Retry-After seconds\n"
    )
    assert (statuses, retry_after) == ([200, 429], "1")
    assert totals == [2, 1, 0, 20]


async def _two_queries_and_stats(base_url: str) -> tuple[list[int], str, list[int]]:
    served = Served(base_url.removesuffix("/rt-api/api"))
    async with aiohttp.ClientSession() as http:
        api = Api(http, served, await fetch_token(http, served, "demo-secret", "demo"))
        answers = [await api.query() for _ in range(2)]
        async with http.get(f"{served.origin}/_simulator/stats?since=0") as response:
            per_second = (await response.json())["per_second"]

    totals = [
        sum(second[key] for second in per_second)
        for key in ("accepted", "throttled", "failed", "points")
    ]
    statuses = [answer.status for answer in answers]
    return statuses, answers[-1].headers.get("Retry-After", ""), totals


@asynccontextmanager
async def stats_served(stats: SimulatorStats) -> AsyncIterator[str]:
    """A simulator app counting into ``stats``; yields its stats URL."""
    runner = web.AppRunner(
        build_app(SimulatorSettings(anchor_us=ANCHOR_US), stats=stats)
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/_simulator/stats"
    finally:
        await runner.cleanup()


async def test_stats_give_points_per_second_from_a_chosen_second(http) -> None:
    now = [100.0]
    stats = SimulatorStats(wall_clock=lambda: now[0])
    for second, status, points in [(100, 200, 20), (101, 429, 0), (102, 200, 40)]:
        now[0] = second + 0.5
        stats.record("query", status, points)

    async with stats_served(stats) as url:
        async with http.get(f"{url}?since=101") as response:
            recent = (await response.json())["per_second"]

        async with http.get(f"{url}?since=soon") as response:
            refused = response.status, await response.json()

    assert recent == [
        {"second": 101, "accepted": 0, "throttled": 1, "failed": 0, "points": 0},
        {"second": 102, "accepted": 1, "throttled": 0, "failed": 0, "points": 40},
    ]
    assert refused == (
        400,
        {
            "error": "invalid_parameter",
            "message": "since must be a whole number of seconds since the epoch, "
            "got 'soon'",
        },
    )


async def test_stats_give_one_endpoints_seconds_apart(http) -> None:
    now = [100.0]
    stats = SimulatorStats(wall_clock=lambda: now[0])
    answers = [(100, "token", 200), (100, "query", 200), (101, "measurements", 200)]
    answers += [(101, "query", 429), (101, "query", 200)]
    for second, endpoint, status in answers:
        now[0] = second + 0.5
        stats.record(endpoint, status, 20 if endpoint == "query" else 0)

    async with stats_served(stats) as url:
        async with http.get(f"{url}?endpoint=query") as response:
            queries = (await response.json())["per_second"]

        async with http.get(f"{url}?since=101") as response:
            every = (await response.json())["per_second"]

        async with http.get(f"{url}?endpoint=Query") as response:
            refused = response.status, (await response.json())["message"]

    assert queries == [
        {"second": 100, "accepted": 1, "throttled": 0, "failed": 0, "points": 20},
        {"second": 101, "accepted": 1, "throttled": 1, "failed": 0, "points": 20},
    ]
    assert every == [
        {"second": 101, "accepted": 2, "throttled": 1, "failed": 0, "points": 20},
    ]
    assert refused == (
        400,
        "endpoint must be one of measurements, other, query, token, got 'Query'",
    )


def test_without_limits_the_ceiling_is_the_planners_count_and_no_wait() -> None:
    assert plan_totals(EXPORT, SPAN, block_size=20) == (20, 374_400)
    assert ceiling(None, EXPORT, SPAN) == Ceiling(20, 374_400, 0.0, "none", ())


BUCKET = RequestLimit(2.0, burst=4)


@pytest.mark.parametrize(
    ("scenario", "bound", "seconds"),
    [
        # (20 requests - burst 4) / 2 per second
        (Scenario(requests=BUCKET), "requests", 8.0),
        # 5 per 5 s window: the fourth window opens at 15 s
        (Scenario(requests=RequestLimit(1.0, window_s=5.0)), "requests", 15.0),
        # (374,400 points - 40,000) / 20,000 per second
        (Scenario(cost=CostQuota(20_000, burst_points=40_000)), "cost", 16.72),
        # 20 answers of exactly 100 ms, 4 at a time
        (
            Scenario(max_in_flight=4, latency=Latency(median_ms=100.0, spread=0.0)),
            "in-flight",
            0.5,
        ),
        # 4 + 2 * 3 before the outage, 4 refilled during it, 6 more at 2/s after 13 s
        (Scenario(requests=BUCKET, outage=Outage(3.0, 10.0)), "requests", 16.0),
        # window 1 falls in the outage, window 2 opens when it ends at 12 s
        (
            Scenario(requests=RequestLimit(1.0, window_s=5.0), outage=Outage(4.0, 8.0)),
            "requests",
            20.0,
        ),
        # 4 + 2 * 2 by 2 s, then 1/s for the remaining 12
        (Scenario(requests=BUCKET, schedule=((2.0, 0.5),)), "requests", 14.0),
        # a fifth of the attempts fail: 25 attempts
        (Scenario(requests=BUCKET, faults=Faults(0.2)), "requests", 10.5),
        # one answer, all requests sent at once: 100 ms and 18,720 points at 2 us
        (Scenario(latency=Latency(per_point_us=2.0)), "latency", 0.13744),
        # plus one answer: 100 ms and 18,720 points at 2 us
        (
            Scenario(requests=BUCKET, latency=Latency(per_point_us=2.0)),
            "requests",
            8.13744,
        ),
    ],
)
def test_the_ceiling_of_each_limit(scenario, bound, seconds) -> None:
    result = ceiling(scenario, EXPORT, SPAN)

    assert (result.requests, result.points, result.bound) == (20, 374_400, bound)
    assert result.seconds == pytest.approx(seconds, abs=1e-9)


def test_a_size_limit_reshapes_the_blocks_of_the_ceiling() -> None:
    # 10,000 points: 45 signals go best as blocks of 15 over 11 slices of 666 windows
    # (33 requests), 7 signals as one block over 6 slices of 1,428 (6 requests).
    scenario = Scenario(requests=BUCKET, size=SizeLimit(10_000))
    result = ceiling(SimulatorSettings(scenario=scenario), EXPORT, SPAN)

    assert (result.requests, result.points) == (39, 374_400)
    assert (result.bound, result.seconds) == ("requests", 17.5)


@pytest.mark.parametrize("answer", ["413", "timeout"])
def test_a_size_limit_bounds_the_ceiling_whatever_it_answers(answer) -> None:
    # A query held until it times out is refused as surely as one answered 413:
    # the best client sends neither, so both limits give the same ceiling.
    scenario = Scenario(requests=BUCKET, size=SizeLimit(10_000, answer=answer))
    result = ceiling(scenario, EXPORT, SPAN)

    assert (result.requests, result.bound, result.seconds) == (39, "requests", 17.5)


def test_the_ceiling_counts_late_signals_as_the_planner_does() -> None:
    late = signals(3, "max", 30, START + timedelta(minutes=50))
    later = signals(4, "min", 9, START + timedelta(minutes=100))
    export = EXPORT + late + later
    # Just under a full block: the slices stay those of the planner.
    just_under = 20 * 1799 - 1

    assert fewest_requests(export, SPAN, just_under) == plan_totals(
        export, SPAN, block_size=20
    )
    # 30 late signals in the last 3 slices (2 blocks each), 9 in the last slice only.
    assert fewest_requests(export, SPAN, just_under) == (20 + 6 + 1, 516_960)


@settings(max_examples=60, deadline=None)
@given(
    window_ms=st.sampled_from([200, 1_000, 7_000, 60_000]),
    windows=st.integers(1, 20_000),
    first_offsets_s=st.lists(st.integers(-3_600, 200_000), min_size=1, max_size=45),
)
def test_counting_blocks_agrees_with_the_planner(
    window_ms, windows, first_offsets_s
) -> None:
    window_us = window_ms * 1_000
    span = TimeRange(ANCHOR_US, ANCHOR_US + windows * window_us, window_us)
    firsts = [START + timedelta(seconds=offset) for offset in first_offsets_s]
    group = [
        Measurement(1, str(n), default_agg="mean", first_data_point=first)
        for n, first in enumerate(firsts)
    ]
    starts = sorted(ANCHOR_US + offset * 1_000_000 for offset in first_offsets_s)
    slice_windows = max_slice_us(window_us) // window_us

    assert _count_blocks(starts, span, slice_windows, 20) == plan_totals(
        group, span, block_size=20
    )
