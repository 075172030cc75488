"""The Query answer decoder: value placement, timestamps, drops and malformed bodies."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final
from unittest import mock

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import powerp_async._decode as decode_module
import powerp_async._values as values_module
import powerp_async._wire as wire_module
from powerp_async._decode import DecodedBlock, decode_block
from powerp_async._export._formats import write_file
from powerp_async._values import float_signals_only
from powerp_async.errors import MalformedResponseError
from powerp_async.models import POINT_SCHEMA, Block, DataType

from .helpers import comparable, nan_as_text

URL: Final = "http://127.0.0.1:8080/rt-api/api/v1/Query"
START_US: Final = 1_796_378_400_000_000  # 2026-12-04T10:00:00Z
SECOND_US: Final = 1_000_000
BLOCK: Final = Block(
    3, "last", ("101", "102", "103"), START_US, START_US + 60 * SECOND_US, SECOND_US
)
FLOAT, INT = DataType.FLOAT, DataType.INT
VALUE_COLUMNS: Final = ("value_float", "value_int", "value_bool", "value_text")
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
NULL_ROW: Final = (None, None, None, None)
FINE_BLOCK: Final = dataclasses.replace(BLOCK, window_us=1)
"""Windows of a microsecond: any time in range labels one, as parsing tests need."""


def point(
    index: Any, value: Any, timestamp: Any = "2026-12-04T10:00:00Z"
) -> dict[str, Any]:
    return {"index": index, "value": value, "timestamp": timestamp}


def body_of(points: Sequence[Mapping[str, Any]]) -> bytes:
    """JSON as a permissive server writes it: NaN and infinities as bare tokens."""
    return json.dumps(list(points), allow_nan=True).encode()


def decode(
    body: bytes | Sequence[Mapping[str, Any]],
    data_types: Mapping[str, DataType | None] | None = None,
    block: Block = BLOCK,
) -> DecodedBlock:
    raw = body if isinstance(body, bytes) else body_of(body)
    return decode_block(raw, block, data_types or {}, url=URL)


def value_row(decoded: DecodedBlock, row: int = 0) -> tuple[Any, ...]:
    return tuple(decoded.batch.column(name)[row].as_py() for name in VALUE_COLUMNS)


def only_value(
    raw: str,
    data_types: Mapping[str, DataType | None] | None = None,
    aggregation: str = "last",
) -> tuple[Any, ...]:
    """The four value columns of a one-point body whose value is the raw JSON given."""
    body = f'[{{"index": "101", "timestamp": "2026-12-04T10:00:00Z", "value": {raw}}}]'
    block = Block(
        3, aggregation, BLOCK.indexes, BLOCK.start_us, BLOCK.end_us, BLOCK.window_us
    )
    decoded = decode(body.encode(), data_types, block)
    assert decoded.batch.num_rows == 1
    return value_row(decoded)


def times_us(decoded: DecodedBlock) -> list[int]:
    moments: list[int] = decoded.batch.column("timestamp").cast(pa.int64()).to_pylist()
    return moments


# Shape of the batch ------------------------------------------------------------------


def test_fills_database_and_aggregation_from_the_block() -> None:
    decoded = decode([point("101", 1.5), point("102", 2.5, "2026-12-04T10:00:01Z")])

    assert decoded.batch.schema.equals(POINT_SCHEMA)
    assert decoded.batch.column("database_id").to_pylist() == [3, 3]
    assert decoded.batch.column("aggregation").to_pylist() == ["last", "last"]
    assert decoded.batch.column("index").to_pylist() == ["101", "102"]
    assert times_us(decoded) == [START_US, START_US + SECOND_US]
    assert decoded.batch.column("value_float").to_pylist() == [1.5, 2.5]


def test_an_empty_array_gives_an_empty_batch_with_the_schema() -> None:
    decoded = decode(b"[]")

    assert decoded.batch.num_rows == 0
    assert decoded.batch.schema.equals(POINT_SCHEMA)
    assert (
        decoded.dropped_unrequested,
        decoded.dropped_out_of_range,
        decoded.dropped_duplicates,
    ) == (0, 0, 0)


def test_keeps_the_order_the_server_sent() -> None:
    decoded = decode(
        [
            point("103", 3.0, "2026-12-04T10:00:02Z"),
            point("101", 1.0, "2026-12-04T10:00:00Z"),
            point("102", 2.0, "2026-12-04T10:00:01Z"),
        ]
    )

    assert decoded.batch.column("index").to_pylist() == ["103", "101", "102"]
    assert decoded.batch.column("value_float").to_pylist() == [3.0, 1.0, 2.0]


# Values ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5", (5.0, None, None, None)),
        ("2.5", (2.5, None, None, None)),
        ("-0.0", (-0.0, None, None, None)),
        ("true", (None, None, True, None)),
        ("false", (None, None, False, None)),
        ('"open"', (None, None, None, "open")),
        ('"3.14"', (None, None, None, "3.14")),
        ("null", (None, None, None, None)),
        ("Infinity", (math.inf, None, None, None)),
        ("-Infinity", (-math.inf, None, None, None)),
        ('"Infinity"', (math.inf, None, None, None)),
        ('"-Infinity"', (-math.inf, None, None, None)),
        ('"inf"', (math.inf, None, None, None)),
        ('"-INF"', (-math.inf, None, None, None)),
        # A float64 holds 2**64 exactly, but not 2**53 + 1: that one is a true integer.
        ("18446744073709551616", (18446744073709551616.0, None, None, None)),
        ("9007199254740993", (None, 9007199254740993, None, None)),
        ("18446744073709551617", (None, None, None, "18446744073709551617")),
        ('[1, "a"]', (None, None, None, '[1,"a"]')),
        ('{"b": 2}', (None, None, None, '{"b":2}')),
    ],
)
def test_places_values_of_a_float_signal(raw: str, expected: tuple[Any, ...]) -> None:
    assert only_value(raw, {"101": FLOAT}) == expected


@pytest.mark.parametrize("raw", ["NaN", '"NaN"', '"nan"'])
def test_nan_on_a_float_signal_is_a_float(raw: str) -> None:
    value_float, *others = only_value(raw, {"101": FLOAT})

    assert math.isnan(value_float)
    assert others == [None, None, None]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5", (None, 5, None, None)),
        ("5.0", (None, 5, None, None)),
        ("-7.0", (None, -7, None, None)),
        ("5.5", (5.5, None, None, None)),
        ("1e300", (1e300, None, None, None)),
        # Below 2**53 a float64 holds every integer: a whole float is the one sent.
        ("9007199254740991.0", (None, 9007199254740991, None, None)),
        ("-9007199254740991.0", (None, -9007199254740991, None, None)),
        # From 2**53 on it may be another: these read as ...68 and ...92.
        ("12345678901234567.0", (12345678901234568.0, None, None, None)),
        ("9007199254740993.0", (9007199254740992.0, None, None, None)),
        ("-9.0e18", (-9.0e18, None, None, None)),
        ("-9223372036854775808", (None, -9223372036854775808, None, None)),
        ("9223372036854775807", (None, 9223372036854775807, None, None)),
        ("9223372036854775808", (None, None, None, "9223372036854775808")),
        (
            "123456789012345678901234567890",
            (None, None, None, "123456789012345678901234567890"),
        ),
        (
            "-123456789012345678901234567890",
            (None, None, None, "-123456789012345678901234567890"),
        ),
        ("true", (None, None, True, None)),
        ('"NaN"', (None, None, None, "NaN")),
        ("Infinity", (math.inf, None, None, None)),
    ],
)
def test_places_values_of_an_int_signal(raw: str, expected: tuple[Any, ...]) -> None:
    assert only_value(raw, {"101": INT}) == expected


@pytest.mark.parametrize(
    "values",
    [
        [-0.0],  # one JSON type: whole columns
        [-0.0, 5, None],  # numbers of both types on numeric signals
        [-0.0, "idle", True],  # split by type, then put back in order
        [-0.0, 2**64],  # a value no column holds: the others by whole columns
    ],
)
def test_an_int_signals_negative_zero_keeps_its_sign(values: list[Any]) -> None:
    is_int = np.ones(len(values), np.bool_)
    is_float = np.zeros(len(values), np.bool_)

    quick = values_module.value_columns(values, is_int, is_float, url=URL)
    slow = values_module._columns_slowly(values, is_int, is_float)

    for columns in (quick, slow):
        assert repr(columns.floats[0].as_py()) == "-0.0"
        assert columns.ints[0].as_py() is None
    assert column_rows(quick) == column_rows(slow)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5", (None, 5, None, None)),
        ("5.0", (5.0, None, None, None)),
        ("true", (None, None, True, None)),
        ('"NaN"', (None, None, None, "NaN")),
        ('"x"', (None, None, None, "x")),
        ("18446744073709551616", (None, None, None, "18446744073709551616")),
    ],
)
@pytest.mark.parametrize("declared", [None, DataType.BOOL, DataType.STRING])
def test_without_a_numeric_type_the_json_type_decides(
    raw: str, expected: tuple[Any, ...], declared: DataType | None
) -> None:
    assert only_value(raw, {"101": declared}) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("5.0", (None, 5, None, None)),
        ("7", (None, 7, None, None)),
        ("2.5", (2.5, None, None, None)),
        ('"inf"', (None, None, None, "inf")),
    ],
)
def test_a_count_is_an_integer_even_on_a_float_signal(
    raw: str, expected: tuple[Any, ...]
) -> None:
    assert only_value(raw, {"101": FLOAT}, aggregation="count") == expected


@pytest.mark.parametrize("aggregation", ["mean", "median", "MEAN"])
@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("7.0", (7.0, None, None, None)),
        ("7", (7.0, None, None, None)),
        ("5.86", (5.86, None, None, None)),
        ('"NaN"', (math.nan, None, None, None)),
    ],
)
def test_an_average_of_an_int_signal_is_a_float_whole_or_not(
    raw: str, expected: tuple[Any, ...], aggregation: str
) -> None:
    got = only_value(raw, {"101": INT}, aggregation=aggregation)

    assert str(got) == str(expected)


@pytest.mark.parametrize("aggregation", ["sum", "max", "last"])
def test_other_aggregates_of_an_int_signal_stay_integers(aggregation: str) -> None:
    got = only_value("7.0", {"101": INT}, aggregation=aggregation)

    assert got == (None, 7, None, None)
    assert type(got[1]) is int


def test_a_bool_among_floats_stays_a_bool() -> None:
    # A typed pa.array would turn True into 1.0 without a word.
    decoded = decode(
        [
            point("101", 1.5),
            point("101", True, "2026-12-04T10:00:01Z"),
            point("101", 2, "2026-12-04T10:00:02Z"),
        ],
        {"101": FLOAT},
    )

    assert [value_row(decoded, row) for row in range(3)] == [
        (1.5, None, None, None),
        (None, None, True, None),
        (2.0, None, None, None),
    ]


def test_mixed_types_in_one_block_keep_their_rows() -> None:
    points = [
        point("101", 1.25, "2026-12-04T10:00:00Z"),
        point("102", 4, "2026-12-04T10:00:00Z"),
        point("103", "idle", "2026-12-04T10:00:00Z"),
        point("101", "NaN", "2026-12-04T10:00:01Z"),
        point("102", None, "2026-12-04T10:00:01Z"),
        point("103", False, "2026-12-04T10:00:01Z"),
        point("101", 3, "2026-12-04T10:00:02Z"),
        point("102", 6.0, "2026-12-04T10:00:02Z"),
    ]
    decoded = decode(points, {"101": FLOAT, "102": INT, "103": DataType.STRING})
    rows = [value_row(decoded, row) for row in range(8)]

    assert math.isnan(rows[3][0])
    rows[3] = ("nan", *rows[3][1:])
    assert rows == [
        (1.25, None, None, None),
        (None, 4, None, None),
        (None, None, None, "idle"),
        ("nan", None, None, None),
        (None, None, None, None),
        (None, None, False, None),
        (3.0, None, None, None),
        (None, 6, None, None),
    ]


def test_whole_floats_sent_as_integers_follow_the_declared_type() -> None:
    points = [
        point("101", 5),
        point("101", 5.5, "2026-12-04T10:00:01Z"),
        point("102", 7.0),
        point("102", 8),
    ]
    points[3]["timestamp"] = "2026-12-04T10:00:01Z"
    decoded = decode(points, {"101": FLOAT, "102": INT})

    assert decoded.batch.column("value_float").to_pylist() == [5.0, 5.5, None, None]
    assert decoded.batch.column("value_int").to_pylist() == [None, None, 7, 8]


def test_a_point_without_a_value_has_a_null_value() -> None:
    decoded = decode(
        b'[{"index": "101", "timestamp": "2026-12-04T10:00:00Z"}]', {"101": FLOAT}
    )

    assert value_row(decoded) == (None, None, None, None)


@pytest.mark.parametrize(
    "raw",
    ["18446744073709551616", "-9223372036854775809", "99999999999999999999999"],
)
def test_integers_orjson_would_round_keep_their_digits(raw: str) -> None:
    # orjson reads these as floats; the decoder notices and parses the body again.
    body = f'[{{"index": "101", "value": {raw}, "timestamp": "2026-12-04T10:00:00Z"}}]'

    assert value_row(decode(body.encode())) == (None, None, None, raw)


def test_a_large_float_stays_a_float_after_the_second_parse() -> None:
    body = b'[{"index": "101", "value": 1e19, "timestamp": "2026-12-04T10:00:00Z"}]'

    assert value_row(decode(body)) == (1e19, None, None, None)


def test_big_integers_next_to_nan_tokens_keep_their_digits() -> None:
    body = (
        b'[{"index": "101", "value": NaN, "timestamp": "2026-12-04T10:00:00Z"},'
        b' {"index": "102", "timestamp": "2026-12-04T10:00:00Z",'
        b' "value": 123456789012345678901}]'
    )
    decoded = decode(body, {"101": FLOAT})

    assert math.isnan(decoded.batch.column("value_float")[0].as_py())
    assert value_row(decoded, 1) == (None, None, None, "123456789012345678901")


# Timestamps --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected_us"),
    [
        ("2026-12-04T10:00:01Z", START_US + 1_000_000),
        ("2026-12-04T10:00:01.5Z", START_US + 1_500_000),
        ("2026-12-04T10:00:01.123456Z", START_US + 1_123_456),
        ("2026-12-04T10:00:01.1234567Z", START_US + 1_123_456),
        ("2026-12-04T10:00:01.123456789Z", START_US + 1_123_456),
        ("2026-12-04T10:00:01+00:00", START_US + 1_000_000),
        ("2026-12-04T10:00:01.25+00:00", START_US + 1_250_000),
        ("2026-12-04T11:00:01+01:00", START_US + 1_000_000),
        ("2026-12-04T08:30:01-01:30", START_US + 1_000_000),
        ("2026-12-04T10:00:01z", START_US + 1_000_000),
        ("2026-12-04T10:00:01.999999999z", START_US + 1_999_999),
        ("2026-12-04T10:00:01", START_US + 1_000_000),
        (" 2026-12-04T10:00:01Z", START_US + 1_000_000),
    ],
)
def test_parses_timestamp_variants_to_microseconds(text: str, expected_us: int) -> None:
    decoded = decode([point("101", 1.0, text)], block=FINE_BLOCK)

    assert times_us(decoded) == [expected_us]


def test_mixed_timestamp_spellings_in_one_block() -> None:
    decoded = decode(
        [
            point("101", 1.0, "2026-12-04T10:00:01Z"),
            point("102", 1.0, "2026-12-04T10:00:02.000000001z"),
            point("103", 1.0, "2026-12-04T11:00:03+01:00"),
        ]
    )

    assert times_us(decoded) == [
        START_US + 1_000_000,
        START_US + 2_000_000,
        START_US + 3_000_000,
    ]


def test_nanosecond_digits_beyond_the_year_2262_are_truncated_too() -> None:
    start_us = 10_000_000_000_000_000  # 2286-11-20T17:46:40Z, past the nanosecond range
    block = Block(3, "mean", ("101",), start_us, start_us + 60 * SECOND_US, 1)
    decoded = decode([point("101", 1.0, "2286-11-20T17:46:41.123456999Z")], block=block)

    assert times_us(decoded) == [start_us + 1_123_456]


# Indexes and drops -------------------------------------------------------------------


def test_a_numeric_index_becomes_its_string() -> None:
    decoded = decode([point(101, 1.0), point(102, 2.0)])

    assert decoded.batch.column("index").to_pylist() == ["101", "102"]
    assert decoded.dropped_unrequested == 0


@pytest.mark.parametrize("index", [101.0, 12.5, True, None, [101], "999", 101 + 2**64])
def test_an_index_naming_no_requested_signal_is_unrequested(index: Any) -> None:
    decoded = decode([point(index, 9.0), point("101", 1.0)])

    assert decoded.batch.column("index").to_pylist() == ["101"]
    assert decoded.dropped_unrequested == 1


def test_counts_points_outside_the_range_and_keeps_both_ends() -> None:
    decoded = decode(
        [
            point("101", 1.0, "2026-12-04T09:59:59.999999Z"),
            point("101", 2.0, "2026-12-04T10:00:00Z"),
            point("101", 3.0, "2026-12-04T10:01:00Z"),
            point("101", 4.0, "2026-12-04T10:01:00.000001Z"),
        ]
    )

    assert decoded.batch.column("value_float").to_pylist() == [2.0, 3.0]
    assert decoded.dropped_out_of_range == 2


def test_counts_points_off_the_window_grid() -> None:
    decoded = decode(
        [
            point("101", 1.0, "2026-12-04T10:00:00Z"),
            point("101", 2.0, "2026-12-04T10:00:00.500000Z"),
            point("101", 3.0, "2026-12-04T10:00:01Z"),
            point("102", 4.0, "2026-12-04T10:00:59.999999Z"),
        ]
    )

    assert decoded.batch.column("value_float").to_pylist() == [1.0, 3.0]
    assert (decoded.dropped_off_grid, decoded.dropped_out_of_range) == (2, 0)


def test_an_answer_mostly_off_the_grid_is_kept_as_the_server_labels_it(
    caplog, monkeypatch
) -> None:
    monkeypatch.setattr(decode_module, "_warned", set())
    with caplog.at_level(logging.WARNING, logger="powerp_async.decode"):
        decoded = decode(
            [
                point("101", 1.0, "2026-12-04T10:00:00.250000Z"),
                point("101", 2.0, "2026-12-04T10:00:01.250000Z"),
                point("102", 3.0, "2026-12-04T10:00:01.250000Z"),
                point("101", 4.0, "2026-12-04T10:00:02Z"),  # in the window of 2.0
                point("101", 5.0, "2026-12-04T10:00:02.250000Z"),
            ]
        )

    # Windows a quarter second off the epoch's: one point of each signal in each.
    assert decoded.batch.column("value_float").to_pylist() == [1.0, 2.0, 3.0, 5.0]
    assert decoded.dropped_off_grid == 1
    assert caplog.messages == [
        f"{BLOCK.describe()}: most points of an answer are off the grid of windows "
        "aligned to the epoch; the server labels windows otherwise, and its points "
        "are kept as labelled, the first of each signal in each window"
    ]


def test_raw_samples_in_place_of_windows_keep_one_point_per_window() -> None:
    # A server that ignores the window: two raw samples after each label.
    shapes = ((0.5, ".500000"), (0.75, ".750000"))
    samples = [
        point(index, value, f"2026-12-04T10:00:{second:02d}{fraction}Z")
        for second in (1, 2, 3)
        for index in ("101", "102")
        for value, fraction in ((float(second), ""), *shapes)
    ]

    decoded = decode(samples)

    # Each label is the first point on the epoch's grid of its window.
    table = decoded.batch
    assert table.column("index").to_pylist() == ["101", "102"] * 3
    assert table.column("value_float").to_pylist() == [1.0, 1.0, 2.0, 2.0, 3.0, 3.0]
    seconds = [t.second + t.microsecond / 1e6 for t in table["timestamp"].to_pylist()]
    assert seconds == [1, 1, 2, 2, 3, 3]
    assert decoded.dropped_off_grid == len(samples) - 6


def test_a_window_longer_than_any_time_leaves_every_point_in_range() -> None:
    block = Block(3, "mean", ("101",), START_US, START_US + SECOND_US, 2**70)
    decoded = decode([point("101", 1.0, "2026-12-04T10:00:00.500000Z")], block=block)

    assert decoded.batch.column("value_float").to_pylist() == [1.0]


def test_a_query_not_on_the_grid_keeps_its_partial_windows_at_both_edges() -> None:
    start_us = START_US + 300_000  # 10:00:00.3, as query() sends a range as given
    block = Block(3, "mean", ("101",), start_us, start_us + 2 * SECOND_US, SECOND_US)
    decoded = decode(
        [
            point("101", 1.0, "2026-12-04T10:00:00.300000Z"),  # the start labels
            point("101", 2.0, "2026-12-04T10:00:01Z"),
            point("101", 3.0, "2026-12-04T10:00:01.5Z"),
            point("101", 4.0, "2026-12-04T10:00:02Z"),
            point("101", 5.0, "2026-12-04T10:00:02.300000Z"),  # the end labels
        ],
        block=block,
    )

    assert decoded.batch.column("value_float").to_pylist() == [1.0, 2.0, 4.0, 5.0]
    assert decoded.dropped_off_grid == 1


def test_keeps_the_first_of_repeated_points() -> None:
    decoded = decode(
        [
            point("101", 1.0, "2026-12-04T10:00:00Z"),
            point("102", 2.0, "2026-12-04T10:00:00Z"),
            point("101", 3.0, "2026-12-04T10:00:00+00:00"),
            point("101", 4.0, "2026-12-04T10:00:00.000Z"),
            point("102", 5.0, "2026-12-04T10:00:01Z"),
        ]
    )

    assert decoded.batch.column("index").to_pylist() == ["101", "102", "102"]
    assert decoded.batch.column("value_float").to_pylist() == [1.0, 2.0, 5.0]
    assert decoded.dropped_duplicates == 2


def test_each_dropped_point_counts_once_for_its_first_reason() -> None:
    decoded = decode(
        [
            point("999", 1.0, "2026-12-04T10:00:00Z"),
            point("999", 1.0, "2026-12-04T10:00:00Z"),
            point("999", 1.0, "2026-12-04T12:00:00Z"),
            point("101", 1.0, "2026-12-04T12:00:00Z"),
            point("101", 1.0, "2026-12-04T12:00:00Z"),
            point("101", 1.0, "2026-12-04T10:00:00Z"),
            point("101", 2.0, "2026-12-04T10:00:00Z"),
        ]
    )

    assert decoded.batch.num_rows == 1
    assert (
        decoded.dropped_unrequested,
        decoded.dropped_out_of_range,
        decoded.dropped_duplicates,
    ) == (3, 2, 1)


@pytest.mark.parametrize(
    "unreadable", ["yesterday", "2026-13-04T10:00:00Z", 1796378400, None, ["t"]]
)
def test_a_point_whose_time_is_none_is_dropped_not_the_answer(
    unreadable: Any, caplog
) -> None:
    # Warned of once a process, and said at debug level after.
    with caplog.at_level(logging.DEBUG, "powerp_async.decode"):
        decoded = decode(
            [
                point("101", 1.0, "2026-12-04T10:00:00Z"),
                point("102", 2.0, unreadable),
                point("102", 3.0, "2026-12-04T10:00:01Z"),
                point("103", 4, "2026-12-04T10:00:02.000Z"),
            ],
            {"103": INT},
        )

    assert decoded.batch.column("index").to_pylist() == ["101", "102", "103"]
    assert decoded.batch.column("value_float").to_pylist() == [1.0, 3.0, None]
    assert decoded.batch.column("value_int").to_pylist() == [None, None, 4]
    assert [t.value for t in decoded.batch.column("timestamp")] == [
        START_US,
        START_US + SECOND_US,
        START_US + 2 * SECOND_US,
    ]
    assert decoded.dropped_unreadable == 1
    assert (decoded.dropped_off_grid, decoded.dropped_out_of_range) == (0, 0)
    said = [r.getMessage() for r in caplog.records]
    assert said[-1].startswith(
        f"{BLOCK.describe()}: points whose timestamp is no time are dropped (the "
        "first: "
    )
    assert said[-1].endswith(" at position 1)")


def test_an_answer_whose_times_are_mostly_none_is_malformed() -> None:
    with pytest.raises(MalformedResponseError) as caught:
        decode(
            [
                point("101", 1.0, "2026-12-04T10:00:00Z"),
                point("102", 2.0, "soon"),
                point("103", 3.0, 1796378400),
            ]
        )

    assert str(caught.value) == TIME_EXPECTED + "'soon' at position 1"


def test_values_of_dropped_points_are_never_examined() -> None:
    # An unrequested point with a value no column holds must not slow or fail the block.
    decoded = decode([point("999", {"x": 1}), point("101", 1.0)], {"101": FLOAT})

    assert value_row(decoded) == (1.0, None, None, None)


# Malformed bodies --------------------------------------------------------------------

POINTS_EXPECTED: Final = "expected a JSON array of points, got "
NOT_JSON: Final = POINTS_EXPECTED + "a body that is not JSON "
TIME_EXPECTED: Final = (
    "expected each timestamp as an ISO-8601 string such as '2026-12-04T10:00:00Z', got "
)
KEYS_EXPECTED: Final = "expected each point to have "
GOOD: Final = b'{"index": "101", "timestamp": "2026-12-04T10:00:00Z"}'


def with_time(raw: bytes) -> bytes:
    return b'{"index": "101", "timestamp": ' + raw + b"}"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", POINTS_EXPECTED + "an empty body"),
        (b" \r\n\t", POINTS_EXPECTED + "an empty body"),
        (b'{"points": []}', POINTS_EXPECTED + "a JSON object"),
        (b'"[]"', POINTS_EXPECTED + "a JSON string"),
        (b"42", POINTS_EXPECTED + "a JSON number"),
        (b"true", POINTS_EXPECTED + "a JSON boolean"),
        (b"null", POINTS_EXPECTED + "JSON null"),
        (
            b"[{",
            NOT_JSON + "(Expecting property name enclosed in double quotes: "
            "line 1 column 3 (char 2))",
        ),
        (b"<html>502</html>", NOT_JSON + "(Expecting value: line 1 column 1 (char 0))"),
        (
            b"[1, 2]",
            "expected each point to be a JSON object, got a JSON number at position 0",
        ),
        (
            b"[" + GOOD + b", []]",
            "expected each point to be a JSON object, got a JSON array at position 1",
        ),
        (
            b'[{"value": 1, "timestamp": "2026-12-04T10:00:00Z"}]',
            KEYS_EXPECTED
            + "'index', got one with keys 'timestamp', 'value' at position 0",
        ),
        (
            b'[{"index": "101", "time": "2026-12-04T10:00:00Z"}]',
            KEYS_EXPECTED
            + "'timestamp', got one with keys 'index', 'time' at position 0",
        ),
        (b"[{}]", KEYS_EXPECTED + "'index', got one with keys none at position 0"),
        (
            b"[" + with_time(b"1796378400") + b"]",
            TIME_EXPECTED + "a JSON number at position 0",
        ),
        (
            b"[" + GOOD + b"," + with_time(b"null") + b"]",
            TIME_EXPECTED + "JSON null at position 1",
        ),
        (
            b"[" + with_time(b'"yesterday"') + b"]",
            TIME_EXPECTED + "'yesterday' at position 0",
        ),
        (
            b"[" + GOOD + b"," + with_time(b'"2026-13-04T10:00:00Z"') + b"]",
            TIME_EXPECTED + "'2026-13-04T10:00:00Z' at position 1",
        ),
        (
            b'[{"index": "999", "timestamp": "soon"}]',
            TIME_EXPECTED + "'soon' at position 0",
        ),
    ],
)
def test_malformed_bodies_say_what_was_expected(body: bytes, message: str) -> None:
    with pytest.raises(MalformedResponseError) as caught:
        decode(body)

    assert str(caught.value) == message
    assert caught.value.url == URL


@pytest.mark.parametrize("value", [b"NaN", b"1"])  # the stdlib's path, and msgspec's
def test_an_unpaired_surrogate_is_kept_as_the_replacement_character(
    value: bytes, caplog, monkeypatch
) -> None:
    monkeypatch.setattr(decode_module, "_warned", set())
    body = (
        b'[{"index": "101", "value": "a\\ud800b", "timestamp": "2026-12-04T10:00:00Z"},'
        b' {"index": "\\udc00", "value": 2, "timestamp": "2026-12-04T10:00:01Z"},'
        b' {"index": "102", "value": '
        + value
        + b', "timestamp": "2026-12-04T10:00:00Z"}]'
    )

    with caplog.at_level(logging.WARNING, logger="powerp_async.decode"):
        decoded = decode(body)

    rows = decoded.batch.to_pylist()
    assert [(row["index"], row["value_text"]) for row in rows] == [
        ("101", "a\ufffdb"),
        ("102", None),
    ]
    assert decoded.dropped_unrequested == 1  # "\udc00" names no signal asked for
    assert caplog.messages == [
        f"{URL}: a text of the answer to {BLOCK.describe()} holds an unpaired "
        "surrogate escape, which no UTF-8 text can hold; kept with U+FFFD in its place"
    ]

    with caplog.at_level(logging.WARNING, logger="powerp_async.decode"):
        decode(body)

    assert len(caplog.messages) == 1  # the next answer alike: debug level only


def test_an_error_carries_a_short_clean_excerpt() -> None:
    body = b'{"error": "\x1b[31mboom\x00\xff",\n' + b'"pad": "' + b"x" * 5_000 + b'"}'

    with pytest.raises(MalformedResponseError) as caught:
        decode(body)

    assert caught.value.excerpt.startswith('{"error": " [31mboom \ufffd", "pad": "xxx')
    assert len(caught.value.excerpt) == 200


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_excerpts_are_bounded_and_free_of_control_characters(tail: bytes) -> None:
    # An opening brace makes any body malformed: invalid JSON or a JSON object.
    with pytest.raises(MalformedResponseError) as caught:
        decode(b"{" + tail * 3)

    assert len(caught.value.excerpt) <= 200
    assert not any(
        ord(char) < 0x20 or 0x7F <= ord(char) <= 0x9F for char in caught.value.excerpt
    )


def test_decoded_block_names_the_bad_field() -> None:
    empty = decode(b"[]").batch

    with pytest.raises(
        ValueError, match="dropped_duplicates must be a count of zero or more, got -1"
    ):
        DecodedBlock(empty, 0, 0, -1)

    with pytest.raises(ValueError, match="batch must have POINT_SCHEMA"):
        DecodedBlock(pa.record_batch({"x": [1]}), 0, 0, 0)


def test_the_per_point_path_is_logged_with_the_url(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.DEBUG, logger="powerp_async.decode"):
        decode([point("101", [1, 2])])

    assert caplog.messages == [f"values of {URL} need the per-point path"]


# Fast and slow paths -----------------------------------------------------------------

BLOCK_INDEXES: Final = ("101", "102", "103", "104")
PROPERTY_BLOCK: Final = Block(
    7, "mean", BLOCK_INDEXES, START_US, START_US + 20 * SECOND_US, SECOND_US
)


def wire_time(moment_us: int, style: str) -> str:
    """A timestamp as servers write it, built without the package's own helpers."""
    moment = EPOCH + timedelta(microseconds=moment_us)
    if style == "+01:00":
        moment += timedelta(hours=1)
    whole = moment.strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f".{moment.microsecond:06d}"
    suffixes = {
        "Z": fraction + "Z",
        "ns": fraction + "789Z",
        "z": fraction + "z",
        "+00:00": fraction + "+00:00",
        "+01:00": fraction + "+01:00",
    }
    return whole + suffixes[style]


