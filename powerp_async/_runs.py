"""Runs of points of one signal, so that an answer is looked up and parsed per run.

A server sends a block's points grouped by signal, each signal's windows in order,
and all its signals over the same windows: twenty runs whose timestamp texts are the
same, but for a missing window here and there. So rather than look up the index of
every point, the decoder looks up each run's index once; and rather than parse every
timestamp, it parses the texts of the longest run once, for every run whose texts
are those texts or their beginning, and parses only a run that differs on its own.
Both shortcuts compare the texts themselves, so they give exactly what looking up and
parsing every point gives. An answer sent in another order (window by window, say)
has about as many runs as points: past a few runs per signal, or at an index that is
no string, the decoder goes its general way.
"""

from __future__ import annotations

import itertools
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

__all__ = ["IndexRuns", "index_runs", "shared_texts"]

_MOST_RUNS_PER_SIGNAL: Final = 4
"""More runs than this per signal asked for: the answer is not grouped by signal."""

PositionArray = npt.NDArray[np.intp]


class IndexRuns(NamedTuple):
    """The runs of equal indexes, in the order sent: each one's index and length."""

    keys: list[str]
    lengths: list[int]


def index_runs(indexes: list[Any], signals: int) -> IndexRuns | None:
    """The runs of equal index strings in ``indexes``; ``None`` past a few runs per
    signal, at an index that is not a string, or where halving finds no run end."""
    most = _MOST_RUNS_PER_SIGNAL * signals
    keys: list[str] = []
    lengths: list[int] = []
    start = 0
    while start < len(indexes):
        key = indexes[start]
        if type(key) is not str or len(keys) == most:
            return None

        end = _run_end(indexes, start, key)
        if end is None:
            return None

        keys.append(key)
        lengths.append(end - start)
        start = end

    return IndexRuns(keys, lengths)


def _run_end(indexes: list[Any], start: int, key: str) -> int | None:
    """Where the run of ``key`` that begins at ``start`` ends, or ``None`` when
    halving cannot tell (``key`` comes back further on).

    The end is found by halving, as if ``key`` filled one stretch and never came
    back, and then checked: a slice holding ``key`` alone, followed by another index
    or by the end. Only ``key``, a string, is compared with the points, so no nested
    array is ever compared with another.
    """
    low, high = start + 1, len(indexes)
    while low < high:
        middle = (low + high) // 2
        if indexes[middle] == key:
            low = middle + 1
        else:
            high = middle

    if low > start + 1 and indexes[start + 1] != key:
        return None  # halving ran past a key that comes back, as window by window

    return low if indexes[start:low].count(key) == low - start else None


def shared_texts(
    texts: list[Any], lengths: list[int]
) -> tuple[list[str], PositionArray] | None:
    """The texts of runs of ``lengths`` worth parsing, and where each point's text is
    among them; ``None`` if the longest run holds anything but strings.

    The longest run's texts come first; each run whose texts are those, or their
    beginning, points into them, and every other run's texts follow in turn.
    """
    if not lengths:
        return None

    starts = list(itertools.accumulate(lengths, initial=0))
    longest = max(range(len(lengths)), key=lengths.__getitem__)
    template = texts[starts[longest] : starts[longest + 1]]
    if set(map(type, template)) != {str}:
        return None  # comparing strings alone never recurses into nested arrays

    worth_parsing = list(template)
    in_template = np.arange(len(template), dtype=np.intp)
    positions: list[PositionArray] = []
    for start, length in zip(starts[:-1], lengths, strict=True):
        run = texts[start : start + length]
        if run == (template if length == len(template) else template[:length]):
            positions.append(in_template[:length])
            continue

        first = len(worth_parsing)
        positions.append(np.arange(first, first + length, dtype=np.intp))
        worth_parsing += run

    return worth_parsing, np.concatenate(positions)
