"""The planner: groups, blocks of at most 20, slices on the window grid under 30 min."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerp_async._time import to_epoch_us
from powerp_async.errors import ConfigurationError
from powerp_async.models import (
    MAX_QUERY_SPAN_US,
    MAX_SIGNALS_PER_QUERY,
    Block,
    DataType,
    Measurement,
)
from powerp_async.planning import (
    TimeRange,
    group_signals,
    max_slice_us,
    plan_blocks,
    plan_totals,
    time_slices,
)

S = 1_000_000
T0 = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


def signal(
    db: int, index: str, agg: str | None = "mean", **extra: object
) -> Measurement:
    return Measurement(database_id=db, index=index, default_agg=agg, **extra)  # type: ignore[arg-type]


def test_groups_by_database_and_aggregation_with_last_as_default() -> None:
    signals = [
        signal(1, "2", "mean"),
        signal(1, "1", None),
        signal(2, "5", "mean"),
        signal(1, "3", "mean"),
        signal(1, "1", None),  # listed twice: planned once
        signal(1, "2", "max"),  # another aggregation: planned in its own group too
    ]

    groups = group_signals(signals)

    assert {key: [m.index for m in members] for key, members in groups.items()} == {
        (1, "last"): ["1"],
        (1, "max"): ["2"],
        (1, "mean"): ["2", "3"],
        (2, "mean"): ["5"],
    }


def test_group_keeps_data_types_together_so_blocks_are_homogeneous() -> None:
    kinds = [DataType.FLOAT, DataType.STRING] * 3
    signals = [signal(1, str(n), data_type=k) for n, k in enumerate(kinds)]

    members = group_signals(signals)[(1, "mean")]

    assert [m.index for m in members] == ["0", "2", "4", "1", "3", "5"]


def test_two_hours_at_one_second_makes_five_even_slices() -> None:
    span = TimeRange.snap(T0, T0 + timedelta(hours=2), S)

    slices = list(time_slices(span))

    assert slices == [
        (to_epoch_us(T0) + n * 1440 * S, to_epoch_us(T0) + (n + 1) * 1440 * S)
        for n in range(5)
    ]


def test_a_window_that_does_not_divide_thirty_minutes_is_never_split() -> None:
    window = 7 * S
    span = TimeRange.snap(T0, T0 + timedelta(hours=1), window)

    slices = list(time_slices(span))

    assert span.start_us % window == 0
    assert all(start % window == 0 and end % window == 0 for start, end in slices)
    assert all(end - start < MAX_QUERY_SPAN_US for start, end in slices)
    assert slices[0][0] == span.start_us
    assert slices[-1][1] == span.end_us
    assert max_slice_us(window) == 257 * window  # 1,799 s is the most under 30 min


def test_range_snaps_both_ends_down_to_whole_windows() -> None:
    start = T0 + timedelta(seconds=3, microseconds=250_000)
    end = T0 + timedelta(minutes=1, seconds=9)

    span = TimeRange.snap(start, end, 5 * S)

    assert span.start_us == to_epoch_us(T0)
    assert span.end_us == to_epoch_us(T0 + timedelta(seconds=65))
    assert span.window_count == 13


def test_naive_times_are_utc() -> None:
    naive = TimeRange.snap(datetime(2026, 12, 4, 10), datetime(2026, 12, 4, 11), S)

    assert naive.start_us == to_epoch_us(T0)


@pytest.mark.parametrize(
    ("start", "end", "window", "message"),
    [
        (T0, T0, S, "end must be after start"),
        (T0, T0 - timedelta(seconds=1), S, "end must be after start"),
        (
            T0 + timedelta(seconds=1),
            T0 + timedelta(seconds=2),
            60 * S,
            "no whole window",
        ),
        (  # no range is wide enough for the window: that is what to change
            T0,
            T0 + timedelta(minutes=10),
            86_400 * S,
            "window 1d is too long",
        ),
    ],
)
def test_bad_ranges_are_refused(
    start: datetime, end: datetime, window: int, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        TimeRange.snap(start, end, window)


def test_window_of_thirty_minutes_or_more_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="must be shorter than that"):
        max_slice_us(30 * 60 * S)


def test_blocks_are_fewest_and_even_and_slices_go_first() -> None:
    signals = [signal(1, str(n)) for n in range(45)]
    span = TimeRange.snap(T0, T0 + timedelta(hours=1), S)

    blocks = list(plan_blocks(signals, span, block_size=20))

    assert [len(b.indexes) for b in blocks] == [15, 15, 15] * 3
    assert [i for b in blocks[:3] for i in b.indexes] == [str(n) for n in range(45)]
    assert [b.start_us for b in blocks[:4]] == [span.start_us] * 3 + [
        blocks[3].start_us
    ]
    assert blocks[3].start_us == span.start_us + 1200 * S


@pytest.mark.parametrize(
    ("count", "block_size", "balanced", "filled"),
    [
        (41, 20, [14, 14, 13], [20, 20, 1]),
        (40, 20, [20, 20], [20, 20]),
        (7, 3, [3, 2, 2], [3, 3, 1]),
        (5, 1, [1] * 5, [1] * 5),
        (19, 20, [19], [19]),
    ],
)
def test_blocks_filled_in_order_as_older_exports_planned_them(
    count: int, block_size: int, balanced: list[int], filled: list[int]
) -> None:
    signals = [signal(1, str(n)) for n in range(count)]
    span = TimeRange.snap(T0, T0 + timedelta(minutes=10), S)

    even = list(plan_blocks(signals, span, block_size=block_size))
    in_order = list(plan_blocks(signals, span, block_size=block_size, balanced=False))

    assert [len(b.indexes) for b in even] == balanced
    assert [len(b.indexes) for b in in_order] == filled
    assert [i for b in even for i in b.indexes] == [str(n) for n in range(count)]
    assert [i for b in in_order for i in b.indexes] == [str(n) for n in range(count)]


def test_signals_before_their_first_data_point_are_left_out_of_a_slice() -> None:
    late = T0 + timedelta(minutes=30)
    signals = [signal(1, "1"), signal(1, "2", first_data_point=late)]
    span = TimeRange.snap(T0, T0 + timedelta(hours=1), S)

    blocks = list(plan_blocks(signals, span))

    assert [b.indexes for b in blocks] == [("1",), ("1", "2"), ("1", "2")]


def test_totals_match_the_plan_without_building_it() -> None:
    signals = [signal(d, str(n)) for d in (1, 2) for n in range(33)]
    signals.append(signal(1, "late", first_data_point=T0 + timedelta(minutes=50)))
    span = TimeRange.snap(T0, T0 + timedelta(hours=2), S)

    blocks = list(plan_blocks(signals, span, block_size=10))

    assert plan_totals(signals, span, block_size=10) == (
        len(blocks),
        sum(b.max_points for b in blocks),
    )


def test_unit_ids_are_stable_and_distinct() -> None:
    signals = [signal(1, str(n)) for n in range(30)]
    span = TimeRange.snap(T0, T0 + timedelta(hours=1), S)

    first = [b.unit_id for b in plan_blocks(signals, span)]
    again = [b.unit_id for b in plan_blocks(signals, span)]

    assert first == again
    assert len(set(first)) == len(first)


@st.composite
def any_signals(draw: st.DrawFn) -> list[Measurement]:
    """Signals of a few databases and aggregations, some repeated or starting late."""
    count = draw(st.integers(1, 70))
    signals = []
    for _ in range(count):
        first_s = draw(st.none() | st.integers(-3600, 8 * 3600))
        signals.append(
            signal(
                draw(st.integers(1, 3)),
                str(draw(st.integers(0, 90))),
                draw(st.sampled_from([None, "mean", "max"])),
                first_data_point=None
                if first_s is None
                else T0 + timedelta(seconds=first_s),
            )
        )
    return signals


WINDOWS_US = st.sampled_from([200_000, S, 7 * S, 60 * S, 90 * S, 1_799 * S]) | (
    st.integers(1, MAX_QUERY_SPAN_US - 1)
)


@settings(max_examples=300, deadline=None)
@given(
    signals=any_signals(),
    start_us=st.integers(0, 10**12),
    length_us=st.integers(1, 6 * 3600 * S),
    window_us=WINDOWS_US,
    block_size=st.integers(1, 20),
)
def test_every_signal_window_is_planned_exactly_once(
    signals: list[Measurement],
    start_us: int,
    length_us: int,
    window_us: int,
    block_size: int,
) -> None:
    start = T0 + timedelta(microseconds=start_us)
    end = start + timedelta(microseconds=length_us)
    if to_epoch_us(end) // window_us <= to_epoch_us(start) // window_us:
        return
    span = TimeRange.snap(start, end, window_us)
    blocks = list(plan_blocks(signals, span, block_size=block_size))

    for block in blocks:
        assert 1 <= len(block.indexes) <= min(block_size, MAX_SIGNALS_PER_QUERY)
        assert len(set(block.indexes)) == len(block.indexes)
        assert block.start_us % window_us == 0
        assert block.end_us % window_us == 0
        assert 0 < block.end_us - block.start_us < MAX_QUERY_SPAN_US
        assert span.start_us <= block.start_us < block.end_us <= span.end_us

    assert _coverage(blocks) == _expected_coverage(signals, span)
    points = sum(len(b.indexes) * b.window_count for b in blocks)
    assert plan_totals(signals, span, block_size=block_size) == (len(blocks), points)


def _coverage(blocks: list[Block]) -> dict[tuple[int, str, str], list[tuple[int, int]]]:
    """Each signal's planned ranges, joined where they touch; overlaps fail."""
    ranges: dict[tuple[int, str, str], list[tuple[int, int]]] = {}
    for block in sorted(blocks, key=lambda b: b.start_us):
        for index in block.indexes:
            key = (block.database_id, index, block.aggregation)
            joined = ranges.setdefault(key, [])
            if joined and joined[-1][1] == block.start_us:
                joined[-1] = (joined[-1][0], block.end_us)
            else:
                assert not joined or joined[-1][1] < block.start_us, f"{key} overlaps"
                joined.append((block.start_us, block.end_us))
    return ranges


