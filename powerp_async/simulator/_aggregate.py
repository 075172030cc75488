"""Flux aggregations over the raw samples of each window, in bulk.

Raw samples arrive as integers: floats quantised to their signal's resolution, ints as
they are, booleans as 0 and 1, strings as ranks in their sorted vocabulary. Integer
arithmetic keeps ``sum`` exact and makes ``min``, ``max``, ``first`` and ``last`` raw
samples themselves, so ``min <= first, last, mean, median <= max`` holds after rounding.
The samples of window ``i`` are ``values[first[i]:first[i + 1]]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ._hashing import FloatArray, IntArray

NumberArray = npt.NDArray[np.int64] | npt.NDArray[np.floating[Any]]

AVERAGING: Final = frozenset({"mean", "median"})
"""Aggregations whose result is a float even over integer samples."""

NUMERIC_ONLY: Final = frozenset({"mean", "median", "sum"})
"""Aggregations that mean nothing over booleans or strings."""

ONE_SAMPLE: Final = frozenset({"first", "last"})
"""Aggregations whose result is one raw sample of the window."""


def aggregate(values: IntArray, first: IntArray, aggregation: str) -> NumberArray:
    """One result per window: integers, except a float mean and median.

    ``aggregation`` must be one of the Flux names in ``models.AGGREGATIONS``.
    """
    counts = sample_counts(first, len(values))
    return _BY_NAME[aggregation](values, first, counts)


def sample_counts(first: IntArray, total: int) -> IntArray:
    """How many of ``total`` samples each window holds, from its first's offset."""
    # As np.diff(first, append=total), without its overhead of some 30 us a call,
    # which once per signal of every request added up.
    counts: IntArray = np.empty_like(first)
    np.subtract(first[1:], first[:-1], out=counts[:-1])
    counts[-1:] = total - first[-1:]
    return counts


def _count(values: IntArray, first: IntArray, counts: IntArray) -> IntArray:
    return counts


def _first(values: IntArray, first: IntArray, counts: IntArray) -> IntArray:
    return values[first]


def _last(values: IntArray, first: IntArray, counts: IntArray) -> IntArray:
    last: IntArray = first + counts - 1
    return values[last]


def _min(values: IntArray, first: IntArray, counts: IntArray) -> IntArray:
    return np.minimum.reduceat(values, first)


def _max(values: IntArray, first: IntArray, counts: IntArray) -> IntArray:
    return np.maximum.reduceat(values, first)


def _sum(values: IntArray, first: IntArray, counts: IntArray) -> IntArray:
    return np.add.reduceat(values, first)


def _mean(values: IntArray, first: IntArray, counts: IntArray) -> FloatArray:
    return np.add.reduceat(values, first) / counts


def _median(values: IntArray, first: IntArray, counts: IntArray) -> FloatArray:
    """The middle sample, or the mean of the two middle ones, of each window.

    Windows are sorted in groups of equal size, as rows of one matrix each; a request
    has few distinct window sizes (whole windows, two clipped edges, gap edges).
    """
    medians: FloatArray = np.empty(len(first), dtype=np.float64)
    for size in np.unique(counts).tolist():
        picked = np.flatnonzero(counts == size)
        rows = values[first[picked, None] + np.arange(size)]
        rows.sort(axis=1)
        medians[picked] = (rows[:, (size - 1) // 2] + rows[:, size // 2]) / 2

    return medians


_Aggregator = Callable[[IntArray, IntArray, IntArray], NumberArray]
_BY_NAME: Final[dict[str, _Aggregator]] = {
    "count": _count,
    "first": _first,
    "last": _last,
    "min": _min,
    "max": _max,
    "sum": _sum,
    "mean": _mean,
    "median": _median,
}
