"""Query sizes: what a 413 taught is applied to later blocks, and probed upward."""

from __future__ import annotations

import itertools

import pytest

from powerp_async.control import SizeMemory, cut_in_count, cut_in_time, cut_to_fit
from powerp_async.control._sizes import BORROW_EVERY, SLOW_PROBE_FACTOR
from powerp_async.models import Block

WINDOW_US = 1_000_000
SIGNALS = tuple(str(number) for number in range(20))


def block(signals: int = 20, windows: int = 1799, aggregation: str = "last") -> Block:
    return Block(3, aggregation, SIGNALS[:signals], 0, windows * WINDOW_US, WINDOW_US)


def shapes(pieces: list[Block]) -> list[tuple[int, int]]:
    return [(len(piece.indexes), piece.window_count) for piece in pieces]


def test_blocks_stay_whole_until_a_refusal() -> None:
    memory = SizeMemory()
    memory.on_accepted(block())

    assert memory.pieces(block()) == [block()]
    assert memory.fitting_points(block()) is None


def test_a_refusal_halves_until_a_size_is_accepted() -> None:
    memory = SizeMemory()
    memory.on_refused(block())

    assert memory.fitting_points(block()) is None
    assert shapes(memory.pieces(block())) == [(20, 900), (20, 899)]


def test_later_blocks_are_cut_in_time_to_the_accepted_size() -> None:
    memory = SizeMemory()
    memory.on_refused(block())
    memory.on_refused(block(windows=900))
    memory.on_accepted(block(windows=450))

    # 20 signals of 450 windows fit: four pieces, every one with all 20 signals.
    assert shapes(memory.pieces(block())) == [
        (20, 450),
        (20, 450),
        (20, 450),
        (20, 449),
    ]
    assert shapes(memory.pieces(block(signals=9))) == [(9, 900), (9, 899)]
    assert memory.pieces(block(signals=5)) == [block(signals=5)]


def test_pieces_cover_the_block_exactly() -> None:
    memory = SizeMemory()
    memory.on_refused(block(windows=2))
    pieces = memory.pieces(block())

    assert pieces[0].start_us == 0
    assert pieces[-1].end_us == 1799 * WINDOW_US
    assert all(a.end_us == b.start_us for a, b in itertools.pairwise(pieces))
    assert sum(piece.max_points for piece in pieces) == 20 * 1799


def test_groups_are_remembered_apart() -> None:
    memory = SizeMemory()
    memory.on_refused(block(aggregation="sum"))

    assert memory.pieces(block(aggregation="last")) == [block()]
    assert len(memory.pieces(block(aggregation="sum"))) == 2


def test_a_probe_tries_one_piece_fewer_now_and_then() -> None:
    memory = SizeMemory(probe_every=3)
    memory.on_refused(block(windows=900))
    for _ in range(3):
        memory.on_accepted(block(windows=450))

    assert shapes(memory.pieces(block())) == [(20, 600), (20, 600), (20, 599)]
    # The probe is spent: the next block is cut to the known size again.
    assert len(memory.pieces(block())) == 4


def test_an_accepted_probe_raises_the_size() -> None:
    memory = SizeMemory()
    memory.on_refused(block(windows=900))
    memory.on_accepted(block(windows=450))
    memory.on_accepted(block(windows=900))

    assert shapes(memory.pieces(block())) == [(20, 900), (20, 899)]


def test_a_lowered_limit_forgets_what_fitted() -> None:
    memory = SizeMemory()
    memory.on_refused(block(windows=900))
    memory.on_accepted(block(windows=450))
    memory.on_refused(block(windows=300))

    assert memory.fitting_points(block()) is None
    # Halving again from the new refusal: 6,000 points refused, 3,000 per piece.
    assert len(memory.pieces(block())) == 12


def test_signals_are_cut_only_when_one_window_of_them_is_too_large() -> None:
    # 20 signals over 4 windows, at most 5 points: halved to 10, then to 5 signals,
    # and each of those cut into single windows.
    assert shapes(cut_to_fit(block(windows=4), 5)) == [(5, 1)] * 16
    assert shapes(cut_to_fit(block(windows=4), 40)) == [(20, 2), (20, 2)]


def test_cut_in_time_needs_enough_windows() -> None:
    assert cut_in_time(block(windows=3), 4) is None
    assert cut_in_time(block(windows=3), 1) is None
    assert shapes(cut_in_time(block(windows=3), 3) or []) == [(20, 1)] * 3