finite_floats = st.floats(allow_nan=False, allow_infinity=False)
any_float = st.floats()
int64s = st.integers(-(2**63), 2**63 - 1)
small_ints = st.integers(-(2**60), 2**60)
huge_ints = st.integers(2**64, 2**70) | st.integers(-(2**70), -(2**63) - 1)
texts = st.sampled_from(
    ["NaN", "nan", "Infinity", "-Infinity", "inf", "-INF", "ok", "", "5"]
)
values_of_one_type = st.one_of(
    st.lists(st.none() | any_float, max_size=40),
    st.lists(st.none() | int64s, max_size=40),
    st.lists(st.none() | st.booleans(), max_size=40),
    st.lists(st.none() | texts, max_size=40),
)
values_of_many_types = st.lists(
    st.one_of(
        st.none(), st.booleans(), any_float, finite_floats.map(round), small_ints, texts
    ),
    max_size=40,
)
values_needing_the_slow_path = st.lists(
    st.one_of(any_float, int64s, huge_ints, st.lists(st.integers(), max_size=2)),
    max_size=40,
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[bytes, Block, dict[str, DataType | None]]:
    values = draw(
        values_of_one_type | values_of_many_types | values_needing_the_slow_path
    )
    indexes = st.sampled_from([*BLOCK_INDEXES, "999", 101, 102, 12.5])
    styles = st.sampled_from(["Z", "ns", "z", "+00:00", "+01:00"])
    offsets_us = st.integers(-2, 22).map(
        lambda second: second * SECOND_US
    ) | st.sampled_from([1, 999_999])
    points = [
        point(
            draw(indexes), value, wire_time(START_US + draw(offsets_us), draw(styles))
        )
        for value in values
    ]
    kinds = st.sampled_from([None, FLOAT, INT, DataType.BOOL, DataType.STRING])
    data_types = {index: draw(kinds) for index in BLOCK_INDEXES}
    aggregation = draw(st.sampled_from(["mean", "last", "count"]))
    block = Block(
        7, aggregation, BLOCK_INDEXES, START_US, PROPERTY_BLOCK.end_us, SECOND_US
    )
    return body_of(points), block, data_types


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers())
def test_fast_and_slow_paths_give_the_same_batch(
    answer: tuple[bytes, Block, dict[str, DataType | None]],
) -> None:
    body, block, data_types = answer
    fast = decode_block(body, block, data_types, url=URL)

    with (
        mock.patch.object(values_module, "_columns_quickly", return_value=None),
        mock.patch.object(decode_module, "_cast_times", return_value=None),
    ):
        slow = decode_block(body, block, data_types, url=URL)

    assert comparable(fast) == comparable(slow)


