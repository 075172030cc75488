"""Queries packed across planned blocks: full pieces, rests carried, nothing lost."""

from __future__ import annotations

import itertools
from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from powerp_async.control import Packer, Piece, SizeMemory
from powerp_async.models import Block

WINDOW_US = 1_000_000
SLICE = 1_799
SIGNALS = tuple(str(number) for number in range(20))


def block(slice_number: int = 0, signals: int = 20, aggregation: str = "last") -> Block:
    start_us = slice_number * SLICE * WINDOW_US
    return Block(
        3,
        aggregation,
        SIGNALS[:signals],
        start_us,
        start_us + SLICE * WINDOW_US,
        WINDOW_US,
    )


def knowing(fitting_windows: int, *, signals: int = 20, **options: int) -> SizeMemory:
    """A memory that knows ``fitting_windows`` of ``signals`` fit, one more do not."""
    memory = SizeMemory(**options)
    for aggregation in ("last", "sum"):
        refused = Block(3, aggregation, SIGNALS[:signals], 0, 0, WINDOW_US)
        memory.on_refused(_windows(refused, fitting_windows + 1))
        memory.on_accepted(_windows(refused, fitting_windows))
    return memory


def _windows(base: Block, windows: int) -> Block:
    return Block(
        base.database_id,
        base.aggregation,
        base.indexes,
        0,
        windows * WINDOW_US,
        WINDOW_US,
    )


