"""The compact set of committed blocks answers exactly as a set of their ids."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from powerp_async._export._units import UnitSet
from powerp_async.models import Block

unit_ids = st.binary(min_size=12, max_size=12).map(bytes.hex)


@settings(max_examples=200, deadline=None)
@given(
    added=st.lists(st.lists(unit_ids, max_size=30), max_size=4),
    asked=st.lists(unit_ids, max_size=30),
)
def test_membership_is_that_of_a_set(added, asked) -> None:
    units = UnitSet()
    reference: set[str] = set()
    for batch in added:  # added between questions too, as a replay does
        units.update(batch)
        reference.update(batch)
        assert len(units) == len(reference)

    questions = asked + list(reference)
    assert units.contains(questions).tolist() == [q in reference for q in questions]
    assert [q in units for q in questions] == [q in reference for q in questions]
    assert sorted(units) == sorted(reference)


def test_ids_ending_in_zero_bytes_stay_distinct() -> None:
    # Fixed-width byte strings pad with zeros; a key ending in zeros must not
    # collapse onto a shorter one or lose its end when read back.
    zeros = "00" * 12
    ending = "ab" + "00" * 11
    units = UnitSet([zeros, ending])

    assert (len(units), sorted(units)) == (2, sorted([zeros, ending]))
    assert units.contains([zeros, ending, "ab" * 12]).tolist() == [True, True, False]


def test_block_unit_ids_are_taken_and_other_text_refused() -> None:
    block = Block(1, "mean", ("1", "2"), 0, 60_000_000, 1_000_000)
    units = UnitSet([block.unit_id])

    assert block.unit_id in units
    assert 42 not in units
    assert repr(units) == "<UnitSet of 1 units>"
    for wrong in ("abc", "not hex, though 24 long!", "ab" * 13, "ab " * 8, 5):
        with pytest.raises(ValueError, match="expected a unit id of 24 hex digits"):
            units.update(["cd" * 12, wrong])
    assert list(units) == [block.unit_id]


def test_an_empty_set_holds_nothing() -> None:
    assert UnitSet().contains(["ab" * 12]).tolist() == [False]
    assert len(UnitSet()) == 0


def test_a_resume_plans_exactly_the_blocks_not_committed(monkeypatch) -> None:
    from datetime import UTC, datetime

    from powerp_async._export import _open
    from powerp_async.models import Measurement
    from powerp_async.planning import TimeRange, plan_blocks

    monkeypatch.setattr(_open, "_PENDING_BATCH", 3)  # many batches, one cut short
    signals = [Measurement(1 + n % 2, str(n)) for n in range(25)]
    start = datetime(2026, 12, 4, 10, tzinfo=UTC)
    span = TimeRange.snap(start, start.replace(hour=12), 1_000_000)
    planned = list(plan_blocks(signals, span, block_size=4))
    done = UnitSet(b.unit_id for n, b in enumerate(planned) if n % 3 != 1)
    opened = _open.OpenExport(None, signals, done, span, 4, len(planned), 0)  # type: ignore[arg-type]

    pending = list(opened.pending())

    assert pending == [b for n, b in enumerate(planned) if n % 3 == 1]
    assert len(planned) == 5 * (4 + 3)  # slices times blocks of 13 and 12 signals
    assert len(pending) == 12
