"""The scenario's limits: token bucket, fixed windows, cost quota, size, concurrency.

Meters are checked exactly on elapsed times given by the test; limits served over
HTTP run on the fake clock of ``conftest``, so no test waits for a limit to refill.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from powerp_async.simulator import Simulator, SimulatorSettings, build_app
from powerp_async.simulator._answers import Sleep
from powerp_async.simulator._limits import FixedWindows, TokenBucket
from powerp_async.simulator._scenario import (
    CostQuota,
    Latency,
    RequestLimit,
    Scenario,
    SizeLimit,
)
from powerp_async.simulator._schedule import Schedule

from .conftest import ANCHOR_US, FakeClock, fetch_token, query_body


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class Api:
    """A logged-in caller of one running simulator."""

    def __init__(
        self, http: aiohttp.ClientSession, simulator: Simulator, token: str
    ) -> None:
        self.http = http
        self.simulator = simulator
        self.token = token

    async def query(self, **overrides: Any) -> Answer:
        headers = {"Authorization": f"Bearer {self.token}"}
        url = f"{self.simulator.base_url}/v1/Query"
        body = query_body(**overrides)
        async with self.http.post(url, json=body, headers=headers) as response:
            return Answer(response.status, response.headers, await response.read())

    async def statuses(self, count: int, **overrides: Any) -> list[int]:
        return [(await self.query(**overrides)).status for _ in range(count)]


@asynccontextmanager
async def scenario_api(
    scenario: Scenario, clock: FakeClock, *, seed: int = 0
) -> AsyncIterator[Api]:
    """A simulator enacting ``scenario`` on ``clock``, and a caller with a token."""
    settings = SimulatorSettings(anchor_us=ANCHOR_US, scenario=scenario, seed=seed)
    async with (
        Simulator(settings, clock=clock) as simulator,
        aiohttp.ClientSession() as http,
    ):
        token = await fetch_token(http, simulator, "demo-secret", "demo")
        yield Api(http, simulator, token)


def admitted(meter: TokenBucket | FixedWindows | _Window, until_ms: int) -> int:
    """How many requests pass when a client sends, every millisecond from 0 to
    ``until_ms``, as many as are let through."""
    count = 0
    for ms in range(until_ms + 1):
        while meter.take(ms / 1000) == 0:
            count += 1

    return count


@pytest.mark.parametrize(("seconds", "expected"), [(0, 5), (1, 15), (2.5, 30), (3, 35)])
def test_a_bucket_admits_exactly_rate_times_time_plus_burst(seconds, expected) -> None:
    bucket = TokenBucket(10.0, 5, Schedule())

    assert admitted(bucket, round(seconds * 1000)) == expected


def test_a_bucket_follows_its_schedule_exactly() -> None:
    # A burst of 5, then 10/s for 1 s, 5/s for 1 s and 30/s: 5 + 10 + 5 + 30 in 3 s.
    bucket = TokenBucket(10.0, 5, Schedule(((1.0, 0.5), (2.0, 3.0))))

    assert admitted(bucket, 3000) == 50


def test_a_bucket_says_how_long_to_wait_across_a_rate_change() -> None:
    bucket = TokenBucket(10.0, 1, Schedule(((1.0, 0.5),)))
    assert bucket.take(0.0) == 0
    assert bucket.take(0.95) == 0

    # 0.2 tokens at 0.97 s; 0.3 more by 1 s at 10/s, then 0.5 at 5/s: ready at 1.1 s.
    assert bucket.take(0.97) == pytest.approx(0.13, abs=1e-12)
    assert bucket.take(1.1) == 0


def test_fixed_windows_count_per_window_and_point_to_its_end() -> None:
    windows = FixedWindows(3, 10.0, Schedule())

    assert [windows.take(t) for t in (0.0, 2.0, 9.0, 9.5)] == [0, 0, 0, 0.5]
    assert [windows.take(t) for t in (10.0, 10.0, 10.0, 13.25)] == [0, 0, 0, 6.75]


def test_a_window_keeps_the_count_it_opened_with() -> None:
    windows = FixedWindows(10, 1.0, Schedule(((2.5, 0.5), (4.0, 3.0))))

    assert [admitted(_Window(windows, start), 999) for start in range(5)] == [
        10,
        10,
        10,  # the step at 2.5 s waits for the next window
        5,
        30,
    ]


class _Window:
    """The meter seen from ``start_s``: ``take(offset)`` takes at start + offset."""

    def __init__(self, windows: FixedWindows, start_s: int) -> None:
        self.windows = windows
        self.start_s = start_s

    def take(self, offset_s: float) -> float:
        return self.windows.take(self.start_s + offset_s)


async def test_the_bucket_throttles_queries_over_http(clock) -> None:
    scenario = Scenario(requests=RequestLimit(2.0, burst=3), retry_after="fractional")
    async with scenario_api(scenario, clock) as api:
        burst = await api.statuses(3)
        refused = await api.query()
        clock.now_s += 0.5
        refilled = await api.statuses(2)
        snapshot = api.simulator.stats.snapshot()

    assert burst == [200, 200, 200]
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "0.500"
    assert refused.json() == {
        "error": "rate_limited",
        "message": "too many queries: expected at most 2 per second (burst 3), got "
        "one more; retry in 0.500 s",
    }
    assert refilled == [200, 429]
    assert snapshot["requests"]["query"] == {"200": 4, "429": 2}


async def test_only_queries_with_a_valid_token_are_metered(clock) -> None:
    scenario = Scenario(requests=RequestLimit(1.0, burst=1))
    async with scenario_api(scenario, clock) as api:
        api.token, token = "bogus", api.token
        unauthorized = await api.statuses(3)
        api.token = token
        metered = await api.statuses(2)

    assert unauthorized == [401, 401, 401]
    assert metered == [200, 429]


@pytest.mark.parametrize(
    ("form", "at_3_s", "at_3_25_s"),
    [
        ("seconds", "7", "7"),
        ("fractional", "7.000", "6.750"),
        ("missing", None, None),
    ],
)
async def test_fixed_windows_answer_retry_after_to_the_window_end(
    clock, form, at_3_s, at_3_25_s
) -> None:
    limit = RequestLimit(0.2, window_s=10.0)  # 2 queries per 10 s window
    async with scenario_api(Scenario(requests=limit, retry_after=form), clock) as api:
        clock.now_s += 3.0
        first = await api.statuses(2)
        at_3 = await api.query()
        clock.now_s += 0.25
        at_3_25 = await api.query()
        clock.now_s += 6.75
        next_window = await api.statuses(3)

    assert first == [200, 200]
    assert (at_3.status, at_3.headers.get("Retry-After")) == (429, at_3_s)
    assert at_3.json()["message"] == (
        "too many queries: expected at most 2 per 10 s window, got one more; retry "
        "in 7.000 s"
    )
    assert (at_3_25.status, at_3_25.headers.get("Retry-After")) == (429, at_3_25_s)
    assert next_window == [200, 200, 429]


async def test_an_http_date_retry_after_is_the_window_end_by_the_date_header(
    clock,
) -> None:
    limit = RequestLimit(0.2, window_s=10.0)
    scenario = Scenario(requests=limit, retry_after="http-date")
    async with scenario_api(scenario, clock) as api:
        clock.now_s += 3.0
        await api.statuses(2)
        at_3 = await api.query()
        clock.now_s += 0.25
        at_3_25 = await api.query()

    waits = [
        parsedate_to_datetime(answer.headers["Retry-After"])
        - parsedate_to_datetime(answer.headers["Date"])
        for answer in (at_3, at_3_25)
    ]
    assert [wait.total_seconds() for wait in waits] == [7.0, 7.0]


async def test_the_cost_quota_counts_signals_times_windows(clock) -> None:
    scenario = Scenario(cost=CostQuota(100.0), retry_after="fractional")
    async with scenario_api(scenario, clock) as api:
        within = await api.statuses(5)  # 2 signals x 10 windows = 20 points each
        over = await api.query()
        clock.now_s += 0.2
        refilled = await api.statuses(2)
        # 16:00:00.5 to 16:00:10.5 touches 11 one-second windows: 22 points.
        clock.now_s += 10
        partial = await api.query(
            startTime="2026-12-04T16:00:00.5Z", endTime="2026-12-04T16:00:10.5Z"
        )
        too_costly = await api.query(measurementIndexes=[str(i) for i in range(1, 12)])
        snapshot = api.simulator.stats.snapshot()

    assert within == [200] * 5
    assert over.status == 429
    assert over.headers["Retry-After"] == "0.200"
    assert over.json()["message"] == (
        "points quota exhausted: expected at most 100 points per second, got a "
        "query of 20 points; retry in 0.200 s"
    )
    assert refilled == [200, 429]
    assert partial.status == 200
    assert too_costly.status == 413
    assert too_costly.json() == {
        "error": "query_too_costly",
        "message": "the query costs 110 points: expected at most 100 points at once; "
        "ask for fewer signals or a shorter range",
    }
    assert snapshot["points_served"] == 6 * 20 + 22


async def test_a_query_over_the_size_limit_gets_413(clock) -> None:
    async with scenario_api(Scenario(size=SizeLimit(15)), clock) as api:
        too_large = await api.query()
        half_range = await api.query(endTime="2026-12-04T16:00:05Z")

    assert too_large.status == 413
    assert too_large.json() == {
        "error": "query_too_large",
        "message": "the query asks for 2 signals x 10 windows = 20 points: expected at "
        "most 15 points per query; ask for fewer signals or a shorter range",
    }
    assert half_range.status == 200


async def test_the_timeout_answer_holds_the_query_then_gives_504(clock) -> None:
    size = SizeLimit(15, answer="timeout", hold_s=0.05)
    async with scenario_api(Scenario(size=size), clock) as api:
        began = asyncio.get_running_loop().time()
        held = await api.query()
        held_s = asyncio.get_running_loop().time() - began

    assert held.status == 504
    assert held.headers["Content-Type"].startswith("text/html")
    assert b"The backend gave no answer within 0.05 s." in held.body
    assert held_s >= 0.05


class Gate:
    """A sleep that holds every caller while closed and returns at once when open."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.opened.set()
        self.arrived = 0
        self._arrival = asyncio.Condition()

    async def __call__(self, seconds: float) -> None:
        async with self._arrival:
            self.arrived += 1
            self._arrival.notify_all()

        await self.opened.wait()

    async def until_arrived(self, count: int) -> None:
        async with self._arrival:
            await self._arrival.wait_for(lambda: self.arrived >= count)