def test_an_unaligned_block_is_cut_on_the_window_grid_and_keeps_its_edges() -> None:
    # 0.3 s into a window to 0.6 s into another: 9 windows touched, partial at both
    # ends, for 8 whole seconds of range.
    unaligned = Block(3, "last", SIGNALS, 5_300_000, 13_600_000, WINDOW_US)

    pieces = cut_in_time(unaligned, 3) or []

    assert unaligned.window_count == 9
    assert [(p.start_us, p.end_us) for p in pieces] == [
        (5_300_000, 8_000_000),
        (8_000_000, 11_000_000),
        (11_000_000, 13_600_000),
    ]
    assert [p.window_count for p in pieces] == [3, 3, 3]


def test_a_block_shorter_than_a_window_touches_one() -> None:
    assert Block(3, "last", SIGNALS, 5_300_000, 5_600_000, WINDOW_US).window_count == 1
    assert Block(3, "last", SIGNALS, 5_600_000, 6_300_000, WINDOW_US).window_count == 2


def test_cut_in_count_halves_signals_when_windows_run_out() -> None:
    assert shapes(cut_in_count(block(windows=2), 8)) == [(5, 1)] * 8
    assert shapes(cut_in_count(block(signals=1, windows=2), 8)) == [(1, 1)] * 2
    assert cut_in_count(block(), 1) == [block()]


def test_a_refusal_of_a_small_piece_halves_it_again() -> None:
    memory = SizeMemory()
    memory.on_refused(block())
    memory.on_refused(block(windows=900))

    assert shapes(memory.pieces(block(windows=900))) == [(20, 450), (20, 450)]
    assert shapes(memory.pieces(block())) == [(20, 450)] * 3 + [(20, 449)]


def test_probe_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="probe_every must be at least 1, got 0"):
        SizeMemory(probe_every=0)


def test_a_block_as_large_as_a_refused_one_is_too_large_unless_a_probe() -> None:
    memory = SizeMemory(probe_every=1)
    assert not memory.too_large(block())

    memory.on_refused(block(windows=451))
    memory.on_accepted(block(windows=450))
    assert memory.too_large(block(windows=451))
    assert not memory.too_large(block(windows=450))

    # The probe sends 900 windows whole, though more than 451 were refused.
    probes = memory.pieces(block(windows=900))
    assert probes == [block(windows=900)]
    assert not memory.too_large(probes[0])
    memory.on_refused(probes[0])
    assert memory.too_large(probes[0])


def test_the_other_half_of_a_refused_half_is_cut_before_it_goes_out() -> None:
    memory = SizeMemory()
    memory.on_refused(block())
    first, other = memory.pieces(block())
    assert shapes([first, other]) == [(20, 900), (20, 899)]
    assert not memory.too_large(other)

    # 899 windows are fewer than the 900 refused, but no more likely to be taken.
    memory.on_refused(first)
    assert memory.too_large(other)
    assert shapes(memory.pieces(other)) == [(20, 450), (20, 449)]
    # Halves of the refused half are sent: one is a window over half its size.
    halves = memory.pieces(first)
    assert shapes(halves) == [(20, 450), (20, 450)]
    assert not any(memory.too_large(half) for half in halves)

    # Once a size is known to fit, anything larger is cut to it.
    memory.on_accepted(halves[0])
    assert memory.too_large(block(windows=451))
    assert not memory.too_large(block(windows=450))


def test_after_a_timeout_blocks_are_cut_in_quarters() -> None:
    memory = SizeMemory()
    memory.on_refused(block(), slow=True)

    quarters = memory.pieces(block())
    assert shapes(quarters) == [(20, 450), (20, 450), (20, 450), (20, 449)]
    assert not any(memory.too_large(quarter) for quarter in quarters)
    assert memory.too_large(block(windows=900))
    assert memory.packing_points(block()) is None

    # A quarter that fits is known to fit: packing goes on from it, not from a half.
    memory.on_accepted(quarters[0])
    assert memory.packing_points(block()) == 9_000
    assert shapes(memory.pieces(block(windows=900))) == [(20, 450), (20, 450)]

    # A 413 later does not make the group's steps down any cheaper.
    memory.on_refused(block(windows=600))
    assert shapes(memory.pieces(block(windows=900))) == [(20, 450), (20, 450)]


def test_a_block_that_cannot_be_cut_is_never_held_back() -> None:
    memory = SizeMemory()
    memory.on_refused(block(signals=1, windows=1))
    assert not memory.too_large(block(signals=1, windows=1))


