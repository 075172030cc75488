"""Runs of one signal: finding them, and the timestamp texts they share."""

from __future__ import annotations

from typing import Any

import pytest

from powerp_async._runs import IndexRuns, index_runs, shared_texts


def runs_and_texts(
    texts: list[Any], lengths: list[int]
) -> tuple[list[str], list[int]] | None:
    shared = shared_texts(texts, lengths)
    return None if shared is None else (shared[0], shared[1].tolist())


@pytest.mark.parametrize(
    ("indexes", "expected"),
    [
        ([], IndexRuns([], [])),
        (["a"], IndexRuns(["a"], [1])),
        (["a", "a", "b", "b", "b", "c"], IndexRuns(["a", "b", "c"], [2, 3, 1])),
        (["c", "a", "a", "a"], IndexRuns(["c", "a"], [1, 3])),
        # A signal that comes back makes a run of its own where halving finds its
        # end, and none where halving runs past the other signal.
        (["a", "a", "b", "b", "a"], IndexRuns(["a", "b", "a"], [2, 2, 1])),
        (["a", "b", "a"], None),
    ],
)
def test_finds_the_runs_of_one_index(
    indexes: list[Any], expected: IndexRuns | None
) -> None:
    assert index_runs(indexes, signals=3) == expected


@pytest.mark.parametrize(
    "indexes",
    [
        [101, 101],
        ["a", "a", 101],
        ["a", [["a"]], [["a"]]],
        ["a", None],
        [12.5],
    ],
)
def test_an_index_that_is_no_string_ends_the_search(indexes: list[Any]) -> None:
    assert index_runs(indexes, signals=3) is None


def test_more_than_four_runs_per_signal_are_not_an_answer_grouped_by_signal() -> None:
    assert index_runs(list("abcd"), signals=1) == IndexRuns(list("abcd"), [1] * 4)
    assert index_runs(list("abcde"), signals=1) is None


def test_signals_sent_window_by_window_are_not_grouped() -> None:
    assert index_runs(["a", "b"] * 3, signals=2) is None


@pytest.mark.parametrize(
    ("texts", "lengths", "expected"),
    [
        (["t1", "t2", "t1", "t2"], [2, 2], (["t1", "t2"], [0, 1, 0, 1])),
        # A run missing its last windows shares the beginning of the longest.
        (
            ["t1", "t2", "t3", "t1", "t2"],
            [3, 2],
            (["t1", "t2", "t3"], [0, 1, 2, 0, 1]),
        ),
        # One missing a window in the middle is parsed on its own.
        (
            ["t1", "t2", "t3", "t1", "t3"],
            [3, 2],
            (["t1", "t2", "t3", "t1", "t3"], [0, 1, 2, 3, 4]),
        ),
        # The longest run is the one shared, wherever it comes.
        (
            ["t2", "t1", "t2", "t3", "t1", "t2", "t3"],
            [1, 3, 3],
            (["t1", "t2", "t3", "t2"], [3, 0, 1, 2, 0, 1, 2]),
        ),
        # Texts that spell one time in two ways are two texts.
        (
            ["10:00Z", "10:00+00:00"],
            [1, 1],
            (["10:00Z", "10:00+00:00"], [0, 1]),
        ),
        # Another run's odd text is left to the parser to refuse.
        (["t1", "t2", "t1", 5], [2, 2], (["t1", "t2", "t1", 5], [0, 1, 2, 3])),
    ],
)
def test_texts_repeating_the_longest_run_are_kept_once(
    texts: list[Any], lengths: list[int], expected: tuple[list[str], list[int]]
) -> None:
    assert runs_and_texts(texts, lengths) == expected


@pytest.mark.parametrize(
    ("texts", "lengths"),
    [([], []), (["t1", 5], [2]), ([[["t1"]], "t1"], [1, 1]), ([None], [1])],
)
def test_a_longest_run_holding_other_than_text_gives_nothing(
    texts: list[Any], lengths: list[int]
) -> None:
    assert shared_texts(texts, lengths) is None