def expected_selection(
    points: list[dict[str, Any]], block: Block
) -> tuple[list[tuple[str, int]], int, int, int]:
    """The drop rules written plainly, one point at a time."""
    kept: list[tuple[str, int]] = []
    unrequested = out_of_range = duplicates = 0
    for item in points:
        raw = item["index"]
        index = (
            str(raw)
            if isinstance(raw, str | int) and not isinstance(raw, bool)
            else None
        )
        moment_us = item["moment_us"]
        if index not in block.indexes:
            unrequested += 1
        elif not block.start_us <= moment_us <= block.end_us:
            out_of_range += 1
        elif (index, moment_us) in kept:
            duplicates += 1
        else:
            kept.append((index, moment_us))
    return kept, unrequested, out_of_range, duplicates


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([*BLOCK_INDEXES, "999", 101, 104, 101.0, True, None]),
            st.integers(-3, 23).map(lambda second: START_US + second * SECOND_US),
            st.sampled_from(["Z", "ns", "+01:00"]),
        ),
        max_size=60,
    )
)
def test_drops_match_the_plain_rules(raw_points: list[tuple[Any, int, str]]) -> None:
    points = [
        {
            "index": index,
            "moment_us": moment_us,
            "timestamp": wire_time(moment_us, style),
        }
        for index, moment_us, style in raw_points
    ]
    wire = [
        {"index": item["index"], "value": 1.0, "timestamp": item["timestamp"]}
        for item in points
    ]
    decoded = decode_block(orjson.dumps(wire), PROPERTY_BLOCK, {}, url=URL)
    kept, unrequested, out_of_range, duplicates = expected_selection(
        points, PROPERTY_BLOCK
    )

    assert (
        list(
            zip(
                decoded.batch.column("index").to_pylist(),
                times_us(decoded),
                strict=True,
            )
        )
        == kept
    )
    assert (
        decoded.dropped_unrequested,
        decoded.dropped_out_of_range,
        decoded.dropped_duplicates,
    ) == (unrequested, out_of_range, duplicates)


