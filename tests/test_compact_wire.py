"""The compact reader: answers of the usual shape read straight into columns, and
every other body left to the general readers, which must then give the same."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final
from unittest import mock

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import powerp_async._decode as decode_module
from powerp_async._compact_wire import read_compact
from powerp_async._decode import decode_block
from powerp_async.errors import MalformedResponseError
from powerp_async.models import Block, DataType

from .helpers import comparable, nan_as_text

URL: Final = "http://127.0.0.1:8080/rt-api/api/v1/Query"
START_US: Final = 1_796_378_400_000_000  # 2026-12-04T10:00:00Z
SECOND_US: Final = 1_000_000
INDEXES: Final = ("101", "102", "10", "1010")
BLOCK: Final = Block(3, "mean", INDEXES, START_US, START_US + 20 * SECOND_US, SECOND_US)
TIMES: Final = [f"2026-12-04T10:00:{second:02d}Z" for second in range(21)]


def compact(points: Sequence[tuple[str, str, str]]) -> bytes:
    """An answer as servers write it, from (index, value token, timestamp text)."""
    return (
        "["
        + ",".join(
            f'{{"index":"{index}","value":{value},"timestamp":"{time}"}}'
            for index, value, time in points
        )
        + "]"
    ).encode()


def outcome(body: bytes, block: Block = BLOCK) -> tuple[Any, ...]:
    """The whole outcome of decoding ``body``: rows and drop counts, or the error."""
    try:
        floats = dict.fromkeys(block.indexes, DataType.FLOAT)
        decoded = decode_block(body, block, floats, url=URL)
    except MalformedResponseError as error:
        return ("malformed", str(error), error.excerpt)

    return comparable(decoded)


def general_outcome(body: bytes, block: Block = BLOCK) -> tuple[Any, ...]:
    with mock.patch.object(decode_module, "read_compact", return_value=None):
        return outcome(body, block)


# What it takes -----------------------------------------------------------------------


def test_reads_the_common_shape_into_columns() -> None:
    body = compact(
        [
            ("101", "1.5", TIMES[0]),
            ("101", "null", TIMES[1]),
            ("101", "-0", TIMES[2]),
            ("1010", "-0.0", TIMES[0]),
            ("1010", "2e3", TIMES[1]),
            ("10", "-12.25E-1", TIMES[5]),
        ]
    )

    columns = read_compact(body, INDEXES)

    assert columns is not None
    assert columns.codes.tolist() == [0, 0, 0, 3, 3, 2]
    assert columns.time_texts.to_pylist() == [TIMES[0], TIMES[1], TIMES[2], TIMES[5]]
    assert columns.time_positions.tolist() == [0, 1, 2, 0, 1, 3]
    floats = columns.floats.to_pylist()
    assert [nan_as_text(value) for value in floats] == [
        1.5,
        None,
        0.0,
        "-0.0",
        2000.0,
        -1.225,
    ]


def test_an_answer_of_the_simulators_shape_is_decoded_as_the_general_way_does() -> None:
    points = [
        (index, f"{(seconds * 7 + number) / 8}", TIMES[seconds])
        for number, index in enumerate(INDEXES)
        for seconds in range(number, 21)
    ]
    body = compact(points)

    assert read_compact(body, INDEXES) is not None
    floats = dict.fromkeys(INDEXES, DataType.FLOAT)
    decoded = decode_block(body, BLOCK, floats, url=URL)
    assert decoded.batch.num_rows == len(points)
    assert decoded.batch.column("value_float").to_pylist() == [
        float(value) for _, value, _ in points
    ]
    assert outcome(body) == general_outcome(body)


def test_an_index_longer_than_a_word_is_looked_up_by_its_text() -> None:
    indexes = ("signal-number-one", "signal-number-two")
    block = Block(3, "mean", indexes, START_US, START_US + 20 * SECOND_US, SECOND_US)
    body = compact(
        [("signal-number-two", "1", TIMES[0]), ("signal-number-one", "2", TIMES[0])]
    )

    columns = read_compact(body, indexes)

    assert columns is not None
    assert columns.codes.tolist() == [1, 0]
    assert outcome(body, block) == general_outcome(body, block)
    unasked = compact([("signal-number-six", "1", TIMES[0])])
    assert read_compact(unasked, indexes) is None


def test_an_index_asked_twice_is_known_by_its_first_place() -> None:
    columns = read_compact(compact([("102", "1", TIMES[0])]), ("101", "102", "102"))

    assert columns is not None
    assert columns.codes.tolist() == [1]


def test_a_run_whose_times_differ_has_them_parsed_apart() -> None:
    body = compact(
        [
            ("101", "1", TIMES[0]),
            ("101", "2", TIMES[1]),
            ("102", "3", TIMES[0]),
            ("102", "4", TIMES[3]),
            ("10", "5", TIMES[0]),
        ]
    )

    columns = read_compact(body, INDEXES)

    assert columns is not None
    assert columns.time_texts.to_pylist() == [TIMES[0], TIMES[1], TIMES[3]]
    assert columns.time_positions.tolist() == [0, 1, 0, 2, 0]
    assert outcome(body) == general_outcome(body)


def test_times_of_several_lengths_are_compared_too() -> None:
    texts = [TIMES[0], "2026-12-04T10:00:01.000Z", TIMES[0]]
    body = compact(
        [("101", "1", texts[0]), ("101", "2", texts[1]), ("102", "3", texts[2])]
    )

    columns = read_compact(body, INDEXES)

    assert columns is not None
    assert columns.time_texts.to_pylist() == texts[:2]
    assert columns.time_positions.tolist() == [0, 1, 0]
    assert outcome(body) == general_outcome(body)


# What it leaves to the general readers -----------------------------------------------


def one_point(value: str = "1.5", time: str = TIMES[0], index: str = "101") -> bytes:
    return compact([(index, value, time)])


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b"",
        b"[",
        b"]",
        one_point().replace(b",", b", "),
        b" " + one_point(),
        b'[{"value":1.5,"index":"101","timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":"101","value":1.5,"timestamp":"2026-12-04T10:00:00Z","q":1}]',
        b'[{"index":"101","timestamp":"2026-12-04T10:00:00Z"}]',
        b'[{"index":101,"value":1.5,"timestamp":"2026-12-04T10:00:00Z"}]',
        one_point(index="999"),
        one_point(index="1"),
        one_point(index="1010 "),
        one_point(index="\\u0031\\u0030\\u0031"),
        one_point(time="2026-12-04T10:00:00\\u005a"),
        one_point(time="2026-12-04T10:00:00Z,"),
        one_point().replace(b"}]", b"},]"),
        one_point() + b"," + one_point(),
        one_point()[:-1] + b",{}]",
        one_point()[:-2],
        *(
            one_point(value)
            for value in [
                '"1.5"',
                "true",
                "NaN",
                "Infinity",
                "-Infinity",
                "nan",
                "inf",
                "1.",
                ".5",
                "-.5",
                "01",
                "-01",
                "00",
                "+1",
                "1e",
                "1e+",
                "--1",
                "-",
                "",
                "1e400",
                "-1e400",
                "9007199254740993",
                "9007199254740992",
                "1e16",
                "[1]",
                "{}",
                "nul",
                "nulls",
                "0x10",
                "1_0",
            ]
        ),
    ],
)
def test_leaves_every_other_body_to_the_general_readers(body: bytes) -> None:
    assert read_compact(body, INDEXES) is None
    assert outcome(body) == general_outcome(body)


def test_a_body_with_a_backslash_anywhere_is_left_alone() -> None:
    body = compact([("101", "1", TIMES[0]), ("102", "2", "2026-12-04T10:00:00\\u005a")])

    assert read_compact(body, INDEXES) is None


def test_a_block_asking_for_an_index_json_would_escape_is_left_alone() -> None:
    assert read_compact(one_point(index="a,b"), ("a,b",)) is None
    assert read_compact(one_point(), ("101", 'say "hi"')) is None


# Properties --------------------------------------------------------------------------

digits = st.text("0123456789", min_size=1, max_size=4)
number_tokens = st.builds(
    lambda sign, whole, fraction, exponent: sign + whole + fraction + exponent,
    st.sampled_from(["", "", "-", "+", "--"]),
    st.sampled_from(["0", "00", "07", "", "1"]) | digits,
    st.sampled_from(["", "", "."]) | st.builds(lambda d: "." + d, digits),
    st.sampled_from(["", "", "e", "E+", "e-"])
    | st.builds(
        lambda e, s, d: e + s + d,
        st.sampled_from(["e", "E"]),
        st.sampled_from(["", "+", "-"]),
        digits,
    ),
)
"""Tokens built from the parts of a JSON number, some of them wrong."""
values = (
    st.floats(allow_nan=False, allow_infinity=False).map(repr)
    | st.integers(-(2**60), 2**60).map(str)
    | number_tokens
    | st.sampled_from(["null", "-0", "-0.0", "1e308", "2e-324", "true", '"x"'])
)
times = st.sampled_from(TIMES) | st.sampled_from(
    ["2026-12-04T10:00:00.5Z", "2026-12-04T09:59:59Z", "2026-12-04 10:00:01", "soon"]
)


@st.composite
def compact_bodies(draw: st.DrawFn) -> bytes:
    """Answers of the compact shape, signal after signal over shared windows, with
    now and then a wrong token, an index not asked for or a time of its own."""
    odd = draw(st.integers(0, 3)) == 0
    signals = st.sampled_from([*INDEXES, *["999", "1"] * odd])
    windows = sorted(draw(st.sets(st.sampled_from(TIMES), min_size=1, max_size=8)))
    points = []
    for index in draw(st.lists(signals, min_size=1, max_size=5)):
        run_windows = draw(st.sampled_from([windows, windows[: len(windows) // 2]]))
        for window in run_windows:
            value = draw(values if odd else st.floats(-1e9, 1e9).map(repr))
            time = draw(times) if odd and draw(st.booleans()) else window
            points.append((index, value, time))

    return compact(points)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(compact_bodies())
def test_the_compact_reader_gives_what_the_general_readers_give(body: bytes) -> None:
    event("taken" if read_compact(body, INDEXES) is not None else "left")

    assert outcome(body) == general_outcome(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(values)
def test_each_value_token_reads_as_the_general_readers_read_it(value: str) -> None:
    body = one_point(value)
    event("taken" if read_compact(body, INDEXES) is not None else "left")

    assert outcome(body) == general_outcome(body)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    compact_bodies(),
    st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=3)), max_size=3),
)
def test_a_damaged_body_is_never_read_otherwise_than_the_general_readers_read_it(
    body: bytes, damage: list[tuple[int, bytes]]
) -> None:
    for position, replacement in damage:
        at = position % (len(body) + 1)
        body = body[:at] + replacement + body[at + len(replacement) // 2 + 1 :]

    event("taken" if read_compact(body, INDEXES) is not None else "left")

    assert outcome(body) == general_outcome(body)


@pytest.mark.parametrize("replacement", [b"x", b",", b'"', b" ", b"0", b"}"])
def test_a_body_with_any_one_byte_changed_reads_as_the_general_readers_read_it(
    replacement: bytes,
) -> None:
    body = compact([("101", "1.5", TIMES[0]), ("102", "-2", TIMES[1])])
    for position in range(len(body)):
        changed = body[:position] + replacement + body[position + 1 :]

        assert outcome(changed) == general_outcome(changed), changed
