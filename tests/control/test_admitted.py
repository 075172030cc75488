"""Admitted sends: refusals and lost requests left out, known long before answers."""

from __future__ import annotations

import pytest

from powerp_async.control._admitted import AdmittedSends


def sent_every_tenth(until: int = 20) -> AdmittedSends:
    """Sends at 0.0, 0.1, ... up to ``(until - 1) / 10``."""
    admitted = AdmittedSends()
    for k in range(until):
        admitted.on_sent(k / 10)
    return admitted


def test_refused_and_lost_requests_are_not_admitted() -> None:
    admitted = sent_every_tenth()
    admitted.on_refused(1.502, 1.5)
    admitted.on_lost(1.6)

    # 1.0 to 1.9, less 1.5 and 1.6: eight sends.
    assert admitted.count(1.0, 1.95) == 8
    assert admitted.count(1.0, 1.5) == 5


def test_the_rate_comes_from_the_spacing_of_admitted_sends() -> None:
    admitted = sent_every_tenth()
    admitted.on_refused(1.502, 1.5)

    # Over (0.95, 1.9]: nine admitted sends from 1.0 to 1.9, 0.9 s end to end.
    assert admitted.rate(1.9, 0.95, 5) == pytest.approx(8 / 0.9)


def test_a_short_horizon_reaches_back_to_the_fewest_sends() -> None:
    admitted = sent_every_tenth()

    # 0.25 s holds 1.7, 1.8 and 1.9 only: widened to the last five, 1.5 to 1.9.
    assert admitted.rate(1.9, 0.25, 5) == pytest.approx(4 / 0.4)
    assert admitted.rate(1.9, 0.25, 0) == pytest.approx(2 / 0.2)


def test_fewer_than_two_admitted_sends_give_no_rate() -> None:
    admitted = sent_every_tenth(2)
    admitted.on_refused(0.102, 0.1)

    assert admitted.rate(1.0, 1.0, 5) == 0.0


def test_fates_are_known_a_few_refusal_times_back() -> None:
    admitted = AdmittedSends()

    # Before any refusal only the answers tell: the slowest one's time back.
    assert admitted.known_until(10.0, 0.5) == 9.5
    admitted.on_refused(10.004, 10.0)
    assert admitted.known_until(11.0, 0.5) == pytest.approx(11.0 - 0.02)
    admitted.on_refused(12.05, 12.0)
    assert admitted.known_until(13.0, 0.5) == pytest.approx(13.0 - 0.15)
    # Refusals as slow as the answers: the answers' edge again.
    admitted.on_refused(14.4, 14.0)
    assert admitted.known_until(15.0, 0.5) == 14.5


def test_old_sends_are_forgotten() -> None:
    admitted = AdmittedSends()
    admitted.on_sent(0.0)
    admitted.on_refused(0.002, 0.0)
    admitted.on_sent(30.0)
    admitted.on_sent(61.0)

    assert admitted.count(-1.0, 100.0) == 2
