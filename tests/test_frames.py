"""Results as plain Arrow batches and pandas DataFrames, checked point by point."""

from __future__ import annotations

import sys
from datetime import timedelta

import pandas as pd
import pyarrow as pa
import pytest

from powerp_async import (
    MEASUREMENT_SCHEMA,
    POINT_SCHEMA,
    ConfigurationError,
    DataType,
    FetchFailedError,
    Measurement,
    measurements_frame,
    measurements_table,
    points_frame,
)
from powerp_async._time import to_epoch_us
from powerp_async.planning import TimeRange, plan_blocks

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points

START = ANCHOR - timedelta(minutes=20)
END = ANCHOR - timedelta(minutes=5)
WINDOW_US = 10_000_000

VALUE_DTYPES = {
    "value_float": pd.ArrowDtype(pa.float64()),
    "value_int": pd.ArrowDtype(pa.int64()),
    "value_bool": pd.ArrowDtype(pa.bool_()),
    "value_text": pd.ArrowDtype(pa.string()),
}


def of_every_type(signals: list[Measurement], each: int = 3) -> list[Measurement]:
    """A few signals of each data type, so every value column is filled somewhere."""
    chosen = []
    for data_type in DataType:
        chosen += [m for m in signals if m.data_type == data_type][:each]
    assert len(chosen) == each * len(DataType)
    return chosen


def stamp_us(stamp: pd.Timestamp) -> int:
    return to_epoch_us(stamp.to_pydatetime())


def frame_as_table(frame: pd.DataFrame) -> pa.Table:
    """The frame's points back in Arrow, to compare them with the simulator's."""
    points = frame[POINT_SCHEMA.names]
    return pa.Table.from_pandas(points, schema=POINT_SCHEMA, preserve_index=False)


async def test_batches_hold_every_point_once(client, simulator) -> None:
    signals = of_every_type(await client.measurements())
    batches = []

    async with client.fetch_batches(
        signals, START, END, window="10s", block_size=3
    ) as stream:
        async for batch in stream:
            batches.append(batch)

    assert all(isinstance(b, pa.RecordBatch) for b in batches)
    assert all(b.schema == POINT_SCHEMA and b.num_rows > 0 for b in batches)
    span = TimeRange.snap(START, END, WINDOW_US)
    assert len(batches) == len(list(plan_blocks(signals, span, block_size=3)))
    expected = expected_points(simulator.tenant, signals, span)
    assert_exact(pa.Table.from_batches(batches), expected)


async def test_batches_of_good_blocks_arrive_before_the_failure(
    client, simulator
) -> None:
    signals = [m for m in await client.measurements() if m.database_id == 1][:4]
    ghost = Measurement(database_id=1, index="no-such-signal")
    batches: list[pa.RecordBatch] = []

    async def consume() -> None:
        async with client.fetch_batches(
            [*signals, ghost], START, END, window="10s", block_size=1
        ) as stream:
            async for batch in stream:
                batches.append(batch)

    with pytest.raises(FetchFailedError) as caught:
        await consume()

    assert [block.indexes for block, _ in caught.value.failures] == [
        ("no-such-signal",)
    ]
    expected = expected_points(
        simulator.tenant, signals, TimeRange.snap(START, END, WINDOW_US)
    )
    assert_exact(pa.Table.from_batches(batches, POINT_SCHEMA), expected)


async def test_frame_is_exact_with_metadata_joined(client, simulator) -> None:
    signals = of_every_type(await client.measurements())

    frame = await client.fetch_frame(signals, START, END, window="10s")

    expected = expected_points(
        simulator.tenant, signals, TimeRange.snap(START, END, WINDOW_US)
    )
    assert_exact(frame_as_table(frame), expected)
    by_key = {(m.database_id, m.index): m for m in signals}
    for row in frame[
        ["database_id", "index", "name", "unit", "data_type"]
    ].itertuples():
        signal = by_key[(row.database_id, row.index)]
        assert (row.name, row.data_type) == (signal.name, signal.data_type)
        assert (None if row.unit is pd.NA else row.unit) == signal.unit_symbol


async def test_frame_keeps_every_value_type(client, simulator) -> None:
    signals = of_every_type(await client.measurements())

    frame = await client.fetch_frame(signals, START, END, window="10s")

    assert {name: frame[name].dtype for name in VALUE_DTYPES} == VALUE_DTYPES
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert {str(stamp.tz) for stamp in frame["timestamp"]} == {"UTC"}
    expected = expected_points(
        simulator.tenant, signals, TimeRange.snap(START, END, WINDOW_US)
    )
    ints = frame[frame["value_int"].notna()]
    assert len(ints) == sum(type(v) is int for v in expected.values()) > 0
    for row in ints.itertuples():
        key = (row.database_id, row.index, row.aggregation, stamp_us(row.timestamp))
        assert type(row.value_int) is int
        assert row.value_int == expected[key]
        assert row.value_float is pd.NA


async def test_frame_rows_are_sorted_by_signal_and_time(client) -> None:
    signals = of_every_type(await client.measurements())

    frame = await client.fetch_frame(signals, START, END, window="10s")

    keys = list(
        zip(frame["database_id"], frame["index"], frame["timestamp"], strict=True)
    )
    assert keys == sorted(keys)