@asynccontextmanager
async def served_app(
    scenario: Scenario, sleep: Sleep, *, seed: int = 0
) -> AsyncIterator[Api]:
    """The app on loopback with ``sleep`` as its way of waiting, and a caller."""
    settings = SimulatorSettings(anchor_us=ANCHOR_US, scenario=scenario, seed=seed)
    runner = web.AppRunner(build_app(settings, clock=FakeClock(), sleep=sleep))
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        origin = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with aiohttp.ClientSession() as http:
            token = await fetch_token(http, Served(origin), "demo-secret", "demo")
            yield Api(http, Served(origin), token)
    finally:
        await runner.cleanup()


class Served:
    """Where a bare application serves, shaped like a :class:`Simulator`."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.base_url = f"{origin}/rt-api/api"


async def test_queries_beyond_the_in_flight_cap_get_429() -> None:
    gate = Gate()
    latency = Latency(median_ms=100.0, refusal_ms=0.0)
    async with served_app(Scenario(max_in_flight=2, latency=latency), gate) as api:
        gate.opened.clear()
        held = [asyncio.create_task(api.query()) for _ in range(2)]
        await asyncio.wait_for(gate.until_arrived(3), timeout=10)  # token, 2 queries
        refused = await api.query()
        gate.opened.set()
        answered = [(await task).status for task in held]
        after = await api.query()

    assert answered == [200, 200]
    assert (refused.status, refused.headers["Retry-After"]) == (429, "1")
    assert refused.json() == {
        "error": "too_many_in_flight",
        "message": "too many queries at once: expected at most 2 in flight, got 3",
    }
    assert after.status == 200


async def test_a_schedule_halves_then_triples_the_request_rate(clock) -> None:
    limit = RequestLimit(4.0, burst=10)
    scenario = Scenario(requests=limit, schedule=((30.0, 0.5), (60.0, 1.5)))
    async with scenario_api(scenario, clock) as api:
        passed, refusals = [], []
        for start_s in (0.0, 30.0, 60.0):
            clock.now_s = 1000.0 + start_s + 1.0
            await api.statuses(12)  # empties the bucket
            clock.now_s += 1.0
            passed.append(await api.statuses(12))
            refusals.append((await api.query()).json()["message"])

    # Once empty, one second refills the rate at that moment: 4, then 2, then 6.
    assert [statuses.count(200) for statuses in passed] == [4, 2, 6]
    assert refusals == [
        f"too many queries: expected at most {rate} per second (burst 10), got one "
        f"more; retry in {wait}"
        for rate, wait in (("4", "0.250 s"), ("2", "0.500 s"), ("6", "0.167 s"))
    ]
