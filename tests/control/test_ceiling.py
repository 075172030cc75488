"""The known limit: pinned down by an episode, refined by those that agree."""

from __future__ import annotations

import pytest

from powerp_async.control._ceiling import KnownCeiling


def test_an_episode_that_pins_the_limit_down_makes_it_known() -> None:
    ceiling = KnownCeiling()

    # Admitted within 10 % of the rate refused: the estimate is the lower of the
    # rate admitted and 2.5 % below the rate refused.
    assert ceiling.learn(99.0, 90.0, 100.0) == pytest.approx(97.5)
    assert repr(ceiling) == "<KnownCeiling 97.5 req/s>"
    ceiling.forget()
    assert ceiling.learn(96.0, 90.0, 100.0) == pytest.approx(96.0)


def test_an_episode_that_climbed_fast_pins_nothing_down() -> None:
    ceiling = KnownCeiling()

    # 80 admitted over the horizon against 100 refused: the horizon lagged behind
    # a fast climb, or the limit moved.
    assert ceiling.learn(80.0, 70.0, 100.0) is None
    assert repr(ceiling) == "<KnownCeiling unknown>"


def test_a_supposed_limit_that_agrees_is_averaged_in() -> None:
    ceiling = KnownCeiling()
    ceiling.suppose(50.0)

    assert ceiling.rate is None
    # 48 pinned down (within 10 % of the 50 refused), within 5 % of the guess.
    assert ceiling.learn(48.0, 45.0, 50.0) == pytest.approx(49.0)
    ceiling.suppose(60.0)
    assert ceiling.learn(48.0, 45.0, 50.0) == pytest.approx(48.0)


def test_an_agreeing_episode_refines_the_known_limit() -> None:
    ceiling = KnownCeiling()
    ceiling.learn(96.0, 90.0, 100.0)

    # Estimated at 0.975 x 102 = 99.45, agreeing with 96: halfway towards it.
    assert ceiling.learn(101.0, 99.0, 102.0) == pytest.approx((96.0 + 99.45) / 2)


def test_near_a_known_limit_the_rate_since_the_last_caps_a_late_refusal() -> None:
    ceiling = KnownCeiling()
    ceiling.learn(96.0, 90.0, 100.0)

    # A large burst let the rate climb to 106 before the 429, and 104 were admitted
    # over the horizon, but 98 since the last: at most 2.5 % above those.
    assert ceiling.learn(104.0, 98.0, 106.0) == pytest.approx((96.0 + 100.45) / 2)


@pytest.mark.parametrize(("recent", "throttled"), [(60.0, 100.0), (0.0, 100.0)])
def test_an_episode_that_disagrees_makes_the_limit_unknown(
    recent: float, throttled: float
) -> None:
    ceiling = KnownCeiling()
    ceiling.learn(96.0, 90.0, 100.0)

    assert ceiling.learn(recent, recent, throttled) is None
    assert ceiling.rate is None


def test_a_noisy_horizon_defers_to_a_cycle_that_admitted_the_known_limit() -> None:
    ceiling = KnownCeiling()
    ceiling.learn(4.9, 4.8, 5.0)
    known = ceiling.rate
    assert known == pytest.approx(4.875)

    # At 5 req/s the horizon holds five sends, and one held up reads 4.5, too far
    # below the 5.1 refused; the 20 s since the last refusal admitted 4.9, which
    # agrees with the limit known: it stands in for the horizon.
    assert ceiling.learn(4.5, 4.9, 5.1) == pytest.approx((known + 4.9) / 2)


def test_a_noisy_horizon_without_a_cycle_at_the_known_limit_forgets_it() -> None:
    ceiling = KnownCeiling()
    ceiling.learn(4.9, 4.8, 5.0)

    assert ceiling.learn(4.5, 4.5, 5.1) is None


def test_a_refusal_below_the_known_limit_after_a_cycle_at_it_keeps_it() -> None:
    ceiling = KnownCeiling()
    ceiling.learn(4.9, 4.8, 5.0)
    known = ceiling.rate

    # Refused at 4.8 after a cycle that admitted 4.9: a send that arrived early at
    # a bucket of one token. Taken in, it would lower the limit to 4.85.
    assert ceiling.learn(4.8, 4.9, 4.8) == pytest.approx(known)
    # Refused at 4.8 after a cycle that admitted only 4.8: a lower limit.
    assert ceiling.learn(4.8, 4.8, 4.8) == pytest.approx((known + 0.975 * 4.8) / 2)


def test_a_moved_limit_pinned_down_is_known_at_once() -> None:
    ceiling = KnownCeiling()
    ceiling.learn(96.0, 90.0, 100.0)

    assert ceiling.learn(49.0, 49.0, 50.0) == pytest.approx(48.75)


def test_forgetting_drops_the_guess_too() -> None:
    ceiling = KnownCeiling()
    ceiling.suppose(50.0)
    ceiling.forget()

    assert ceiling.learn(48.0, 45.0, 50.0) == pytest.approx(48.0)