@pytest.mark.parametrize(
    ("values", "expected_rows"),
    [
        (
            [1.5, None, 2.5],
            [(1.5, None, None, None), NULL_ROW, (2.5, None, None, None)],
        ),
        ([1, None, 2], [(1.0, None, None, None), NULL_ROW, (2.0, None, None, None)]),
        (
            [True, None, False],
            [(None, None, True, None), NULL_ROW, (None, None, False, None)],
        ),
        (
            ["a", None, "NaN"],
            [(None, None, None, "a"), NULL_ROW, ("NaN", None, None, None)],
        ),
        (
            [1.5, "NaN", True, None, 3, "x"],
            [
                (1.5, None, None, None),
                (None, None, None, "NaN"),
                (None, None, True, None),
                NULL_ROW,
                (3.0, None, None, None),
                (None, None, None, "x"),
            ],
        ),
        ([1, 2.5], [(1.0, None, None, None), (2.5, None, None, None)]),
        ([1, 2.0], [(1.0, None, None, None), (None, 2, None, None)]),
    ],
)
def test_the_whole_column_path_takes_blocks_without_odd_values(
    values: list[Any], expected_rows: list[tuple[Any, ...]]
) -> None:
    # Signals alternate: float, int, float, int, ...
    is_float = np.array([position % 2 == 0 for position in range(len(values))])
    columns = values_module._columns_quickly(values, ~is_float, is_float)

    assert columns is not None
    rows = zip(*(column.to_pylist() for column in columns), strict=True)
    assert [tuple(map(nan_as_text, row)) for row in rows] == expected_rows