def spans(pieces: list[Piece]) -> list[tuple[int, int, list[tuple[int, int, int]]]]:
    """Each piece as (start, end, [(serial, start, end) of its segments]), in s."""
    return [
        (
            piece.query.start_us // WINDOW_US,
            piece.query.end_us // WINDOW_US,
            [
                (s.serial, s.start_us // WINDOW_US, s.end_us // WINDOW_US)
                for s in piece.segments
            ],
        )
        for piece in pieces
    ]


def test_the_short_rest_is_carried_onto_the_next_block_of_the_same_signals() -> None:
    packer = Packer(knowing(400))

    first = packer.take(0, block(0), may_span=True)
    other = packer.take(1, block(0, aggregation="sum", signals=4), may_span=True)
    second = packer.take(2, block(1), may_span=True)
    last = packer.flush()

    assert spans(first) == [
        (0, 400, [(0, 0, 400)]),
        (400, 800, [(0, 400, 800)]),
        (800, 1200, [(0, 800, 1200)]),
        (1200, 1600, [(0, 1200, 1600)]),
    ]
    # Four signals of 1,799 windows fit in one query: that block goes whole.
    assert [piece.query for piece in other] == [block(0, aggregation="sum", signals=4)]
    assert not other[0].packed
    assert spans(second) == [
        (1600, 2000, [(0, 1600, 1799), (2, 1799, 2000)]),
        (2000, 2400, [(2, 2000, 2400)]),
        (2400, 2800, [(2, 2400, 2800)]),
        (2800, 3200, [(2, 2800, 3200)]),
    ]
    assert spans(last) == [(3200, 3598, [(2, 3200, 3598)])]
    assert all(piece.packed for piece in first + second + last)
    # Nine queries where the two blocks cut apart would need five each.
    assert [p.query.window_count for p in first + second + last] == [400] * 8 + [398]


def test_a_rest_no_later_block_continues_is_sent_alone() -> None:
    packer = Packer(knowing(500))
    packer.take(0, block(0), may_span=True)

    assert packer.stale(block(1).start_us) == []
    assert packer.carried_points == block(0).max_points
    assert spans(packer.stale(block(2).start_us)) == [(1500, 1799, [(0, 1500, 1799)])]
    assert (packer.carried_points, packer.flush()) == (0, [])


def test_rests_are_sent_when_their_blocks_would_keep_the_next_one_waiting() -> None:
    packer = Packer(knowing(500))
    packer.take(0, block(0), may_span=True)
    packer.take(1, block(0, aggregation="sum"), may_span=True)

    assert packer.make_room(block(1).max_points, 3 * block(0).max_points) == []
    sent = packer.make_room(block(1).max_points, 2 * block(0).max_points)

    # The older rest goes first; one gone leaves room for the next block.
    assert [(p.query.aggregation, p.query.window_count) for p in sent] == [
        ("last", 299)
    ]
    assert packer.carried_points == block(0).max_points


def test_a_rest_is_not_carried_onto_other_signals() -> None:
    packer = Packer(knowing(500))
    packer.take(0, block(0), may_span=True)
    fewer = packer.take(1, block(1, signals=19), may_span=True)

    # 10,000 points are 526 windows of 19 signals; the rest of 20 signals waits.
    assert spans(fewer) == [
        (1799, 2325, [(1, 1799, 2325)]),
        (2325, 2851, [(1, 2325, 2851)]),
        (2851, 3377, [(1, 2851, 3377)]),
    ]
    assert spans(packer.stale(block(2).start_us)) == [(1500, 1799, [(0, 1500, 1799)])]
    assert spans(packer.flush()) == [(3377, 3598, [(1, 3377, 3598)])]


def test_blocks_go_whole_until_a_size_and_the_label_edge_are_known() -> None:
    unknown = Packer(SizeMemory())
    halving = SizeMemory()
    halving.on_refused(block())
    known = Packer(knowing(500))

    for packer, may_span in ((unknown, True), (Packer(halving), True), (known, False)):
        pieces = packer.take(0, block(), may_span=may_span)
        assert [(piece.query, piece.packed) for piece in pieces] == [(block(), False)]
        assert packer.flush() == []


def test_a_block_off_the_window_grid_goes_whole() -> None:
    # A query sent as given, 0.3 s into a window: cut here a whole number of windows
    # from its start, every piece would be off the grid.
    unaligned = Block(3, "last", SIGNALS, 300_000, 900_300_000, WINDOW_US)
    packer = Packer(knowing(100))

    pieces = packer.take(0, unaligned, may_span=True)

    assert [(piece.query, piece.packed) for piece in pieces] == [(unaligned, False)]
    assert packer.flush() == []


def test_a_due_try_of_a_larger_size_is_the_first_piece() -> None:
    memory = SizeMemory(bisect_every=1)
    refused = Block(3, "last", SIGNALS, 0, 600 * WINDOW_US, WINDOW_US)
    memory.on_refused(refused)
    memory.on_accepted(_windows(refused, 300))
    packer = Packer(memory)

    pieces = packer.take(0, block(), may_span=True)

    # Halfway between 300 and 600 windows of 20 signals: 450, then 300 each.
    assert [piece.query.window_count for piece in pieces] == [450, 300, 300, 300, 300]
    assert spans(packer.flush()) == [(1650, 1799, [(0, 1650, 1799)])]


def test_a_try_above_the_refused_size_is_marked_so_it_is_not_cut() -> None:
    memory = knowing(500, probe_every=1)
    packer = Packer(memory)

    pieces = packer.take(0, block(), may_span=True)

    # A quarter above the 500 windows known to fit, though 501 were refused.
    assert [piece.query.window_count for piece in pieces] == [625, 500, 500]
    assert not memory.too_large(pieces[0].query)
    # Another query as large, not a try, would be cut before it left.
    later_us = SLICE * WINDOW_US
    same_size = Block(
        3, "last", SIGNALS, later_us, later_us + 625 * WINDOW_US, WINDOW_US
    )
    assert memory.too_large(same_size)


@settings(max_examples=150, deadline=None)
@given(
    signals=st.integers(1, 20),
    slice_windows=st.integers(1, SLICE),
    slices=st.integers(1, 5),
    fitting_windows=st.integers(1, 4_000),
    others=st.lists(st.integers(0, 4), max_size=6),
)
def test_pieces_cover_every_block_once_within_the_limits(
    signals: int,
    slice_windows: int,
    slices: int,
    fitting_windows: int,
    others: list[int],
) -> None:
    # No tries of larger sizes here: the limit is found and tries are far apart.
    memory = knowing(fitting_windows, signals=signals, probe_every=10_000)
    packer = Packer(memory)
    plan: list[Block] = []
    pieces: list[Piece] = []
    for number in range(slices):
        start_us = number * slice_windows * WINDOW_US
        end_us = start_us + slice_windows * WINDOW_US
        plan.append(Block(3, "last", SIGNALS[:signals], start_us, end_us, WINDOW_US))
        # Other blocks of the same slice, of other signals, come between.
        for extra in range(others[number] if number < len(others) else 0):
            indexes = (f"x{extra}",)
            plan.append(Block(3, "last", indexes, start_us, end_us, WINDOW_US))

    for serial, planned in enumerate(plan):
        pieces += packer.stale(planned.start_us)
        pieces += packer.take(serial, planned, may_span=True)
    pieces += packer.flush()

    covered: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for piece in pieces:
        query, segments = piece.query, piece.segments
        assert 1 <= len(segments) <= 2
        assert (query.start_us, query.end_us) == (
            segments[0].start_us,
            segments[-1].end_us,
        )
        assert all(a.end_us == b.start_us for a, b in itertools.pairwise(segments))
        assert all(s.block.indexes == query.indexes for s in segments)
        assert query.window_count <= SLICE
        assert (query.end_us - query.start_us) % WINDOW_US == 0
        if piece.packed:
            assert query.max_points <= fitting_windows * signals
        for segment in segments:
            covered[segment.serial].append((segment.start_us, segment.end_us))

    for serial, planned in enumerate(plan):
        parts = sorted(covered[serial])
        assert parts[0][0] == planned.start_us
        assert parts[-1][1] == planned.end_us
        assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))

    per_query = min(fitting_windows, SLICE)
    if per_query < slice_windows:
        # Packed: as few queries as the windows of these signals need at that size.
        ours = [p for p in pieces if p.query.indexes == SIGNALS[:signals]]
        assert len(ours) == -(-slices * slice_windows // per_query)
