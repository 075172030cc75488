"""The integer shortcut of a hashed draw compared with a chance gives what the
floats give, at every chance and at the edges of the unit interval."""

from __future__ import annotations

import numpy as np
import pytest

from powerp_async.simulator._hashing import hashed_below, hashed_unit, mix64

COUNTERS = np.arange(-50_000, 250_000, dtype=np.int64)


@pytest.mark.parametrize(
    "chance", [-0.5, 0.0, 2.0**-53, 1e-6, 0.002, 0.1, 0.5, 1 - 2.0**-53, 1.0, 3.0]
)
def test_a_draw_below_a_chance_is_the_same_as_with_floats(chance: float) -> None:
    key = mix64(7, "events")

    below = hashed_below(key, COUNTERS, chance)

    expected = hashed_unit(key, COUNTERS) < chance
    assert below.dtype == np.bool_
    assert below.tolist() == expected.tolist()
    assert int(below.sum()) == int(expected.sum())


def test_the_shortcut_sees_the_last_bit_of_a_draw() -> None:
    # A chance just above a drawn unit counts it, one just at it does not.
    key = mix64(3, "edge")
    units = hashed_unit(key, COUNTERS[:1000])
    for unit in units[:50].tolist():
        above, at = np.nextafter(unit, 2.0), unit
        assert hashed_below(key, COUNTERS[:1000], above).sum() == (units < above).sum()
        assert hashed_below(key, COUNTERS[:1000], at).sum() == (units < at).sum()