def test_a_few_integers_beyond_64_bits_are_placed_one_at_a_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    values = [1, 2**64 + 5, 3, 4, 5, 6, 7]
    points = [
        point("101", value, f"2026-12-04T10:00:0{second}Z")
        for second, value in enumerate(values)
    ]
    points.append(point("102", 2**64))

    with caplog.at_level(logging.DEBUG, logger="powerp_async.decode"):
        decoded = decode(points, {"101": INT, "102": FLOAT})

    assert decoded.batch.column("value_int").to_pylist() == [
        1,
        None,
        3,
        4,
        5,
        6,
        7,
        None,
    ]
    assert decoded.batch.column("value_text").to_pylist()[:2] == [
        None,
        "18446744073709551621",
    ]
    assert decoded.batch.column("value_float").to_pylist()[-1] == 2.0**64
    assert caplog.messages == [f"2 values of {URL} are placed one at a time"]


def column_rows(columns: values_module.ValueColumns) -> list[tuple[Any, ...]]:
    rows = zip(*(column.to_pylist() for column in columns), strict=True)
    return [tuple(map(nan_as_text, row)) for row in rows]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.one_of(st.none(), st.booleans(), any_float, int64s, texts), max_size=40
    ),
    st.lists(huge_ints | st.lists(st.integers(), max_size=2), min_size=1, max_size=3),
    st.data(),
)
def test_a_few_odd_values_give_what_the_per_point_path_gives(
    values: list[Any], odd: list[Any], data: st.DataObject
) -> None:
    for value in odd:
        values.insert(data.draw(st.integers(0, len(values))), value)
    flags = st.lists(st.booleans(), min_size=len(values), max_size=len(values))
    is_int = np.array(data.draw(flags), np.bool_)
    is_float = ~is_int & np.array(data.draw(flags), np.bool_)

    columns = values_module.value_columns(values, is_int, is_float, url=URL)
    few = len(odd) <= len(values) * values_module._MOST_ODD_SHARE
    event("odd values put in" if few else "all values one at a time")

    expected = values_module._columns_slowly(values, is_int, is_float)
    assert column_rows(columns) == column_rows(expected)


