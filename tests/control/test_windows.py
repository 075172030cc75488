"""Quota windows: guessed from the longest wait, then measured between resets."""

from __future__ import annotations

import pytest

from powerp_async.control._windows import QuotaWindows


@pytest.mark.parametrize(
    ("wait_s", "length_s"),
    [(2.0, 10.0), (7.6, 10.0), (12.0, 15.0), (45.0, 60.0), (5000.0, 5000.0)],
)
def test_one_wait_suggests_the_shortest_common_window_of_ten_seconds_or_more(
    wait_s: float, length_s: float
) -> None:
    windows = QuotaWindows()
    windows.on_reset(100.0, wait_s)

    assert windows.length_s == length_s


def test_resets_measure_the_window() -> None:
    windows = QuotaWindows()
    windows.on_reset(20.0, 7.6)
    # The same reset announced again, a little apart, measures nothing.
    windows.on_reset(20.3, 2.0)
    assert windows.length_s == 10.0

    # Two windows apart, then one: the shortest gap is the window.
    windows.on_reset(44.0, 3.0)
    assert windows.length_s == 24.0
    windows.on_reset(56.0, 8.0)
    assert windows.length_s == 12.0
    assert repr(windows) == "<QuotaWindows 12 s>"


def test_a_window_is_never_shorter_than_a_wait() -> None:
    windows = QuotaWindows()
    windows.on_reset(20.0, 2.0)
    windows.on_reset(21.0, 9.0)

    assert windows.length_s == 9.0
