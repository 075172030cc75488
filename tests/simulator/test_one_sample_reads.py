"""A signal that reads one sample per window computes that sample alone, and gets
the same points as when every sample is computed (property tests)."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerp_async.simulator import SimulatorSettings, demo_tenant
from powerp_async.simulator._grid import RequestGrid
from powerp_async.simulator._tenant import SignalSpec

from .conftest import ANCHOR_US

TENANT = demo_tenant(SimulatorSettings(anchor_us=ANCHOR_US))
POINTWISE = [s for s in TENANT.signals if s.model.sample_at is not None]
WINDOWS_US = (100_000, 1_000_000, 7_000_000, 60_000_000, 3_600_000_000)
CASES = settings(max_examples=150, deadline=None)
LATE_REACH_US = 2 * 3600 * 10**6
"""The late signals' data start within two hours before the anchor."""


def _every_sample(spec: SignalSpec) -> SignalSpec:
    return dataclasses.replace(
        spec, model=dataclasses.replace(spec.model, sample_at=None)
    )


def test_meters_and_held_states_are_read_sample_by_sample() -> None:
    # The energy meters of every database, read by their last value, and the
    # breakers and alarms that hold for blocks of time; among them ones with gaps
    # and ones whose data start late, so both ways of dropping samples are covered
    # below.
    kinds = Counter((s.data_type.value, s.unit_symbol) for s in POINTWISE)
    assert kinds == {("float", "kWh"): 139, ("string", None): 32, ("bool", None): 31}
    assert any(s.gap_key is not None for s in POINTWISE)
    assert any(s.first_data_us >= ANCHOR_US - LATE_REACH_US for s in POINTWISE)


@CASES
@given(
    st.sampled_from(POINTWISE),
    st.sampled_from(("first", "last")),
    st.one_of(st.integers(-40 * 24 * 3600, 0), st.integers(-3 * 3600, 0)),
    st.integers(1, 30 * 60 * 10),
    st.sampled_from(WINDOWS_US),
    st.sampled_from(("start", "stop")),
)
def test_reading_one_sample_per_window_changes_no_point(
    spec, aggregation, start_s, span_tenths, window_us, label
) -> None:
    start_us = ANCHOR_US + start_s * 1_000_000 + 37_000
    grid = RequestGrid(start_us, start_us + span_tenths * 100_000, window_us, label)

    sparse = TENANT.series(spec, aggregation, grid)
    full = TENANT.series(_every_sample(spec), aggregation, grid)

    assert sparse.windows.tolist() == full.windows.tolist()
    assert sparse.python_values() == full.python_values()


def _spans(start_us: int, count: int, length_us: int) -> list[tuple[int, int]]:
    return [
        (start_us + k * length_us, start_us + (k + 1) * length_us) for k in range(count)
    ]


@pytest.mark.parametrize("aggregation", ["first", "last"])
def test_meters_with_gaps_and_late_data_read_the_samples_they_have(aggregation) -> None:
    # Every meter with gaps over a day, and every meter whose data start late over
    # the hours around its start, in spans of 29 minutes at 1 s windows.
    gappy = [s for s in POINTWISE if s.gap_key is not None]
    late = [s for s in POINTWISE if s.first_data_us >= ANCHOR_US - LATE_REACH_US]
    day = _spans(ANCHOR_US - 24 * 3600 * 10**6, 50, 29 * 60 * 10**6)
    around_start = _spans(ANCHOR_US - 3 * 3600 * 10**6, 7, 29 * 60 * 10**6)
    cases = [(s, span) for s in gappy for span in day]
    cases += [(s, span) for s in late for span in around_start]

    clipped = 0
    for spec, (start_us, end_us) in cases:
        grid = RequestGrid(start_us, end_us, 1_000_000, "stop")
        sparse = TENANT.series(spec, aggregation, grid)
        full = TENANT.series(_every_sample(spec), aggregation, grid)

        assert sparse.windows.tolist() == full.windows.tolist()
        assert sparse.python_values() == full.python_values()
        clipped += 0 < len(full.windows) < grid.window_count

    # Spans where samples were dropped, but not all of them: the case at stake.
    assert clipped >= 100


def test_every_signal_read_sample_by_sample_agrees_with_all_its_samples() -> None:
    # Spans of 29 minutes a few days apart, over 40 days, at 10 s and 1 min windows.
    starts = [ANCHOR_US - day * 4 * 24 * 3600 * 10**6 - 7_300_000 for day in range(10)]
    compared = 0
    for spec in POINTWISE:
        for start_us, window_us in zip(
            starts, [10_000_000, 60_000_000] * 5, strict=True
        ):
            grid = RequestGrid(start_us, start_us + 29 * 60 * 10**6, window_us, "stop")
            for aggregation in ("first", "last"):
                sparse = TENANT.series(spec, aggregation, grid)
                full = TENANT.series(_every_sample(spec), aggregation, grid)
                assert sparse.windows.tolist() == full.windows.tolist()
                assert sparse.python_values() == full.python_values()
                compared += len(full.windows)

    assert compared == 383_742  # every window of those spans, less the gaps