@pytest.mark.parametrize("values", [[1, 2**64], [1.5, [1]], [{"a": 1}]])
def test_odd_values_take_the_per_point_path(values: list[Any]) -> None:
    nowhere = np.zeros(len(values), bool)

    assert values_module._columns_quickly(values, nowhere, nowhere) is None


# Answers grouped by signal -----------------------------------------------------------


def grouped_body(runs: Sequence[tuple[Any, Sequence[str]]], value: Any = 1.5) -> bytes:
    """An answer that sends each signal's points together, in the order given."""
    return body_of(
        [point(index, value, text) for index, texts in runs for text in texts]
    )


def by_run(body: bytes, block: Block = BLOCK) -> tuple[list[int], list[int]] | None:
    """The signal and time of each point as found run by run, or ``None``."""
    fields = wire_module.read_fields(body, block.indexes, floats_only=False, url=URL)
    found = decode_module._codes_and_times_by_run(fields, block)
    return None if found is None else (found[0].tolist(), found[1].tolist())


TEN: Final = ["2026-12-04T10:00:00Z", "2026-12-04T10:00:01Z", "2026-12-04T10:00:02Z"]


def test_an_answer_grouped_by_signal_is_taken_run_by_run() -> None:
    body = grouped_body([("102", TEN), ("101", TEN[:2]), ("103", [TEN[0], TEN[2]])])
    moments = [START_US, START_US + SECOND_US, START_US + 2 * SECOND_US]

    assert by_run(body) == (
        [1, 1, 1, 0, 0, 2, 2],
        [*moments, *moments[:2], moments[0], moments[2]],
    )
    decoded = decode(body)
    assert decoded.batch.column("index").to_pylist() == [
        *["102"] * 3,
        *["101"] * 2,
        *["103"] * 2,
    ]
    assert times_us(decoded) == [*moments, *moments[:2], moments[0], moments[2]]


@pytest.mark.parametrize(
    "runs",
    [
        [("101", TEN), ("999", TEN)],
        [("101", TEN), (101, TEN)],
        [("101", TEN), ("102", ["2026-12-04T10:00:00z"])],
        [("101", [TEN[0], 1796378400])],
        [("101", TEN[:1]), ("102", TEN[:1]), ("101", TEN[1:2])] * 2,
    ],
)
def test_what_runs_cannot_vouch_for_goes_the_general_way(
    runs: list[tuple[Any, list[Any]]],
) -> None:
    body = body_of([point(index, 1.0, text) for index, texts in runs for text in texts])

    assert by_run(body) is None


def test_repeats_within_a_run_and_a_signal_sent_twice_are_dropped() -> None:
    body = grouped_body(
        [("103", [TEN[0], TEN[1], TEN[1]]), ("101", TEN[:1]), ("103", TEN[:1])]
    )

    assert by_run(body) is not None
    decoded = decode(body)
    assert decoded.batch.column("index").to_pylist() == ["103", "103", "101"]
    assert times_us(decoded) == [START_US, START_US + SECOND_US, START_US]
    assert decoded.dropped_duplicates == 2


