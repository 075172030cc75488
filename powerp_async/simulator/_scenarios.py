"""Scenarios by name, and the policies that enact a scenario on one running server.

The presets cover the situations a client must handle:

- ``none``: no limits, no faults (the simulator's default);
- ``bucket-<R>``: a token bucket of R queries/s with a burst of R/10 (at least 1);
- ``window-<W>s``: fixed windows of W seconds, 100 queries/s on average;
- ``cost-quota``: 100,000 points/s (a full 20 x 1799 query costs 35,980);
- ``size-limit``: 413 above 10,000 points per query;
- ``size-timeout``: the same size, but held for 90 s and then answered 504;
- ``concurrency-<N>``: 429 beyond N queries in flight;
- ``faults-<P>pct``: ``bucket-100`` where P % of admitted queries fail;
- ``outage-<D>s``: ``bucket-100`` with every request answered 503 for D s from 20 s;
- ``halve-then-triple``: ``bucket-100`` going to 50/s at 30 s and to 150/s at 60 s.

Every preset but ``none`` answers with realistic latency: lognormal with a median of
100 ms and a 99th percentile near 500 ms, plus 2 us per point asked for.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Callable
from typing import Final

from ..errors import ConfigurationError
from ._answers import Answers, Sleep
from ._faults import FaultPicker, LatencyModel, OutageWindow, RandomFaults, Slowness
from ._limits import CostLimit, InFlightCap, RequestRateLimit, SizeCap
from ._scenario import (
    CostQuota,
    Faults,
    Latency,
    Outage,
    RequestLimit,
    Scenario,
    SizeLimit,
)
from ._schedule import RunClock, Schedule
from ._settings import Policy

REALISTIC_LATENCY: Final = Latency(median_ms=100.0, spread=0.69, per_point_us=2.0)
BASE_RATE_PER_S: Final = 100.0
OUTAGE_AT_S: Final = 20.0

PRESET_EXAMPLES: Final = (
    "none",
    "bucket-5",
    "bucket-20",
    "bucket-100",
    "bucket-300",
    "window-1s",
    "window-10s",
    "window-60s",
    "cost-quota",
    "size-limit",
    "size-timeout",
    "concurrency-8",
    "faults-5pct",
    "outage-30s",
    "halve-then-triple",
)


def _bucket(rate_per_s: float) -> RequestLimit:
    return RequestLimit(rate_per_s, burst=max(1, round(rate_per_s / 10)))


_BASE_BUCKET: Final = _bucket(BASE_RATE_PER_S)

_FIXED: Final = {
    scenario.name: scenario
    for scenario in (
        Scenario(name="none"),
        Scenario(name="cost-quota", cost=CostQuota(100_000), latency=REALISTIC_LATENCY),
        Scenario(name="size-limit", size=SizeLimit(10_000), latency=REALISTIC_LATENCY),
        Scenario(
            name="size-timeout",
            size=SizeLimit(10_000, "timeout"),
            latency=REALISTIC_LATENCY,
        ),
        Scenario(
            name="halve-then-triple",
            requests=_BASE_BUCKET,
            schedule=((30.0, 0.5), (60.0, 1.5)),
            latency=REALISTIC_LATENCY,
        ),
    )
}


def _bucket_family(name: str, rate_per_s: float) -> Scenario:
    return Scenario(name=name, requests=_bucket(rate_per_s), latency=REALISTIC_LATENCY)


def _window_family(name: str, window_s: float) -> Scenario:
    limit = RequestLimit(BASE_RATE_PER_S, window_s=window_s)
    return Scenario(name=name, requests=limit, latency=REALISTIC_LATENCY)


def _concurrency_family(name: str, count: float) -> Scenario:
    return Scenario(name=name, max_in_flight=int(count), latency=REALISTIC_LATENCY)


def _faults_family(name: str, percent: float) -> Scenario:
    faults = Faults(percent / 100)
    return Scenario(
        name=name, requests=_BASE_BUCKET, faults=faults, latency=REALISTIC_LATENCY
    )


def _outage_family(name: str, duration_s: float) -> Scenario:
    outage = Outage(OUTAGE_AT_S, duration_s)
    return Scenario(
        name=name, requests=_BASE_BUCKET, outage=outage, latency=REALISTIC_LATENCY
    )


_NUMBER: Final = r"(\d+(?:\.\d+)?)"
_FAMILIES: Final[
    tuple[tuple[re.Pattern[str], Callable[[str, float], Scenario]], ...]
] = (
    (re.compile(f"bucket-{_NUMBER}"), _bucket_family),
    (re.compile(f"window-{_NUMBER}s"), _window_family),
    (re.compile(r"concurrency-(\d+)"), _concurrency_family),
    (re.compile(f"faults-{_NUMBER}pct"), _faults_family),
    (re.compile(f"outage-{_NUMBER}s"), _outage_family),
)


def named_scenario(name: str) -> Scenario:
    """The preset called ``name``, e.g. ``bucket-100`` or ``window-10s``."""
    if name in _FIXED:
        return _FIXED[name]

    for pattern, build in _FAMILIES:
        match = pattern.fullmatch(name)
        if match is not None:
            return build(name, float(match.group(1)))

    raise ConfigurationError(
        f"unknown scenario {name!r}: expected one of none, bucket-<rate>, "
        "window-<seconds>s, cost-quota, size-limit, size-timeout, concurrency-<n>, "
        "faults-<percent>pct, outage-<seconds>s, halve-then-triple"
    )


def scenario_policies(
    scenario: Scenario,
    *,
    clock: Callable[[], float],
    seed: int,
    sleep: Sleep = asyncio.sleep,
) -> tuple[Policy, ...]:
    """Fresh policies enacting ``scenario``, outermost first; the run starts now.

    The order is that of a real deployment: an outage refuses everything, the request
    limit meters every authorized query, then concurrency, size and cost are checked,
    and only admitted queries take time and may fail.
    """
    run = RunClock(clock)
    schedule = Schedule(scenario.schedule)
    refusal_s = scenario.latency.refusal_ms / 1000 if scenario.latency else 0.0
    answers = Answers(scenario.retry_after, run, refusal_s=refusal_s, sleep=sleep)
    chain: list[Policy] = []
    if scenario.outage:
        chain.append(OutageWindow(scenario.outage, run, answers))

    if scenario.requests:
        chain.append(RequestRateLimit(scenario.requests, schedule, run, answers))

    if scenario.max_in_flight is not None:
        chain.append(InFlightCap(scenario.max_in_flight, answers))

    if scenario.size:
        chain.append(SizeCap(scenario.size, answers))

    if scenario.cost:
        chain.append(CostLimit(scenario.cost, schedule, run, answers))

    if scenario.latency:
        model = LatencyModel(scenario.latency, seeded_rng(seed, "latency"))
        chain.append(Slowness(model, answers))

    if scenario.faults:
        picker = FaultPicker(scenario.faults, seeded_rng(seed, "faults"))
        chain.append(RandomFaults(picker, answers))

    return tuple(chain)


def seeded_rng(seed: int, concern: str) -> random.Random:
    """The random generator of one concern (latency, faults) of a seeded server."""
    # A string seed is hashed with SHA-512, so every concern gets its own stream.
    return random.Random(f"{seed}:{concern}")