def _expected_coverage(
    signals: list[Measurement], span: TimeRange
) -> dict[tuple[int, str, str], list[tuple[int, int]]]:
    """The whole range, from the first slice that ends after a signal's first point.

    A signal listed twice with one aggregation is planned once; with two, once each.
    """
    slices = list(time_slices(span))
    expected = {}
    seen = set()
    for m in signals:
        if (m.database_id, m.index, m.aggregation) in seen:
            continue
        seen.add((m.database_id, m.index, m.aggregation))
        first_us = to_epoch_us(m.first_data_point) if m.first_data_point else None
        live = [s for s in slices if first_us is None or s[1] > first_us]
        if live:
            expected[(m.database_id, m.index, m.aggregation)] = [
                (live[0][0], span.end_us)
            ]
    return expected


def test_local_times_across_a_daylight_saving_change_are_converted() -> None:
    from zoneinfo import ZoneInfo

    berlin = ZoneInfo("Europe/Berlin")
    # The night clocks went back: 02:00-03:00 local happened twice.
    start = datetime(2026, 10, 25, 1, 0, tzinfo=berlin)
    end = datetime(2026, 10, 25, 4, 0, tzinfo=berlin)

    span = TimeRange.snap(start, end, 60 * S)

    assert span.start_us == to_epoch_us(datetime(2026, 10, 24, 23, 0, tzinfo=UTC))
    assert span.end_us == to_epoch_us(datetime(2026, 10, 25, 3, 0, tzinfo=UTC))
    assert span.window_count == 4 * 60  # four real hours, not three