@st.composite
def grouped_answers(draw: st.DrawFn) -> tuple[bytes, Block, dict[str, DataType | None]]:
    """Answers sent signal by signal over one grid of windows, some missing, some
    repeated or out of range, spelled one way or another."""
    grid = sorted(draw(st.sets(st.integers(-2, 22), min_size=1, max_size=12)))
    # Now and then an index not asked for, or a spelling Arrow refuses ("z").
    odd = draw(st.integers(0, 3)) == 0
    style = draw(st.sampled_from(["Z", "ns", "+00:00", "+01:00", *["z"] * odd]))
    signals = st.sampled_from([*BLOCK_INDEXES, *["999", 101] * odd])
    points = []
    for index in draw(st.lists(signals, min_size=1, max_size=6)):
        seconds = draw(st.sampled_from([grid, grid[: len(grid) // 2]]))
        seconds = draw(st.sampled_from([seconds, sorted(draw(st.permutations(grid)))]))
        seconds = seconds + draw(st.lists(st.sampled_from(grid or [0]), max_size=1))
        run_style = draw(st.sampled_from([style, style, "Z", "+00:00"]))
        points += [
            point(
                index,
                draw(plain_values | edge_numbers),
                wire_time(START_US + second * SECOND_US, run_style),
            )
            for second in seconds
        ]

    kinds = st.sampled_from([None, FLOAT, INT, DataType.BOOL, DataType.STRING])
    data_types = {index: draw(kinds) for index in BLOCK_INDEXES}
    block = Block(7, "mean", BLOCK_INDEXES, START_US, PROPERTY_BLOCK.end_us, SECOND_US)
    return body_of(points), block, data_types


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(grouped_answers())
def test_runs_give_what_the_point_by_point_path_gives(
    answer: tuple[bytes, Block, dict[str, DataType | None]],
) -> None:
    body, block, data_types = answer
    event("taken run by run" if by_run(body, block) else "left point by point")

    with mock.patch.object(decode_module, "_codes_and_times_by_run", return_value=None):
        point_by_point = outcome(body, block, data_types)

    assert outcome(body, block, data_types) == point_by_point


# The quick reader and the general one ------------------------------------------------

FLOAT_TYPES: Final = dict.fromkeys(BLOCK.indexes, FLOAT)
AT_TEN: Final = b'"timestamp":"2026-12-04T10:00:00Z"'


def general_outcome(body: bytes, block: Block, data_types: Any) -> tuple[Any, ...]:
    """What the general reader alone makes of ``body``: the batch, or the error."""
    with (
        mock.patch.object(decode_module, "read_compact", return_value=None),
        mock.patch.object(wire_module, "_read_quickly", return_value=None),
    ):
        return outcome(body, block, data_types)


def outcome(body: bytes, block: Block, data_types: Any) -> tuple[Any, ...]:
    try:
        decoded = decode_block(body, block, data_types, url=URL)
    except MalformedResponseError as error:
        return ("malformed", str(error), error.excerpt)

    return ("decoded", *comparable(decoded))


def read_one_quickly(raw: str, *, floats_only: bool) -> wire_module.Fields:
    """What the quick reader makes of a one-point body whose value is the raw JSON."""
    body = f'[{{"index":"101","timestamp":"2026-12-04T10:00:00Z","value":{raw}}}]'
    fields = wire_module._read_quickly(
        body.encode(), BLOCK.indexes, floats_only=floats_only
    )
    assert fields is not None
    return fields


def test_the_quick_reader_takes_the_common_shape() -> None:
    body = (
        b'[{"index":"101","value":1.5,"timestamp":"2026-12-04T10:00:00Z"},'
        b'{"index":"102","value":null,"timestamp":"2026-12-04T10:00:00.5Z"},'
        b'{"timestamp":"2026-12-04T10:00:01+00:00","index":"103"}]'
    )
    fields = wire_module._read_quickly(body, BLOCK.indexes, floats_only=False)

    assert fields == wire_module.Fields(
        indexes=["101", "102", "103"],
        values=[1.5, None, None],
        times=[
            "2026-12-04T10:00:00Z",
            "2026-12-04T10:00:00.5Z",
            "2026-12-04T10:00:01+00:00",
        ],
        exact=True,
    )


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ('"NaN"', "NaN"),
        ("true", True),
        ("-0", 0),
        ("-0.0", -0.0),
        ("1E5", 100000.0),
        ("9007199254740993", 9007199254740993),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("-123456789012345678901234567890", -123456789012345678901234567890),
        ('"\\u00e9\\ud83d\\ude00"', "\u00e9\U0001f600"),
        ("2.4703282292062328e-324", 5e-324),
        ("0.1000000000000000055511151231257827", 0.1),
    ],
)
def test_the_quick_reader_keeps_values_as_json_gives_them(
    raw: str, expected: Any
) -> None:
    (value,) = read_one_quickly(raw, floats_only=False).values
    # repr tells -0.0 from 0.0 and an int from an equal float.
    assert (type(value), repr(value)) == (type(expected), repr(expected))


def test_values_of_float_signals_are_read_as_floats_at_once() -> None:
    body = (
        b'[{"index":"101","value":5,' + AT_TEN + b'},{"index":"102",' + AT_TEN + b"}]"
    )
    fields = wire_module._read_quickly(body, BLOCK.indexes, floats_only=True)

    assert fields is not None
    assert fields.floats is not None
    assert fields.floats.to_pylist() == [5.0, None]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("9007199254740993", 9007199254740993),
        ("-9007199254740992", -9007199254740992),
        ("1e16", 1e16),
        ("true", True),
        ('"NaN"', "NaN"),
    ],
)
def test_values_a_float_may_have_rounded_are_read_as_sent(
    raw: str, expected: Any
) -> None:
    fields = read_one_quickly(raw, floats_only=True)

    assert fields.floats is None
    assert (type(fields.values[0]), fields.values) == (type(expected), [expected])


@pytest.mark.parametrize(
    "body",
    [
        b'[{"index":"101","value":NaN,"timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":"101","value":-Infinity,"timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":"101","value":1e400,"timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":"101","value":[1],"timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":"101","value":{"a":1},"timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":101,"value":1.0,"timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":"999","value":1.0,"timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":null,"value":1.0,"timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"value":1.0,"timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":"101","value":1.0}]',
        b'[{"index":"101","value":1.0,"timestamp":1796378400}]',
        b'[{"index":"101","value":"\\ud800","timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":"101","value":"\x01","timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":"101","value":1' + b"0" * 4300 + b',"timestamp":"t"}]',
        b'{"index":"101","value":1.0,"timestamp":"2026-12-04T10:00:00Z"}',
        b"[1]",
        b"\xef\xbb\xbf[]",
        b"[] []",
        b"<html>502</html>",
        b'[{"index":"101","q":' + b"[" * 5000 + b"]" * 5000 + b"," + AT_TEN + b"}]",
    ],
)
def test_the_quick_reader_refuses_what_it_cannot_take_as_sent(body: bytes) -> None:
    assert wire_module._read_quickly(body, BLOCK.indexes, floats_only=False) is None


@pytest.mark.parametrize(
    "body",
    [
        # Keys spelled with escapes, repeated keys (the last one counts), keys
        # no point needs, and whitespace anywhere JSON allows it.
        b'[{"ind\\u0065x":"101","v\\u0061lue":2.5,' + AT_TEN + b"}]",
        b'[{"index":"102","value":1,"value":"x",' + AT_TEN + b"}]",
        b'[{"index":"102","index":"101",' + AT_TEN + b"}]",
        b'[{"index":"101","quality":{"ok":[1,NaN]},' + AT_TEN + b"}]",
        b' [ {"index" : "101" ,\n "value" : 7 , ' + AT_TEN + b" } ] ",
        b'[{"index":"101","value":18446744073709551617,' + AT_TEN + b"}]",
        b'[{"index":"101","value":"\\ud83d\\ude00",' + AT_TEN + b"}]",
        b'[{"index":"\\u0031\\u0030\\u0031",' + AT_TEN + b"}]",
        # Arrays nested deeper than msgspec follows, in a key no point needs: the
        # quick reader leaves them to the general one, which takes or refuses them.
        b'[{"index":"101","q":' + b"[" * 900 + b"]" * 900 + b"," + AT_TEN + b"}]",
        b'[{"index":"101","q":' + b"[" * 5000 + b"]" * 5000 + b"," + AT_TEN + b"}]",
    ],
)
def test_odd_bodies_give_what_the_general_reader_gives(body: bytes) -> None:
    assert outcome(body, BLOCK, FLOAT_TYPES) == general_outcome(
        body, BLOCK, FLOAT_TYPES
    )


