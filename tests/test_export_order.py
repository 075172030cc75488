"""A part's rows ordered by signal and time exactly as a stable Arrow sort would."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerp_async._export._order import TIME_BITS, by_signal_and_time
from powerp_async.models import POINT_SCHEMA

DAY_US = 86_400_000_000
MIDNIGHT_US = int(datetime(2026, 12, 4, tzinfo=UTC).timestamp()) * 1_000_000
KEYS = [("index", "ascending"), ("timestamp", "ascending")]

# Texts whose byte order differs from their numeric or case order, and beyond ASCII.
INDEXES = st.sampled_from(
    ["1", "2", "10", "9", "A", "a", "Ä", "ä", "é1", "", "z\u4e2d"]
)
ROW = st.tuples(
    INDEXES,
    st.sampled_from(["mean", "max"]),
    st.integers(0, DAY_US - 1),
    st.floats(allow_nan=False),
)


def _table(chunks: list[list[tuple[str, str, int, float]]]) -> pa.Table:
    batches = [
        pa.record_batch(
            {
                "database_id": pa.array([1] * len(rows), pa.int64()),
                "index": pa.array([r[0] for r in rows], pa.string()),
                "aggregation": pa.array([r[1] for r in rows], pa.string()),
                "timestamp": pa.array(
                    [MIDNIGHT_US + r[2] for r in rows], pa.timestamp("us", tz="UTC")
                ),
                "value_float": pa.array([r[3] for r in rows], pa.float64()),
                "value_int": pa.nulls(len(rows), pa.int64()),
                "value_bool": pa.nulls(len(rows), pa.bool_()),
                "value_text": pa.nulls(len(rows), pa.string()),
            },
            schema=POINT_SCHEMA,
        )
        for rows in chunks
    ]
    return pa.Table.from_batches(batches, POINT_SCHEMA)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.lists(ROW, max_size=30), max_size=6))
def test_the_order_is_that_of_a_stable_sort(chunks) -> None:
    table = _table(chunks)

    ordered = by_signal_and_time(table)

    assert ordered.equals(table.sort_by(KEYS))


def test_ties_keep_the_order_they_came_in() -> None:
    rows = [("7", "max", 5, 1.0), ("7", "mean", 5, 2.0), ("3", "mean", 9, 3.0)]
    table = _table([rows[:1], rows[1:]])

    ordered = by_signal_and_time(table)

    assert ordered.column("aggregation").to_pylist() == ["mean", "max", "mean"]
    assert ordered.column("value_float").to_pylist() == [3.0, 1.0, 2.0]


def test_runs_already_in_order_come_back_as_they_are() -> None:
    rows = [("1", "mean", t, float(t)) for t in range(5)]
    rows += [("2", "mean", t, float(t)) for t in range(3)]
    table = _table([rows])

    assert by_signal_and_time(table) is table


@pytest.mark.parametrize("span_us", [(1 << TIME_BITS) - 1, 1 << TIME_BITS])
def test_a_span_beyond_the_keys_time_bits_is_still_ordered(span_us: int) -> None:
    rows = [("b", "mean", span_us, 1.0), ("a", "mean", span_us, 2.0)]
    rows += [("b", "mean", 0, 3.0), ("a", "mean", 0, 4.0)]
    table = _table([rows])

    ordered = by_signal_and_time(table)

    assert ordered.column("value_float").to_pylist() == [4.0, 2.0, 3.0, 1.0]
    assert ordered.equals(table.sort_by(KEYS))