@given(
    windows=st.integers(min_value=1, max_value=20_000),
    window_s=st.sampled_from([1, 7, 60, 600]),
    after=st.integers(min_value=-5, max_value=30_000),
)
def test_slices_ending_by_a_time_are_skipped_on_the_same_grid(
    windows: int, window_s: int, after: int
) -> None:
    span = TimeRange(0, windows * window_s * 1_000_000, window_s * 1_000_000)
    after_us = after * window_s * 1_000_000 // 7

    skipped = list(time_slices(span, ending_after_us=after_us))

    assert skipped == [s for s in time_slices(span) if s[1] > after_us]


def test_a_range_from_the_year_one_is_planned_from_the_first_data() -> None:
    first = datetime(2023, 6, 1, tzinfo=UTC)
    signals = [Measurement(1, str(n), first_data_point=first) for n in range(3)]
    start = datetime(1, 1, 1, tzinfo=UTC)
    span = TimeRange.snap(start, first + timedelta(hours=1), S)

    blocks = list(plan_blocks(signals, span, block_size=20))

    # Some 35 million slices lie before the first point; none is stepped through.
    # The first block is the slice holding it, and the rest follow to the end.
    first_us = to_epoch_us(first)
    assert blocks[0].start_us <= first_us < blocks[0].end_us
    assert all(a.end_us == b.start_us for a, b in itertools.pairwise(blocks))
    assert blocks[-1].end_us == span.end_us
    assert {b.indexes for b in blocks} == {("0", "1", "2")}
    assert plan_totals(signals, span, block_size=20) == (
        len(blocks),
        3 * (span.end_us - blocks[0].start_us) // S,
    )


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"index": 7}, "Measurement.index: expected a non-empty string, got 7"),
        ({"index": ""}, "Measurement.index: expected a non-empty string, got ''"),
        (
            {"database_id": True},
            "Measurement.database_id: expected an integer, got True",
        ),
        ({"database_id": 1.0}, "Measurement.database_id: expected an integer, got 1.0"),
        (
            {"database_id": 2**64},
            "Measurement.database_id: expected an integer of 64 bits, got "
            "18446744073709551616",
        ),
        (
            {"data_type": "float"},
            "Measurement.data_type: expected a DataType or None, got 'float'",
        ),
        (
            {"first_data_point": "2023-06-01"},
            "Measurement.first_data_point: expected a datetime or None, got "
            "'2023-06-01'",
        ),
        (
            {"default_agg": 3},
            "Measurement.default_agg: expected a string or None, got 3",
        ),
    ],
)
def test_a_signal_built_by_hand_with_a_wrong_field_is_refused_naming_it(
    fields: dict, message: str
) -> None:
    given = {"database_id": 1, "index": "7", **fields}

    with pytest.raises(ConfigurationError) as caught:
        Measurement(**given)

    assert str(caught.value) == message