def test_integers_beyond_64_bits_need_no_second_parse(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = (
        b'[{"index": "101", "value": 123456789012345678901,'
        b' "timestamp": "2026-12-04T10:00:00Z"}]'
    )

    with caplog.at_level(logging.DEBUG, logger="powerp_async.decode"):
        decoded = decode(body)

    assert value_row(decoded) == (None, None, None, "123456789012345678901")
    assert not any("again" in message for message in caplog.messages)


@pytest.mark.parametrize("quick", [True, False])
def test_an_integer_just_below_int64_keeps_its_digits(quick: bool) -> None:
    # orjson rounds it to -2**63 as a float, which an int signal would take as the
    # least int64 without a word.
    body = b'[{"index":"101","value":-9223372036854775809,' + AT_TEN + b"}]"
    decode_outcome = outcome if quick else general_outcome

    rows = decode_outcome(body, BLOCK, {"101": INT})[1]
    assert (rows[0]["value_int"], rows[0]["value_text"]) == (
        None,
        "-9223372036854775809",
    )


def key_text(key: str, escaped: bool) -> str:
    """A key as JSON text, every letter written as a \\u escape if ``escaped``."""
    if not escaped:
        return json.dumps(key)

    return '"' + "".join(f"\\u{ord(char):04x}" for char in key) + '"'


edge_numbers = st.sampled_from(
    [-0.0, 0.0, -7.0, 2**53 + 1, -(2**53) - 1, 2.0**53, 2.0**63, -(2.0**63), 2**63]
)
"""Numbers at the edges of what the other column holds: a signed zero, integers a
float64 rounds, floats just inside and outside 64-bit integers."""
plain_values = st.one_of(
    st.none(),
    st.booleans(),
    finite_floats,
    finite_floats.map(round),
    int64s,
    huge_ints,
    st.integers(-(2**53) - 3, -(2**53) + 3) | st.integers(2**53 - 3, 2**53 + 3),
    texts,
    st.text(max_size=4),
)
numbers = (
    st.none()
    | st.floats(-1e15, 1e15)
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.sampled_from([2.0**53, 1e300, -(2**53) - 1])
    | edge_numbers
)
odd_values = plain_values | st.sampled_from([math.nan, math.inf, -math.inf, [1], {}])
plain_times = st.builds(
    wire_time,
    st.integers(-2, 22).map(lambda second: START_US + second * SECOND_US),
    st.sampled_from(["Z", "ns", "z", "+00:00", "+01:00"]),
)
odd_times = plain_times | st.sampled_from(
    ["soon", "2026-13-04T10:00:00Z", "", 1796378400, None]
)
odd_indexes = st.sampled_from([*BLOCK_INDEXES, "999", 101, 12.5, True, None, "1é"])


@st.composite
def wire_points(draw: st.DrawFn, odd: bool, values: st.SearchStrategy[Any]) -> str:
    """One point as JSON text as a server might write it; an ``odd`` one may lack a
    field, or hold what the quick reader refuses."""
    indexes = odd_indexes if odd else st.sampled_from(BLOCK_INDEXES)
    fields = [
        ("index", draw(indexes)),
        ("timestamp", draw(odd_times if odd else plain_times)),
        ("value", draw(odd_values if odd else values)),
    ]
    if draw(st.integers(0, 4)) == 0:
        fields.append(("quality", draw(odd_values)))
    if draw(st.integers(0, 6)) == 0:
        fields.append((draw(st.sampled_from(fields))[0], draw(plain_values)))
    if odd and draw(st.booleans()):
        del fields[draw(st.integers(0, len(fields) - 1))]

    escaped = draw(st.integers(0, 8)) == 0
    ascii_only = draw(st.booleans())
    members = [
        key_text(key, escaped) + ":" + json.dumps(value, ensure_ascii=ascii_only)
        for key, value in draw(st.permutations(fields))
    ]
    return "{" + draw(st.sampled_from([",", ", ", " ,\n"])).join(members) + "}"


@st.composite
def wire_bodies(draw: st.DrawFn) -> bytes:
    """Bodies mostly of plain points, which the quick reader takes, and some odd."""
    odd_share = draw(st.sampled_from([0, 0, 0.05, 0.5]))
    values = draw(st.sampled_from([plain_values, numbers]))
    points = draw(
        st.lists(
            st.floats(0, 1).flatmap(lambda x: wire_points(x < odd_share, values)),
            max_size=30,
        )
    )
    return ("[" + ",".join(points) + "]").encode()


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    wire_bodies(),
    st.sampled_from(["mean", "last", "count"]),
    st.just([FLOAT] * 4)
    | st.lists(
        st.sampled_from([None, FLOAT, INT, DataType.BOOL]), min_size=4, max_size=4
    ),
)
def test_the_quick_reader_never_gives_other_data_than_the_general_one(
    body: bytes, aggregation: str, kinds: list[DataType | None]
) -> None:
    block = Block(
        7, aggregation, BLOCK_INDEXES, START_US, PROPERTY_BLOCK.end_us, SECOND_US
    )
    data_types = dict(zip(BLOCK_INDEXES, kinds, strict=True))
    floats_only = float_signals_only(block, data_types)
    taken = wire_module._read_quickly(body, BLOCK_INDEXES, floats_only=floats_only)
    event("taken by the quick reader" if taken else "left to the general reader")
    if taken and taken.floats is not None:
        event("read as floats")

    assert outcome(body, block, data_types) == general_outcome(body, block, data_types)


# Rows on disk ------------------------------------------------------------------------


def test_a_decoded_batch_reads_back_from_parquet_as_it_was(tmp_path: Path) -> None:
    decoded = decode(
        [
            point("101", 1.5),
            point("102", 7, "2026-12-04T10:00:01Z"),
            point("103", "idle", "2026-12-04T10:00:02Z"),
        ],
        {"101": FLOAT, "102": INT, "103": DataType.STRING},
    )
    path = tmp_path / "points.parquet"

    write_file(pa.Table.from_batches([decoded.batch]), path, "parquet")

    assert pq.read_table(path).equals(pa.Table.from_batches([decoded.batch]))


def test_parquet_encodes_labels_once_and_skips_empty_columns(tmp_path: Path) -> None:
    decoded = decode([point("101", 1.5), point("102", 2.5, "2026-12-04T10:00:01Z")])
    path = tmp_path / "points.parquet"

    write_file(pa.Table.from_batches([decoded.batch]), path, "parquet")

    row_group = pq.ParquetFile(path).metadata.row_group(0)
    chunks = {
        row_group.column(i).path_in_schema: row_group.column(i)
        for i in range(row_group.num_columns)
    }
    assert "RLE_DICTIONARY" in chunks["index"].encodings
    assert "DELTA_BINARY_PACKED" in chunks["timestamp"].encodings
    assert chunks["timestamp"].statistics.has_min_max
    assert chunks["index"].statistics is None
    assert {name: chunk.compression for name, chunk in chunks.items()} == {
        "database_id": "ZSTD",
        "index": "ZSTD",
        "aggregation": "ZSTD",
        "timestamp": "ZSTD",
        "value_float": "ZSTD",
        "value_int": "UNCOMPRESSED",
        "value_bool": "UNCOMPRESSED",
        "value_text": "UNCOMPRESSED",
    }


def test_a_value_nested_too_deeply_to_write_again_fails_its_answer_clearly() -> None:
    body = b'[{"index":"101","value":' + b"[" * 50 + b"]" * 50 + b"," + AT_TEN + b"}]"

    with (
        mock.patch.object(values_module.json, "dumps", side_effect=RecursionError),
        pytest.raises(MalformedResponseError) as raised,
    ):
        decode(body)

    assert str(raised.value).startswith(
        "expected values nested a few hundred levels at most, got one nested too "
        "deeply to be kept as JSON text"
    )


@pytest.mark.parametrize("depth", range(900, 1040, 7))
def test_a_deeply_nested_value_is_kept_as_text_or_fails_its_answer(depth: int) -> None:
    value = "[" * depth + "]" * depth
    body = f'[{{"index":"101","value":{value},"timestamp":"2026-12-04T10:00:00Z"}}]'

    result = outcome(body.encode(), BLOCK, {})

    if result[0] == "malformed":
        assert result[1].startswith("expected ")
    else:
        assert result[1][0]["value_text"] == value


@pytest.mark.parametrize(
    ("odd_point", "unrequested", "unreadable"),
    [
        (b'{"index":"102","value":2.5}', 0, 1),
        (b'{"value":2.5,' + AT_TEN + b"}", 1, 0),
        (b'{"index":"102","value":2.5,"timestamp":null}', 0, 1),
        (b'{"index":null,"value":2.5,' + AT_TEN + b"}", 1, 0),
    ],
)
def test_a_point_without_an_index_or_time_is_dropped_as_a_null_one_is(
    odd_point: bytes, unrequested: int, unreadable: int
) -> None:
    good = [
        b'{"index":"101","value":1.5,' + AT_TEN + b"}",
        b'{"index":"103","value":3.5,' + AT_TEN + b"}",
    ]
    body = b"[" + b",".join([good[0], odd_point, good[1]]) + b"]"

    decoded = decode(body, FLOAT_TYPES)

    assert decoded.batch.column("index").to_pylist() == ["101", "103"]
    assert decoded.batch.column("value_float").to_pylist() == [1.5, 3.5]
    assert (decoded.dropped_unrequested, decoded.dropped_unreadable) == (
        unrequested,
        unreadable,
    )
