"""Exact comparison of exported points with what the simulator defines."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from powerp_async import PowerPClient
from powerp_async._decode import DecodedBlock
from powerp_async._time import to_epoch_us
from powerp_async.models import POINT_SCHEMA, Measurement
from powerp_async.planning import TimeRange, time_slices
from powerp_async.simulator import Simulator, SimulatorSettings, Tenant
from powerp_async.simulator._settings import Policy

from .conftest import ANCHOR, CLIENT_SECRET

Key = tuple[int, str, str, int]
VALUE_COLUMNS = ("value_float", "value_int", "value_bool", "value_text")


def nan_as_text(value: Any) -> Any:
    """NaN made equal to itself, and -0.0 unequal to 0.0, so that rows holding them
    can be compared and a lost sign is seen."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"

    if isinstance(value, float) and value == 0 and math.copysign(1, value) < 0:
        return "-0.0"

    return value


def comparable(decoded: DecodedBlock) -> tuple[Any, ...]:
    """A decoded answer's rows and drop counts, with NaN made equal to itself, so
    that two decodings can be compared whole."""
    rows = [
        {name: nan_as_text(value) for name, value in row.items()}
        for row in decoded.batch.to_pylist()
    ]
    return (
        rows,
        decoded.dropped_unrequested,
        decoded.dropped_out_of_range,
        decoded.dropped_off_grid,
        decoded.dropped_duplicates,
        decoded.dropped_unreadable,
    )


def column_for(value: object) -> str | None:
    """The column a value of this Python type must land in."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "value_bool"
    if isinstance(value, int):
        return "value_int"
    if isinstance(value, float):
        return "value_float"
    return "value_text"


def expected_points(
    tenant: Tenant, signals: Iterable[Measurement], span: TimeRange
) -> dict[Key, object]:
    """What the simulator answers for every signal, slice by slice on the grid."""
    expected: dict[Key, object] = {}
    slices = list(time_slices(span))
    for signal in signals:
        for start_us, end_us in slices:
            for stamp_us, value in tenant.points(
                signal.database_id,
                signal.index,
                signal.aggregation,
                start_us,
                end_us,
                span.window_us,
            ):
                key = (signal.database_id, signal.index, signal.aggregation, stamp_us)
                assert key not in expected
                expected[key] = value
    return expected


def actual_points(table: pa.Table) -> dict[Key, tuple[str | None, Any]]:
    """Every exported point with the one column holding its value; no key twice."""
    rows = table.to_pylist()
    points: dict[Key, tuple[str | None, Any]] = {}
    for row in rows:
        key = (
            row["database_id"],
            row["index"],
            row["aggregation"],
            to_epoch_us(row["timestamp"]),
        )
        assert key not in points, f"duplicate point {key}"
        filled = [name for name in VALUE_COLUMNS if row[name] is not None]
        assert len(filled) <= 1, f"{key} fills {filled}"
        column = filled[0] if filled else None
        points[key] = (column, row[column] if column else None)
    return points


def assert_exact(table: pa.Table, expected: dict[Key, object]) -> None:
    """Same keys, same values, each in the column of its type."""
    actual = actual_points(table)
    missing = expected.keys() - actual.keys()
    extra = actual.keys() - expected.keys()
    assert not missing, f"{len(missing)} points missing, e.g. {sorted(missing)[:3]}"
    assert not extra, f"{len(extra)} unexpected points, e.g. {sorted(extra)[:3]}"
    wrong = [
        (key, value, actual[key])
        for key, value in expected.items()
        if actual[key] != (column_for(value), value)
    ]
    assert not wrong, f"{len(wrong)} wrong values, e.g. {wrong[:3]}"


def span_of(start: Any, end: Any, window_us: int) -> TimeRange:
    return TimeRange(to_epoch_us(start), to_epoch_us(end), window_us)


def rewriting_settings(policy: Policy) -> SimulatorSettings:
    """The tests' simulator, with a policy that rewrites its answers' plain JSON."""
    return SimulatorSettings(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        anchor_us=to_epoch_us(ANCHOR),
        gzip_min_bytes=None,
        policies=(policy,),
    )


def client_of(simulator: Simulator, **options: Any) -> PowerPClient:
    """A client of ``simulator`` with the tests' credentials and ``options``."""
    return PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        **options,
    )


def one_at_a_time(simulator: Simulator, **options: Any) -> PowerPClient:
    """A client of ``simulator`` sending one query at a time, so that what it sends
    follows from the answers alone."""
    return client_of(simulator, initial_rate=100, max_in_flight=1, **options)


def largest_group(signals: list[Measurement]) -> list[Measurement]:
    """The signals of the (database, aggregation) with the most of them."""
    groups = Counter((m.database_id, m.aggregation) for m in signals)
    group = max(groups, key=lambda key: (groups[key], key))
    return [m for m in signals if (m.database_id, m.aggregation) == group]


def float_points(values: Iterable[float | None]) -> pa.Table:
    """Points of one float signal, a second apart from 2026-12-04T12:00:00Z."""
    first = datetime(2026, 12, 4, 12, tzinfo=UTC)
    return pa.Table.from_pylist(
        [
            {
                "database_id": 1,
                "index": "7",
                "aggregation": "mean",
                "timestamp": first + timedelta(seconds=second),
                "value_float": value,
            }
            for second, value in enumerate(values)
        ],
        schema=POINT_SCHEMA,
    )
