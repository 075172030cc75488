"""Answers of packed queries put back into the planned blocks, each handed on once."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from powerp_async._assembly import Assembly, BlockResult
from powerp_async.control import Piece, Segment
from powerp_async.errors import BadRequestError, ServerError
from powerp_async.models import POINT_SCHEMA, Block

WINDOW_US = 1_000_000
FIRST = Block(3, "last", ("1", "2"), 0, 10 * WINDOW_US, WINDOW_US)
SECOND = Block(3, "last", ("1", "2"), 10 * WINDOW_US, 20 * WINDOW_US, WINDOW_US)


def piece(*parts: tuple[int, Block, int, int]) -> Piece:
    segments = tuple(
        Segment(serial, block, start * WINDOW_US, end * WINDOW_US)
        for serial, block, start, end in parts
    )
    query = Block(
        3,
        "last",
        ("1", "2"),
        segments[0].start_us,
        segments[-1].end_us,
        WINDOW_US,
    )
    return Piece(query, segments)


def points(*seconds: int) -> pa.RecordBatch:
    """A point of each signal at each of ``seconds``, its value the second."""
    rows = [
        {
            "database_id": 3,
            "index": index,
            "aggregation": "last",
            "timestamp": datetime.fromtimestamp(second, UTC),
            "value_float": float(second),
        }
        for index in ("1", "2")
        for second in seconds
    ]
    return pa.RecordBatch.from_pylist(rows, schema=POINT_SCHEMA)


def answer(query: Piece, *seconds: int) -> BlockResult:
    return BlockResult(query.query, points(*seconds))


def stamps(result: BlockResult) -> list[tuple[str, int]]:
    assert result.batch is not None
    rows = result.batch.to_pylist()
    return [(row["index"], int(row["timestamp"].timestamp())) for row in rows]


def opened() -> Assembly:
    assembly = Assembly()
    assembly.open(0, FIRST)
    assembly.open(1, SECOND)
    return assembly


@pytest.mark.parametrize(
    ("side", "boundary_goes_to"), [("stop", FIRST), ("start", SECOND)]
)
def test_a_point_on_the_boundary_goes_by_the_label_edge(side, boundary_goes_to) -> None:
    assembly = opened()
    head = piece((0, FIRST, 0, 6))
    span = piece((0, FIRST, 6, 10), (1, SECOND, 10, 14))
    tail = piece((1, SECOND, 14, 20))

    assert assembly.answered(head, answer(head, 5), side) == []
    done = assembly.answered(span, answer(span, 8, 10, 12), side)
    first = done[0]
    assert first.block == FIRST
    boundary = [("1", 10), ("2", 10)] if boundary_goes_to is FIRST else []
    assert sorted(stamps(first)) == sorted(
        [("1", 5), ("2", 5), ("1", 8), ("2", 8), *boundary]
    )

    (second,) = assembly.answered(tail, answer(tail, 16), side)
    boundary = [("1", 10), ("2", 10)] if boundary_goes_to is SECOND else []
    assert second.block == SECOND
    expected = [*boundary, ("1", 12), ("2", 12), ("1", 16), ("2", 16)]
    assert sorted(stamps(second)) == sorted(expected)


def test_a_block_is_handed_on_once_whole_whatever_the_order_of_answers() -> None:
    assembly = opened()
    pieces = [
        (piece((0, FIRST, 0, 4)), (0,)),
        (piece((0, FIRST, 4, 8)), (4,)),
        (piece((0, FIRST, 8, 10), (1, SECOND, 10, 12)), (8, 11)),
        (piece((1, SECOND, 12, 20)), (12,)),
    ]

    handed = []
    for number in (3, 1, 2, 0):
        query, seconds = pieces[number]
        handed.append(assembly.answered(query, answer(query, *seconds), "start"))

    second, first = handed[2][0], handed[3][0]
    assert [[result.block for result in done] for done in handed] == [
        [],
        [],
        [SECOND],
        [FIRST],
    ]
    assert assembly.abandon() == []
    # The parts in time order, as one query for the block would have listed them.
    assert stamps(first) == [("1", 0), ("2", 0), ("1", 4), ("2", 4), ("1", 8), ("2", 8)]
    assert stamps(second) == [("1", 11), ("2", 11), ("1", 12), ("2", 12)]


def test_blocks_waiting_for_answers_are_abandoned_when_a_run_ends() -> None:
    assembly = opened()
    head = piece((0, FIRST, 0, 10))
    assembly.answered(head, answer(head, 1), "stop")

    assert assembly.abandon() == [SECOND]
    assert assembly.abandon() == []


def test_a_failed_query_fails_every_block_it_covers_once_all_parts_answered() -> None:
    assembly = opened()
    head = piece((0, FIRST, 0, 6))
    span = piece((0, FIRST, 6, 10), (1, SECOND, 10, 14))
    tail = piece((1, SECOND, 14, 20))
    error = ServerError("the server answered 500", method="POST", url="u", status=500)

    assert assembly.answered(span, BlockResult(span.query, None, error), "stop") == []
    (first,) = assembly.answered(head, answer(head, 1), "stop")
    (second,) = assembly.answered(tail, answer(tail, 15), "stop")

    assert (first.block, first.batch, first.error) == (FIRST, None, error)
    assert (second.block, second.batch, second.error) == (SECOND, None, error)
    assert assembly.abandon() == []


def test_a_whole_block_is_handed_on_as_answered() -> None:
    assembly = opened()
    whole = piece((0, FIRST, 0, 10))
    result = answer(whole, 3)

    (done,) = assembly.answered(whole, result, None)

    assert done.block == FIRST
    assert done.batch is result.batch
    empty = piece((1, SECOND, 10, 20))
    (nothing,) = assembly.answered(empty, answer(empty), None)
    assert (nothing.block, nothing.batch.num_rows, nothing.ok) == (SECOND, 0, True)


def test_a_signal_refused_in_one_piece_is_left_out_of_the_whole_block() -> None:
    assembly = Assembly()
    assembly.open(0, FIRST)
    first, second = piece((0, FIRST, 0, 5)), piece((0, FIRST, 5, 10))
    refusal = BadRequestError("index 2 is retired", method="POST", url="u", status=400)
    only_first = Block(3, "last", ("1",), 0, 5 * WINDOW_US, WINDOW_US)
    refused_part = Block(3, "last", ("2",), 0, 5 * WINDOW_US, WINDOW_US)
    kept = points(1, 2).filter(pa.array([True, True, False, False]))
    answered = BlockResult(only_first, kept, refused=((refused_part, refusal),))

    assert assembly.answered(first, answered, "stop") == []
    (result,) = assembly.answered(second, answer(second, 6, 7), "stop")

    # The refused signal's points of the second piece are left out: its whole
    # block is owed, and fetched again, once.
    assert stamps(result) == [("1", 1), ("1", 2), ("1", 6), ("1", 7)]
    assert result.refused == ((replace(FIRST, indexes=("2",)), refusal),)
    assert result.kept_block == replace(FIRST, indexes=("1",))
    assert result.ok