def test_packing_needs_a_size_known_to_fit() -> None:
    memory = SizeMemory()
    assert memory.packing_points(block()) is None

    memory.on_refused(block())
    assert memory.packing_points(block()) is None  # halving: blocks go whole

    memory.on_accepted(block(windows=900))
    assert memory.packing_points(block()) == 18_000
    assert memory.packing_points(block(aggregation="sum")) is None


def test_tries_go_halfway_to_the_refused_size_now_and_then() -> None:
    memory = SizeMemory(bisect_every=2)
    memory.on_refused(block(windows=900))
    memory.on_accepted(block(windows=450))

    assert memory.probe_points(block()) is None  # one accepted, two needed
    memory.on_accepted(block(windows=450))
    assert memory.probe_points(block()) == 13_500
    assert memory.probe_points(block()) is None  # counted as made

    memory.on_refused(block(windows=675))
    memory.on_accepted(block(windows=450))
    memory.on_accepted(block(windows=450))
    assert memory.probe_points(block()) == 11_250


def test_a_try_must_give_the_signals_more_windows() -> None:
    memory = SizeMemory(bisect_every=1)
    memory.on_refused(block(signals=10, windows=3))
    memory.on_accepted(block(signals=10, windows=2))

    # Halfway between 20 and 30 points is 25: no more windows of 10 signals, so
    # the try waits for a block of fewer signals.
    assert memory.probe_points(block(signals=10)) is None
    assert memory.probe_points(block(signals=5)) == 25
    assert memory.probe_points(block(signals=5)) is None


def test_a_size_another_aggregation_took_is_tried_soon() -> None:
    memory = SizeMemory()
    memory.on_refused(block(aggregation="sum", windows=900))
    memory.on_accepted(block(aggregation="sum", windows=450))
    memory.on_refused(block(windows=1000))
    memory.on_accepted(block(windows=499))
    for _ in range(3):
        memory.on_accepted(block(aggregation="sum", windows=450))

    # Four accepted queries of its own so far, five needed.
    assert memory.probe_points(block(aggregation="sum")) is None
    memory.on_accepted(block(aggregation="sum", windows=450))
    assert memory.probe_points(block(aggregation="sum")) == 9_980


def test_halfway_stops_below_what_another_aggregation_was_refused() -> None:
    memory = SizeMemory(bisect_every=1)
    memory.on_refused(block(aggregation="sum", windows=600))
    memory.on_refused(block(windows=1000))
    memory.on_accepted(block(windows=400))

    assert memory.probe_points(block()) == 10_000  # halfway to 600 windows, not 1000

    # Once that bound is reached, this aggregation's own refusal bounds the tries.
    memory.on_accepted(block(windows=599))
    assert memory.probe_points(block()) == (11_980 + 20_000) // 2


def test_once_found_a_larger_size_is_tried_rarely_and_less_after_refusals() -> None:
    memory = SizeMemory(probe_every=2)
    memory.on_refused(block(windows=501))
    memory.on_accepted(block(windows=500))
    memory.on_accepted(block(windows=500))

    assert memory.probe_points(block()) == 12_500
    memory.probing(block(windows=625))
    memory.on_refused(block(windows=625))
    for _ in range(3):
        memory.on_accepted(block(windows=500))

    # Refused: the next try waits twice as long.
    assert memory.probe_points(block()) is None
    memory.on_accepted(block(windows=500))
    assert memory.probe_points(block()) == 12_500

    memory.probing(block(windows=625))
    memory.on_accepted(block(windows=625))  # the limit was raised: found again
    memory.on_accepted(block(windows=625))
    # The count starts at the try's answer: two more since then.
    assert memory.probe_points(block()) is None
    memory.on_accepted(block(windows=625))
    assert memory.probe_points(block()) == 15_625


def with_a_try_out() -> SizeMemory:
    """Refused at 32,000 points, 16,000 fit: a try of 24,000 is out, and answers of
    other queries since would have made another due."""
    memory = SizeMemory(bisect_every=1)
    memory.on_refused(block(windows=1600))
    memory.on_accepted(block(windows=800))
    assert memory.probe_points(block()) == 24_000
    memory.probing(block(windows=1200))
    memory.on_accepted(block(windows=800))
    memory.on_accepted(block(windows=800))
    return memory