def test_points_of_an_unlisted_signal_keep_null_metadata_and_their_order() -> None:
    stamp = pd.Timestamp("2026-12-04T11:00:00Z").to_pydatetime()
    points = pa.Table.from_pylist(
        [
            {"database_id": 2, "index": "a", "aggregation": "last", "timestamp": stamp},
            {"database_id": 1, "index": "a", "aggregation": "last", "timestamp": stamp},
        ],
        schema=POINT_SCHEMA,
    )
    listed = Measurement(1, "a", name="listed", data_type=DataType.FLOAT)

    frame = points_frame(points, [listed, listed])

    assert frame["database_id"].tolist() == [2, 1]  # the table's order, kept
    assert frame["name"].tolist() == [pd.NA, "listed"]
    assert frame["data_type"].tolist() == [pd.NA, "float"]


async def test_metadata_table_lists_every_signal(client, simulator) -> None:
    signals = await client.measurements()

    table = measurements_table(signals)

    assert table.schema == MEASUREMENT_SCHEMA
    assert table.num_rows == len(simulator.tenant.signals)
    rows = table.to_pylist()
    for signal, row in zip(signals, rows, strict=True):
        assert row == {
            "database_id": signal.database_id,
            "index": signal.index,
            "aggregation": signal.aggregation,
            "name": signal.name,
            "unit": signal.unit_symbol,
            "data_type": signal.data_type,
            "default_agg": signal.default_agg,
            "first_data_point": signal.first_data_point,
            "min_value": signal.min_value,
            "max_value": signal.max_value,
        }


async def test_metadata_joins_a_table_of_points(client, simulator) -> None:
    signals = of_every_type(await client.measurements(), each=1)
    points = await client.fetch_table(signals, START, END, window="10s")

    joined = points.join(
        measurements_table(signals), keys=["database_id", "index", "aggregation"]
    )

    assert joined.num_rows == points.num_rows > 0
    names = {(m.database_id, m.index): m.name for m in signals}
    for row in joined.select(["database_id", "index", "name"]).to_pylist():
        assert row["name"] == names[(row["database_id"], row["index"])]


async def test_metadata_frame_has_arrow_dtypes(client) -> None:
    signals = await client.measurements()

    frame = measurements_frame(signals)

    assert len(frame) == len(signals)
    assert frame["min_value"].dtype == pd.ArrowDtype(pa.float64())
    assert str(frame["first_data_point"].dtype) == "datetime64[us, UTC]"
    assert frame["index"].tolist() == [m.index for m in signals]


async def test_frame_without_pandas_names_the_extra(
    client, simulator, monkeypatch
) -> None:
    signals = (await client.measurements())[:2]
    monkeypatch.setitem(sys.modules, "pandas", None)

    with pytest.raises(ImportError, match=r"pip install 'powerp-async\[pandas\]'"):
        await client.fetch_frame(signals, START, END)

    assert simulator.stats.requests.get("query", {}) == {}


def test_no_points_is_an_empty_frame_of_the_same_columns() -> None:
    frame = points_frame(POINT_SCHEMA.empty_table(), [])

    assert len(frame) == 0
    assert list(frame.columns) == [*POINT_SCHEMA.names, "name", "unit", "data_type"]
    assert {name: frame[name].dtype for name in VALUE_DTYPES} == VALUE_DTYPES
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"


def test_a_record_batch_of_points_is_taken_as_a_table() -> None:
    stamp = pd.Timestamp("2026-12-04T11:00:00Z").to_pydatetime()
    row = {"database_id": 1, "index": "a", "aggregation": "last", "timestamp": stamp}
    batch = pa.RecordBatch.from_pylist([row], schema=POINT_SCHEMA)

    frame = points_frame(batch, [Measurement(1, "a", name="listed")])

    assert frame["name"].tolist() == ["listed"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: points_frame([{"index": "7"}], []),  # type: ignore[arg-type]
            "table: expected a pyarrow Table of points, as fetch_table() gives, got "
            "list [{'index': '7'}]",
        ),
        (
            lambda: points_frame(pa.table({"index": ["7"]}), []),
            "table: expected the columns of POINT_SCHEMA, as fetch_table() gives, got "
            "a table without database_id, aggregation, timestamp, value_float, "
            "value_int, value_bool, value_text",
        ),
        (
            lambda: points_frame(POINT_SCHEMA.empty_table(), "7"),
            "signals: expected a sequence, got str '7'",
        ),
        (
            lambda: measurements_table([("1", "7")]),  # type: ignore[list-item]
            "signals: expected Measurement objects, as measurements() lists them, "
            "got tuple ('1', '7')",
        ),
        (
            lambda: measurements_frame(Measurement(1, "7")),  # type: ignore[arg-type]
            "signals: expected a sequence of Measurement, got a single one; pass "
            "[signal] for one",
        ),
    ],
)
def test_arguments_of_the_wrong_kind_are_named(call, message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        call()

    assert str(raised.value) == message
