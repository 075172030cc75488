"""What a throttling run fetches, and the exact points a finite job must deliver.

An endless job spans 60 days, far more than any run sends. A finite job grows slice
by slice (29-minute slices, as the planner cuts them) until the simulator's ceiling
for it (the shortest time any client could take) reaches the case's duration.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import pyarrow as pa

from powerp_async import Measurement, TimeRange
from powerp_async.planning import max_slice_us
from powerp_async.simulator import (
    Ceiling,
    SimulatorSettings,
    Tenant,
    ceiling,
    demo_tenant,
)

from ._throttling_cases import ANCHOR, CHEAP_GROUPS, ENDLESS_RANGE_DAYS, SEED, Case

END: Final = datetime.fromisoformat(ANCHOR.replace("Z", "+00:00"))
MAX_SLICES: Final = 1 << 20

PointKey = tuple[int, str, int, str]
"""(database, index, timestamp in microseconds, the value's repr)."""


@dataclass(frozen=True, slots=True)
class Job:
    """The signals and range one run fetches; ``ceiling`` only for finite jobs."""

    signals: tuple[Measurement, ...]
    start: datetime
    end: datetime
    window: str
    ceiling: Ceiling | None

    @property
    def span(self) -> TimeRange:
        return TimeRange.snap(self.start, self.end, _window_us(self.window))


def cheap_signals(signals: Iterable[Measurement]) -> tuple[Measurement, ...]:
    """The signals the simulator computes fastest, with data over the whole range."""
    oldest = END - timedelta(days=ENDLESS_RANGE_DAYS)
    return tuple(
        m
        for m in signals
        if (m.database_id, m.aggregation) in CHEAP_GROUPS
        and (m.first_data_point is None or m.first_data_point <= oldest)
    )


def plan_job(case: Case, signals: Sequence[Measurement]) -> Job:
    """The job of ``case`` over ``signals`` (already narrowed by ``cheap_signals``)."""
    chosen = tuple(signals)
    if case.job == "endless":
        start = END - timedelta(days=ENDLESS_RANGE_DAYS)
        return Job(chosen, start, END, case.window, None)

    slices = _slices_for(case, chosen)
    start = END - _slice_length(case.window) * slices
    limit = ceiling(case.scenario, chosen, _span(start, case.window))
    return Job(chosen, start, END, case.window, limit)


def _slices_for(case: Case, signals: Sequence[Measurement]) -> int:
    """The fewest slices whose ceiling reaches ``case.duration_s`` (it only grows)."""

    def seconds(count: int) -> float:
        start = END - _slice_length(case.window) * count
        return ceiling(case.scenario, signals, _span(start, case.window)).seconds

    high = 1
    while seconds(high) < case.duration_s and high < MAX_SLICES:
        high *= 2

    low = high // 2
    while high - low > 1:
        middle = (low + high) // 2
        if seconds(middle) < case.duration_s:
            low = middle
        else:
            high = middle

    return high


def _slice_length(window: str) -> timedelta:
    return timedelta(microseconds=max_slice_us(_window_us(window)))


def _span(start: datetime, window: str) -> TimeRange:
    return TimeRange.snap(start, END, _window_us(window))


def _window_us(window: str) -> int:
    # Only the windows the cases use; the client parses any duration itself.
    return {"1s": 1_000_000, "1m": 60_000_000}[window]


def expected_points(job: Job) -> set[PointKey]:
    """Every point the server must deliver for ``job``, from the tenant itself."""
    tenant = _tenant()
    span = job.span
    expected: set[PointKey] = set()
    for m in job.signals:
        pairs = tenant.points(
            m.database_id,
            m.index,
            m.aggregation,
            span.start_us,
            span.end_us,
            span.window_us,
        )
        expected.update((m.database_id, m.index, t, repr(v)) for t, v in pairs)

    return expected


def fetched_points(batches: Iterable[pa.RecordBatch]) -> list[PointKey]:
    """The points of fetched batches, keyed as :func:`expected_points` keys them."""
    keys: list[PointKey] = []
    for batch in batches:
        columns = batch.to_pydict()
        values = _values(columns)
        for database_id, index, moment, value in zip(
            columns["database_id"],
            columns["index"],
            columns["timestamp"],
            values,
            strict=True,
        ):
            keys.append((database_id, index, _epoch_us(moment), repr(value)))

    return keys


def _values(columns: dict[str, list[object]]) -> list[object]:
    names = ("value_float", "value_int", "value_bool", "value_text")
    rows = zip(*(columns[name] for name in names), strict=True)
    return [next((v for v in row if v is not None), None) for row in rows]


def _epoch_us(moment: object) -> int:
    assert isinstance(moment, datetime)
    return (moment - datetime(1970, 1, 1, tzinfo=moment.tzinfo)) // timedelta(
        microseconds=1
    )


def _tenant() -> Tenant:
    anchor_us = _epoch_us(END)
    return demo_tenant(SimulatorSettings(seed=SEED, anchor_us=anchor_us))
