"""Timeouts judged: a query too large for the server, or a server that is down."""

from __future__ import annotations

import pytest

from powerp_async.control import TimeoutJudge

FULL_POINTS = 20 * 1_799


def test_smaller_answers_meanwhile_mean_the_query_was_too_large() -> None:
    judge = TimeoutJudge(timeout_s=60.0)
    judge.on_answered(100.0, 9_000)
    judge.on_answered(130.0, 4_000)

    assert judge.too_large(160.0, sent_at=100.0, points=FULL_POINTS) is True
    assert judge.too_large(160.0, sent_at=100.0, points=9_000) is False
    assert judge.too_large(160.0, sent_at=100.0, points=8_000) is False


def test_a_quick_failure_looks_back_ten_seconds() -> None:
    judge = TimeoutJudge(timeout_s=1.0)
    judge.on_answered(100.0, 1_000)
    judge.on_answered(105.0, 500)

    # A 504 answered after 0.2 s: a query as large answered 9.9 s before it was bad
    # luck; one answered 10.1 s before is too old to speak for it.
    assert judge.too_large(109.9, sent_at=109.7, points=1_000) is False
    assert judge.too_large(110.1, sent_at=109.9, points=1_000) is True


def test_with_nothing_answered_lately_a_size_answered_before_means_down() -> None:
    judge = TimeoutJudge(timeout_s=5.0)
    judge.on_answered(0.0, 8_000)
    verdicts = [
        judge.too_large(100.0, sent_at=95.0, points=points)
        for points in (8_000, 8_001, 8_001, 2)
    ]

    # Larger than ever answered: bad luck once, too large when it happens again.
    assert verdicts == [False, False, True, False]


def test_before_any_answer_a_second_timeout_splits_down_to_an_eighth() -> None:
    judge = TimeoutJudge(timeout_s=60.0)
    sizes = [FULL_POINTS, FULL_POINTS, *(FULL_POINTS >> n for n in range(1, 5))]
    verdicts = [
        judge.too_large(60.0 * n, sent_at=60.0 * (n - 1), points=points)
        for n, points in enumerate(sizes, start=1)
    ]

    # The first 35,980 points are retried whole; then 35,980, 17,990 and 8,995 are
    # too large, and the floor is an eighth: 4,497.
    assert verdicts == [False, True, True, True, False, False]


def test_before_any_answer_a_smaller_query_unanswered_counts_as_a_first() -> None:
    judge = TimeoutJudge(timeout_s=2.0)
    # Groups of different sizes: 6 signals, then 17, both unanswered with nothing
    # answered at all. Two silent queries are not one piece of bad luck, whichever
    # was the larger.
    verdicts = [
        judge.too_large(2.0 + 0.25 * n, sent_at=0.25 * n, points=points)
        for n, points in enumerate((6 * 1_799, 17 * 1_799, 16 * 1_799))
    ]

    assert verdicts == [False, True, True]


def test_an_answer_makes_the_next_silence_a_first_again() -> None:
    judge = TimeoutJudge(timeout_s=2.0)
    assert judge.too_large(2.0, sent_at=0.0, points=FULL_POINTS) is False
    judge.on_answered(3.0, 1_000)

    # Long after, nothing answered lately: a query larger than any answered goes
    # unanswered. Bad luck once, as at the start; too large when it happens again.
    verdicts = [
        judge.too_large(100.0 + n, sent_at=98.0 + n, points=FULL_POINTS)
        for n in range(2)
    ]
    assert verdicts == [False, True]


def test_a_query_of_one_point_cannot_be_too_large() -> None:
    judge = TimeoutJudge(timeout_s=60.0)
    judge.on_answered(0.0, 1)

    assert judge.too_large(60.0, sent_at=0.0, points=1) is False
    assert judge.too_large(60.0, sent_at=0.0, points=2) is True


def test_a_quick_504_with_nothing_answered_is_a_fault() -> None:
    judge = TimeoutJudge(timeout_s=60.0)
    verdicts = [
        judge.too_large(100.0 + waited_s, sent_at=100.0, points=500, gateway=True)
        for waited_s in (0.1, 1.9, 2.0, 4.0)
    ]
    short = TimeoutJudge(timeout_s=2.0)
    short_verdicts = [
        short.too_large(100.0 + waited_s, sent_at=100.0, points=500, gateway=True)
        for waited_s in (0.4, 0.5, 0.5)
    ]

    # After 0.1 or 1.9 s a fault like any other 5xx; after 2 s a gateway that
    # waited and gave up, judged as a timeout: bad luck once, too large when
    # repeated. With a client timeout of 2 s, a quarter of it is waited enough.
    assert verdicts == [False, False, False, True]
    assert short_verdicts == [False, False, True]


def test_a_quick_504_among_smaller_answers_is_a_query_too_large() -> None:
    judge = TimeoutJudge(timeout_s=60.0)
    judge.on_answered(100.0, 250)

    assert judge.too_large(100.2, sent_at=100.1, points=500, gateway=True) is True


def test_old_answers_are_forgotten_beyond_the_horizon() -> None:
    judge = TimeoutJudge(timeout_s=20.0)
    judge.on_answered(0.0, 100)
    judge.on_answered(25.0, 50)

    assert repr(judge) == "<TimeoutJudge 1 recent answers, largest 100 points>"


def test_the_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_s must be above zero, got 0"):
        TimeoutJudge(timeout_s=0)