def test_a_group_has_one_try_out_at_a_time() -> None:
    memory = with_a_try_out()
    assert memory.probe_points(block()) is None

    # Another group of the database is not held back by it.
    memory.on_refused(block(windows=1200, aggregation="sum"))
    for _ in range(BORROW_EVERY):
        memory.on_accepted(block(windows=600, aggregation="sum"))
    assert memory.probe_points(block(aggregation="sum")) == 16_000

    # Settled, by a refusal here, the count starts again from its answer.
    memory.on_refused(block(windows=1200))
    assert memory.probe_points(block()) is None
    memory.on_accepted(block(windows=800))
    assert memory.probe_points(block()) == 20_000


def test_a_try_that_failed_for_another_reason_no_longer_counts_as_out() -> None:
    memory = with_a_try_out()
    memory.on_failed(block(windows=1200))
    assert memory.probe_points(block()) == 24_000


def test_no_try_is_made_once_the_plan_has_no_more_blocks() -> None:
    memory = SizeMemory(probe_every=1, bisect_every=1)
    memory.on_refused(block(windows=1600))
    memory.on_accepted(block(windows=800))
    memory.may_try = False
    assert memory.probe_points(block()) is None

    memory.on_refused(block(windows=801))  # found: pieces would try one fewer
    memory.on_accepted(block(windows=800))
    assert shapes(memory.pieces(block(windows=1600))) == [(20, 800), (20, 800)]
    memory.may_try = True
    assert shapes(memory.pieces(block(windows=1600))) == [(20, 1600)]


def test_runs_sharing_a_memory_try_until_the_last_has_taken_its_plan() -> None:
    memory = SizeMemory(probe_every=1, bisect_every=1)
    memory.on_refused(block(windows=1600))
    memory.on_accepted(block(windows=800))

    with memory.planning():
        with memory.planning():
            assert memory.may_try
        # One run took its plan; the other still takes blocks, and tries.
        assert memory.may_try
        assert memory.probe_points(block()) == 24_000
    assert not memory.may_try


def test_where_refusals_are_timeouts_tries_above_the_limit_are_rarer() -> None:
    memory = SizeMemory(probe_every=2)
    memory.on_refused(block(windows=501), slow=True)
    memory.on_accepted(block(windows=500))
    for _ in range(2 * SLOW_PROBE_FACTOR - 2):
        memory.on_accepted(block(windows=500))
    assert memory.probe_points(block()) is None

    memory.on_accepted(block(windows=500))
    assert memory.probe_points(block()) == 12_500


def test_a_refusal_of_a_known_size_does_not_delay_the_next_try() -> None:
    memory = SizeMemory(bisect_every=2)
    memory.on_refused(block(windows=900))
    memory.on_accepted(block(windows=450))
    # The other half of the first cut, sent before its twin was refused.
    memory.on_refused(block(windows=899))
    memory.on_accepted(block(windows=450))

    assert memory.probe_points(block()) == (9_000 + 17_980) // 2

    memory.on_refused(block(windows=600))  # news: the tries wait again
    memory.on_accepted(block(windows=450))
    assert memory.probe_points(block()) is None


def test_no_upward_try_puts_back_signals_a_window_of_which_was_refused() -> None:
    memory = SizeMemory(probe_every=1)
    memory.on_refused(block(windows=2))
    memory.on_accepted(block(signals=20, windows=1))
    memory.on_refused(block(windows=1))
    for _ in range(10):
        memory.on_accepted(block(signals=10, windows=1))

    # One window of the 20 signals is over the limit: no try sends 20 again.
    assert {len(piece.indexes) for piece in memory.pieces(block(windows=60))} == {10}


def test_a_limit_of_signals_is_learnt_and_parts_go_over_their_whole_range() -> None:
    memory = SizeMemory()
    for windows in (1799, 900, 450, 1):
        memory.on_refused(block(windows=windows))
    memory.on_accepted(block(signals=10, windows=1))

    # Ten signals over one window were taken where twenty were not: the limit is of
    # signals, and what was learnt of points is forgotten.
    assert shapes(memory.pieces(block())) == [(10, 1799), (10, 1799)]
    assert shapes(memory.pieces(block(signals=15))) == [(8, 1799), (7, 1799)]
    assert memory.pieces(block(signals=10)) == [block(signals=10)]
    assert memory.too_large(block(signals=11))
    assert not memory.too_large(block(signals=10))

    # A points limit met by the parts is learnt on top, by time.
    memory.on_refused(block(signals=10))
    memory.on_accepted(block(signals=10, windows=900))
    assert shapes(memory.pieces(block())) == [
        (10, 900),
        (10, 899),
        (10, 900),
        (10, 899),
    ]
