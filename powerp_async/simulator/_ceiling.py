"""The ceiling of an export under a scenario: the shortest time any client could take.

A client can do no better than send the fewest requests the export needs, each as
large as the limits allow, exactly as fast as the limits admit them. The fewest
requests are full blocks of 20 signals within each (database, aggregation) group over
the longest slices allowed: under 30 minutes, and, when a size limit or a cost bucket
caps a query's points, as many windows as fit (a group of fewer signals gets longer
slices, and a smaller block may need fewer requests than a full one).

From that count each limit gives a time, counted from the start of the run (when the
server started); the ceiling is the largest:

- request limit: a bucket admits ``burst + rate * T`` in ``T``; fixed windows admit
  their count at the start of each window;
- cost quota: the same bucket arithmetic, in points;
- in-flight cap: by Little's law, ``T >= requests * mean latency / max_in_flight``;
- latency alone: one median answer, for a client that sends everything at once.

An outage admits nothing while it lasts (a bucket refills meanwhile, up to its burst).
The request and cost bounds end when the last request is admitted, so they add one
median latency for its answer.

Random faults are counted by expectation (every failed attempt is sent again and costs
as much as a good one), so with faults the ceiling is an expected value, not a bound
that holds for every seed.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .._time import to_epoch_us
from ..models import MAX_SIGNALS_PER_QUERY, Measurement
from ..planning import TimeRange, group_signals, max_slice_us, plan_totals
from ._scenario import Latency, Outage, RequestLimit, Scenario
from ._schedule import Schedule
from ._settings import SimulatorSettings


@dataclass(frozen=True, slots=True)
class Ceiling:
    """The fewest requests and their points, and the shortest time for them.

    ``bound`` names the limit that sets ``seconds`` (``"none"`` without limits);
    ``bounds`` holds the time each limit alone would allow.
    """

    requests: int
    points: int
    seconds: float
    bound: str
    bounds: tuple[tuple[str, float], ...]


def ceiling(
    scenario: Scenario | SimulatorSettings | None,
    measurements: Iterable[Measurement],
    span: TimeRange,
) -> Ceiling:
    """The ceiling of exporting ``measurements`` over ``span`` under ``scenario``."""
    if isinstance(scenario, SimulatorSettings):
        scenario = scenario.scenario

    scenario = scenario or Scenario()
    requests, points = fewest_requests(measurements, span, scenario.max_points)
    bounds = _bounds(scenario, requests, points)
    bound, seconds = max(bounds, key=lambda item: item[1], default=("none", 0.0))
    return Ceiling(requests, points, seconds, bound, tuple(bounds))


def fewest_requests(
    measurements: Iterable[Measurement], span: TimeRange, max_points: int | None = None
) -> tuple[int, int]:
    """The fewest queries that cover the export, and the points they ask for."""
    signals = list(measurements)
    slice_windows = max_slice_us(span.window_us) // span.window_us
    if max_points is None or max_points >= MAX_SIGNALS_PER_QUERY * slice_windows:
        return plan_totals(signals, span, block_size=MAX_SIGNALS_PER_QUERY)

    requests = points = 0
    for members in group_signals(signals).values():
        starts = sorted(_first_us(m) for m in members)
        group_requests, group_points = _best_blocks(starts, span, max_points)
        requests += group_requests
        points += group_points

    return requests, points


def _best_blocks(
    starts: Sequence[int], span: TimeRange, max_points: int
) -> tuple[int, int]:
    slice_windows = max_slice_us(span.window_us) // span.window_us
    options = []
    for size in range(1, min(MAX_SIGNALS_PER_QUERY, len(starts)) + 1):
        windows = min(slice_windows, max_points // size)
        options.append(_count_blocks(starts, span, windows, size))

    return min(options)


def _count_blocks(
    starts: Sequence[int], span: TimeRange, slice_windows: int, size: int
) -> tuple[int, int]:
    """Requests and points for blocks of ``size`` over equal slices, as the planner
    cuts them. Between two signals' first slices the number of live signals is the
    same, so the work grows with the signals, not with the slices."""
    slices = _Slices(span.window_count, slice_windows)
    firsts = [slices.first_live(start_us, span) for start_us in starts]
    requests = 0
    bounds = [*firsts, slices.count]
    for live, (first, after) in enumerate(itertools.pairwise(bounds), start=1):
        requests += (after - first) * -(-live // size)

    points = sum(span.window_count - slices.windows_before(f) for f in firsts)
    return requests, points


class _Slices:
    """The planner's equal cut of ``total`` windows into the fewest slices of at most
    ``slice_windows``: the first ``extra`` slices hold one window more."""

    __slots__ = ("base", "count", "extra", "total")

    def __init__(self, total: int, slice_windows: int) -> None:
        self.total = total
        self.count = -(-total // slice_windows)
        self.base, self.extra = divmod(total, self.count)

    def windows_before(self, index: int) -> int:
        return index * self.base + min(index, self.extra)

    def first_live(self, start_us: int, span: TimeRange) -> int:
        """The first slice ending after ``start_us``; ``count`` if none does."""
        needed = (start_us - span.start_us) // span.window_us + 1
        if needed <= 0:
            return 0

        if needed > self.total:
            return self.count

        long_windows = self.extra * (self.base + 1)
        if needed <= long_windows:
            return -(-needed // (self.base + 1)) - 1

        return self.extra + -(-(needed - long_windows) // self.base) - 1


def _first_us(measurement: Measurement) -> int:
    first = measurement.first_data_point
    return to_epoch_us(first) if first is not None else -(2**62)


def _bounds(scenario: Scenario, requests: int, points: int) -> list[tuple[str, float]]:
    failure_share = scenario.faults.rate if scenario.faults else 0.0
    if failure_share >= 1:
        return [("faults", math.inf)]

    attempts = requests / (1 - failure_share)
    attempt_points = points / (1 - failure_share)
    schedule = Schedule(scenario.schedule)
    answer_s = _answer_s(scenario.latency, points / max(1, requests))
    bounds = [("latency", answer_s)] if scenario.latency else []
    if scenario.requests:
        admitted_s = _request_seconds(
            scenario.requests, attempts, schedule, scenario.outage
        )
        bounds.append(("requests", admitted_s + answer_s))

    if scenario.cost:
        quota = scenario.cost
        admitted_s = _bucket_seconds(
            attempt_points,
            quota.points_per_s,
            quota.capacity_points,
            schedule,
            scenario.outage,
        )
        bounds.append(("cost", admitted_s + answer_s))

    if scenario.max_in_flight is not None and scenario.latency:
        busy_s = attempts * _mean_answer_s(scenario.latency, points / max(1, requests))
        busy_s /= scenario.max_in_flight
        bounds.append(("in-flight", _after_outage(busy_s, scenario.outage)))

    return bounds


def _answer_s(latency: Latency | None, points_per_request: float) -> float:
    if latency is None:
        return 0.0

    return latency.median_ms / 1000 + points_per_request * latency.per_point_us / 1e6


def _mean_answer_s(latency: Latency, points_per_request: float) -> float:
    median_s = latency.median_ms / 1000
    mean_s = median_s * math.exp(latency.spread**2 / 2)
    return mean_s + points_per_request * latency.per_point_us / 1e6


def _after_outage(seconds: float, outage: Outage | None) -> float:
    if outage is None or seconds <= outage.at_s:
        return seconds

    return seconds + outage.duration_s


def _request_seconds(
    limit: RequestLimit, attempts: float, schedule: Schedule, outage: Outage | None
) -> float:
    if limit.window_s is None:
        return _bucket_seconds(
            attempts, limit.rate_per_s, limit.burst, schedule, outage
        )

    return _window_seconds(attempts, limit, schedule, outage)


def _bucket_seconds(
    units: float,
    rate_per_s: float,
    capacity: float,
    schedule: Schedule,
    outage: Outage | None,
) -> float:
    """When a bucket full at 0 has let ``units`` through, taken as soon as they come."""
    if units <= capacity:
        return 0.0

    done_s = schedule.time_to_gather(0.0, (units - capacity) / rate_per_s)
    if outage is None or done_s <= outage.at_s:
        return done_s

    # Everything the bucket gave before the outage was taken; it refills meanwhile.
    end_s = outage.ends_s
    before = capacity + rate_per_s * schedule.integral(0.0, outage.at_s)
    during = min(capacity, rate_per_s * schedule.integral(outage.at_s, end_s))
    left = units - before - during
    if left <= 0:
        return end_s

    return schedule.time_to_gather(end_s, left / rate_per_s)


def _window_seconds(
    attempts: float, limit: RequestLimit, schedule: Schedule, outage: Outage | None
) -> float:
    """The first moment the windows so far have admitted ``attempts`` requests."""
    window_s = limit.window_s or 1.0
    settled_s = max(schedule.last_step_s, outage.ends_s if outage else 0.0)
    admitted = 0
    index = 0
    while index * window_s <= settled_s:
        opens_s = index * window_s
        usable_s = _usable_from(opens_s, opens_s + window_s, outage)
        if usable_s is not None:
            admitted += _window_limit(limit, schedule, opens_s)
            if admitted >= attempts:
                return usable_s

        index += 1

    # From here on every window is alike.
    per_window = _window_limit(limit, schedule, index * window_s)
    if per_window == 0:
        return math.inf

    more = math.ceil((attempts - admitted) / per_window) - 1
    return (index + more) * window_s


def _window_limit(limit: RequestLimit, schedule: Schedule, opens_s: float) -> int:
    return math.floor(limit.per_window * schedule.factor_at(opens_s) + 1e-9)


def _usable_from(
    opens_s: float, closes_s: float, outage: Outage | None
) -> float | None:
    if outage is None or not outage.covers(opens_s):
        return opens_s

    return outage.ends_s if outage.ends_s < closes_s else None
