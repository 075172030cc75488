"""Aggregations agree with each other and with the window grid (property tests)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from powerp_async._time import parse_wire
from powerp_async.simulator import SimulatorSettings, demo_tenant

from .conftest import ANCHOR_US

TENANT = demo_tenant(SimulatorSettings(anchor_us=ANCHOR_US))
DAY_START_US = parse_wire("2026-12-04T00:00:00Z")
WINDOWS_US = (200_000, 1_000_000, 7_000_000, 60_000_000, 300_000_000)
NUMERIC = [s for s in TENANT.signals if s.data_type.value in ("float", "int")]
WORDS_AND_FLAGS = [s for s in TENANT.signals if s.data_type.value in ("bool", "string")]
ORDERED = ("first", "last", "min", "max", "count")
CASES = settings(max_examples=60, deadline=None)

spans = st.tuples(
    st.integers(0, 24 * 3600 * 10**6 - 1), st.integers(1, 10 * 60 * 10**6)
)


def _by_aggregation(spec, aggregations, start_us, end_us, window_us):
    return {
        aggregation: dict(
            TENANT.points(
                spec.database_id, spec.index, aggregation, start_us, end_us, window_us
            )
        )
        for aggregation in aggregations
    }


@CASES
@given(st.sampled_from(NUMERIC), spans, st.sampled_from(WINDOWS_US))
def test_numeric_aggregations_are_consistent(spec, span, window_us) -> None:
    start_us = DAY_START_US + span[0]
    names = (*ORDERED, "mean", "median", "sum")
    found = _by_aggregation(spec, names, start_us, start_us + span[1], window_us)

    stamps = found["count"].keys()
    assert all(found[name].keys() == stamps for name in names)
    resolution = 10.0**-spec.decimals if spec.data_type.value == "float" else 0.01
    for stamp in stamps:
        low, high, count = (
            found["min"][stamp],
            found["max"][stamp],
            found["count"][stamp],
        )
        assert type(count) is int
        assert count > 0
        for name in ("first", "last", "mean", "median"):
            assert low <= found[name][stamp] <= high, (name, stamp)
        mean_gap = abs(found["sum"][stamp] / count - found["mean"][stamp])
        assert mean_gap <= resolution / 2 + 1e-9 * abs(found["sum"][stamp])


@CASES
@given(st.sampled_from(WORDS_AND_FLAGS), spans, st.sampled_from(WINDOWS_US))
def test_bools_and_strings_order_first_and_last_between_min_and_max(
    spec, span, window_us
) -> None:
    start_us = DAY_START_US + span[0]
    found = _by_aggregation(spec, ORDERED, start_us, start_us + span[1], window_us)

    for stamp, count in found["count"].items():
        assert type(count) is int
        assert count > 0
        for name in ("first", "last"):
            assert found["min"][stamp] <= found[name][stamp] <= found["max"][stamp]
        kind = bool if spec.data_type.value == "bool" else str
        assert {type(found[name][stamp]) for name in ("first", "min")} == {kind}


@CASES
@given(
    st.sampled_from(TENANT.signals),
    st.integers(0, 10**6),
    st.integers(1, 40),
    st.integers(1, 40),
    st.sampled_from(WINDOWS_US[:4]),
    st.sampled_from(("last", "count", "max")),
)
def test_splitting_on_the_grid_changes_no_point(
    spec, window_offset, first_windows, second_windows, window_us, aggregation
) -> None:
    start_us = (DAY_START_US // window_us + window_offset) * window_us
    cut_us = start_us + first_windows * window_us
    end_us = cut_us + second_windows * window_us

    def points(a: int, b: int) -> list[tuple[int, object]]:
        return TENANT.points(spec.database_id, spec.index, aggregation, a, b, window_us)

    assert points(start_us, cut_us) + points(cut_us, end_us) == points(start_us, end_us)


def test_count_is_the_number_of_10_hz_samples_in_the_clipped_window() -> None:
    start_us = parse_wire("2026-12-04T16:00:00.05Z")
    end_us = parse_wire("2026-12-04T16:00:02.95Z")

    points = TENANT.points(1, "1", "count", start_us, end_us, 1_000_000)

    assert points == [
        (parse_wire("2026-12-04T16:00:01Z"), 9),
        (parse_wire("2026-12-04T16:00:02Z"), 10),
        (end_us, 10),
    ]


def test_integer_signals_sum_to_integers_and_average_to_floats() -> None:
    start_us = parse_wire("2026-12-04T16:00:00Z")

    sums = TENANT.points(3, "9210", "sum", start_us, start_us + 10**7, 10**7)
    means = TENANT.points(3, "9210", "mean", start_us, start_us + 10**7, 10**7)

    # The tap stays at 7 for these 10 s: 100 samples of it.
    assert sums == [(start_us + 10**7, 700)]
    assert means == [(start_us + 10**7, 7.0)]
    assert (type(sums[0][1]), type(means[0][1])) == (int, float)
