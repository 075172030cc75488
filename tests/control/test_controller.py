"""Rate discovery: start-up growth, one cut per episode, cubic recovery, window mode."""

from __future__ import annotations

import math
import random

import pytest

from powerp_async.control import RateController, RateMode, RateSettings
from powerp_async.control._controller import (
    RECOVERY_KNEE_S,
    LatencyWindow,
)
from powerp_async.control._recovery import GUESS_KNEE_S
from powerp_async.errors import ConfigurationError


def send_at(controller: RateController, *times: float) -> None:
    for moment in times:
        controller.rate_at(moment)
        controller.on_sent(moment)


def send_paced(controller: RateController, start: float, end: float) -> float:
    """Send back to back at the controller's own rate; returns the next send time."""
    moment = start
    while moment < end:
        send_at(controller, moment)
        moment += 1 / controller.rate_at(moment)
    return moment


def answer(controller: RateController, sends: list[float], latency_s: float) -> None:
    for sent_at in sends:
        controller.on_success(sent_at + latency_s, latency_s)


def saturated(rate: int, until: float, latency_s: float) -> RateController:
    """A controller that sent ``rate`` req/s from 0, all answered by ``until``."""
    controller = RateController(RateSettings(initial_rate=rate))
    count = int((until - latency_s) * rate) + 1
    sends = [k / rate for k in range(count)]
    send_at(controller, *sends)
    answer(controller, sends, latency_s)
    return controller


def test_discovery_starts_at_four_requests_per_second_in_startup() -> None:
    controller = RateController()

    assert controller.rate_at(0.0) == 4.0
    assert controller.mode is RateMode.STARTUP
    assert controller.rtt_p90_s is None


def test_a_window_used_twice_over_doubles_the_rate() -> None:
    controller = RateController()
    # At 4 requests/s the first window lasts two sends' worth: half a second.
    send_at(controller, *(k / 8 for k in range(4)))

    assert controller.rate_at(0.49) == 4.0
    assert controller.rate_at(0.5) == 8.0


def test_growth_is_capped_at_one_and_a_half_times_the_rate_used() -> None:
    controller = RateController()
    send_at(controller, 0.0, 0.25)

    assert controller.rate_at(0.5) == 6.0


def test_an_app_limited_client_does_not_grow() -> None:
    controller = RateController()
    send_at(controller, 0.0, 0.5, 1.0, 1.5)

    assert controller.rate_at(2.0) == 4.0


def test_an_unused_window_restarts_at_the_next_send() -> None:
    controller = RateController()
    send_at(controller, 0.0, 0.25)
    # At 6 requests/s a window lasts a third of a second.
    send_at(controller, 10.0, 10.2)

    assert controller.rate_at(10.33) == 6.0
    assert controller.rate_at(10.34) == 9.0


def test_windows_shrink_to_a_quarter_second_at_higher_rates() -> None:
    controller = RateController(RateSettings(initial_rate=20.0))
    send_at(controller, *(k / 20 for k in range(5)))

    assert controller.rate_at(0.24) == 20.0
    assert controller.rate_at(0.25) == 30.0


def test_the_growth_window_spans_two_round_trips() -> None:
    controller = RateController()
    controller.on_success(0.0, 0.75)
    send_at(controller, *(k / 4 for k in range(6)))

    assert controller.rate_at(1.49) == 4.0
    assert controller.rate_at(1.5) == 6.0


def test_growth_stops_at_the_maximum_rate() -> None:
    controller = RateController(RateSettings(max_rate=5.0))
    send_at(controller, *(k / 8 for k in range(8)))

    assert controller.rate_at(1.0) == 5.0


def test_a_burst_of_in_flight_429s_is_one_cut() -> None:
    controller = saturated(32, until=2.0, latency_s=0.125)

    cuts = [controller.on_throttle(2.0, 1.9 + k / 1000, None) for k in range(20)]

    assert cuts == [True] + [False] * 19
    assert (controller.throttles, controller.cuts) == (20, 1)
    assert controller.mode is RateMode.RECOVERY
    # 32 accepted sends 1/32 s apart in the last complete second: 32 req/s.
    assert controller.rate_at(2.0) == pytest.approx(0.9 * 32)


def test_server_errors_count_as_accepted_when_a_cut_measures() -> None:
    controller = RateController(RateSettings(initial_rate=32))
    sends = [k / 32 for k in range(61)]
    send_at(controller, *sends)
    # Every fourth request failed with a 5xx: admitted all the same.
    answer(controller, [t for k, t in enumerate(sends) if k % 4], 0.125)
    for sent_at in sends[::4]:
        controller.on_server_error(sent_at + 0.125, sent_at)

    controller.on_throttle(2.0, 1.9, None)

    assert controller.rate_at(2.0) == pytest.approx(0.9 * 32)
    assert controller.accepted_total == 45


def test_a_429_for_a_request_sent_after_the_cut_cuts_again() -> None:
    controller = saturated(32, until=2.0, latency_s=0.125)
    controller.on_throttle(2.0, 1.95, None)

    assert controller.on_throttle(2.01, 2.0, None) is False
    assert controller.on_throttle(2.2, 2.1, None) is True
    assert controller.cuts == 2


def test_refusals_of_all_sent_before_the_retry_after_ran_out_are_one_episode() -> None:
    controller = saturated(32, until=2.0, latency_s=0.125)
    assert controller.on_throttle(2.0, 1.95, 1.0) is True

    # A fixed window used up refuses at once every request sent until its reset,
    # however slowly they leave: no news, no further cut.
    sends = [2.05, 2.1, 2.15, 2.9]
    send_at(controller, *sends)
    refused = [controller.on_throttle(t + 0.005, t, 1.0) for t in sends]

    # Past the Retry-After, a refusal is news again.
    send_at(controller, 3.05)
    assert refused == [False] * 4
    assert controller.on_throttle(3.055, 3.05, 1.0) is True
    assert controller.cuts == 2


def test_a_refusal_after_a_send_admitted_since_the_cut_cuts_again() -> None:
    controller = saturated(32, until=2.0, latency_s=0.125)
    controller.on_throttle(2.0, 1.95, 1.0)

    # A token bucket whose rate fell admits some requests at the new rate: the
    # 429s that follow say the cut fell short, Retry-After or not.
    send_at(controller, 2.05, 2.1, 2.15)
    assert controller.on_throttle(2.4, 2.15, 1.0) is True
    assert controller.cuts == 2


def test_a_cut_with_nothing_accepted_halves_the_rate() -> None:
    controller = RateController(RateSettings(initial_rate=10.0))
    send_at(controller, 0.0)
    controller.on_throttle(0.05, 0.0, None)

    assert controller.rate_at(0.05) == pytest.approx(0.9 * 5.0)


def test_few_answers_take_the_rate_of_the_latest_accepted_send() -> None:
    controller = RateController(RateSettings(initial_rate=8.0))
    sends = [k / 8 for k in range(8)]
    send_at(controller, *sends)
    answer(controller, sends[:7], 0.125)

    controller.on_throttle(0.9, 0.875, None)

    assert controller.rate_at(0.9) == pytest.approx(0.9 * 8.0)


def test_the_first_cut_takes_the_latest_accepted_rate_of_the_climb() -> None:
    controller = RateController(RateSettings(initial_rate=16.0))
    answer(controller, [0.0], 0.5)  # windows of 1 s, horizon 1.5 s
    sends = [k / 16 for k in range(16)] + [1 + k / 24 for k in range(24)]
    send_at(controller, *sends)
    assert controller.rate_at(1.5) == 24.0
    answer(controller, sends, 0.5)

    controller.on_throttle(2.0, 1.99, None)

    # Averaged over the horizon the climb from 16 to 24 would give about 21.3.
    assert controller.rate_at(2.0) == pytest.approx(0.9 * 24.0)


def test_recovery_follows_the_cubic_curve() -> None:
    controller = saturated(64, until=0.99, latency_s=0.125)
    controller.on_throttle(0.99, 0.98, None)
    knee = RECOVERY_KNEE_S
    w_max = 64.0

    send_paced(controller, 0.99, 0.99 + knee / 2)
    assert controller.rate_at(0.99 + knee / 2) == pytest.approx(w_max * 0.9875)

    send_paced(controller, 0.99 + knee / 2, 0.99 + knee)
    assert controller.rate_at(0.99 + knee) == pytest.approx(w_max)

    send_paced(controller, 0.99 + knee, 0.99 + 2 * knee)
    assert controller.rate_at(0.99 + 2 * knee) == pytest.approx(w_max * 1.1)

    # Probing on finds a limit raised twofold about 9 s after the cut.
    doubled_at = 0.99 + knee + knee * 10 ** (1 / 3)
    send_paced(controller, 0.99 + 2 * knee, doubled_at)
    assert controller.rate_at(doubled_at) == pytest.approx(2 * w_max)
    assert knee + knee * 10 ** (1 / 3) == pytest.approx(9.22, abs=0.01)


def test_recovery_climbs_back_but_probes_no_further_once_no_run_may_probe() -> None:
    controller = saturated(64, until=0.99, latency_s=0.125)
    controller.on_throttle(0.99, 0.98, None)
    knee = RECOVERY_KNEE_S
    controller.may_probe = False

    send_paced(controller, 0.99, 0.99 + knee / 2)
    assert controller.rate_at(0.99 + knee / 2) == pytest.approx(64 * 0.9875)

    # The curve would be 10 % above W_max here, and twice it 9 s after the cut.
    send_paced(controller, 0.99 + knee / 2, 0.99 + 2 * knee)
    assert controller.rate_at(0.99 + 2 * knee) == pytest.approx(64)
    send_paced(controller, 0.99 + 2 * knee, 10.0)
    assert controller.rate_at(10.0) == pytest.approx(64)

    controller.may_probe = True
    send_paced(controller, 10.0, 10.5)
    assert controller.rate_at(10.5) > 1.3 * 64


def test_a_rate_probing_reached_is_kept_once_no_run_may_probe() -> None:
    controller = saturated(64, until=0.99, latency_s=0.125)
    controller.on_throttle(0.99, 0.98, None)
    knee = RECOVERY_KNEE_S
    doubled_at = 0.99 + knee + knee * 10 ** (1 / 3)
    send_paced(controller, 0.99, doubled_at)
    assert controller.rate_at(doubled_at) == pytest.approx(2 * 64)

    # The plan's last block is taken: no probing further, and no cut either.
    controller.may_probe = False
    send_paced(controller, doubled_at, doubled_at + 5)

    assert controller.rate_at(doubled_at + 5) == pytest.approx(2 * 64)


def test_recovery_does_not_outgrow_an_app_limited_client() -> None:
    controller = saturated(64, until=0.99, latency_s=0.125)
    controller.on_throttle(0.99, 0.98, None)
    send_at(controller, *(10.0 + k / 10 for k in range(10)))

    # The curve is far above 64 by now, but only 10 req/s were used.
    assert controller.rate_at(11.0) == pytest.approx(0.9 * 64)


def test_a_cut_takes_a_client_sending_less_than_its_pace_at_its_own_rate() -> None:
    controller = RateController(RateSettings(initial_rate=30.0))
    sends = [k / 10 for k in range(20)]  # 10 req/s, though the pacer allows 30
    send_at(controller, *sends)
    answer(controller, sends[:-1], 0.1)

    controller.on_throttle(1.91, 1.9, None)

    assert controller.rate_at(1.91) == pytest.approx(0.9 * 10)


def test_a_stall_before_the_horizon_is_not_taken_for_a_client_sending_less() -> None:
    """Every permit held by requests the server sat on, then a clump at the pace:
    the 429 was drawn at the pace, not at the average over the stall."""
    controller = RateController(RateSettings(initial_rate=30.0))
    early = [k / 30 for k in range(15)]
    clump = [1.9 + k / 30 for k in range(12)]
    send_at(controller, *early, *clump)
    answer(controller, early + clump[:-1], 0.1)

    controller.on_throttle(clump[-1] + 0.01, clump[-1], None)

    # Spaced over the stall since 0 s, the sends would read as 11 req/s.
    assert controller.rate_at(clump[-1] + 0.01) == pytest.approx(0.9 * 30)


def test_a_few_sends_after_a_stall_are_not_spaced_across_it() -> None:
    controller = RateController(RateSettings(initial_rate=30.0))
    early = [k / 30 for k in range(15)]
    clump = [1.9 + k / 30 for k in range(9)]  # too few in the horizon to space
    send_at(controller, *early, *clump)
    answer(controller, early + clump[:-1], 0.1)

    controller.on_throttle(clump[-1] + 0.01, clump[-1], None)

    assert controller.rate_at(clump[-1] + 0.01) == pytest.approx(0.9 * 30)


def test_a_first_429_after_a_stall_cuts_between_accepted_and_drawing_rates() -> None:
    controller = RateController(RateSettings(initial_rate=30.0))
    held = [k / 30 for k in range(12)]  # the server sits on these: never answered
    sparse = [1.0, 1.25, 1.5]  # the client has little else to send
    clump = [1.6 + k / 30 for k in range(8)]  # then sends at its pace of 30 again
    send_at(controller, *held, *sparse, *clump)
    answer(controller, sparse + clump[:4], 0.1)

    controller.on_throttle(clump[-1] + 0.01, clump[-1], None)

    # Admitted over H: 10 sends from 1.0 to 1.8, 11.25 req/s, a floor of the limit
    # since the client sent 11 requests where its pace allowed 30. The clump drew
    # the 429 at 30 req/s. W_max is their geometric mean; the cut, 0.9 times it.
    cut_at = clump[-1] + 0.01
    w_max = math.sqrt(11.25 * 30)
    assert controller.rate_at(cut_at) == pytest.approx(0.9 * w_max)

    # A guess is probed three times as fast as a common cut: back at W_max after
    # 1 s, 10 % past it after 2 s, twice it after some 3.2 s.
    send_paced(controller, cut_at, cut_at + GUESS_KNEE_S)
    assert controller.rate_at(cut_at + GUESS_KNEE_S) == pytest.approx(w_max)
    send_paced(controller, cut_at + GUESS_KNEE_S, cut_at + 2 * GUESS_KNEE_S)
    assert controller.rate_at(cut_at + 2 * GUESS_KNEE_S) == pytest.approx(1.1 * w_max)


def refused_after_a_step(hint: float) -> tuple[RateController, float]:
    """Start-up from ``hint``, all admitted, until its first step up by half is
    refused at its first send; returns the controller and when it was cut."""
    controller = RateController(RateSettings(initial_rate=hint))
    moment = 0.0
    while controller.rate_at(moment) == hint:
        send_at(controller, moment)
        answer(controller, [moment], 0.1)
        moment += 1 / hint
    assert controller.rate_at(moment) == 1.5 * hint

    refused = moment - 1 / hint + 1 / (1.5 * hint)
    send_at(controller, refused)
    controller.on_throttle(refused + 0.002, refused, None)
    return controller, refused + 0.002


def test_a_step_of_start_up_past_a_low_limit_cuts_between_its_rates() -> None:
    controller, cut_at = refused_after_a_step(4.0)

    # The limit lies between the 4 admitted and the 6 refused. The guess is their
    # geometric mean, probed as a guess is, rather than 4 approached over 100
    # requests' worth.
    w_max = math.sqrt(4.0 * 6.0)
    assert controller.rate_at(cut_at) == pytest.approx(0.9 * w_max)
    send_paced(controller, cut_at, cut_at + GUESS_KNEE_S)
    assert controller.rate_at(cut_at + GUESS_KNEE_S) == pytest.approx(w_max)


def test_a_step_of_start_up_past_a_high_limit_cuts_from_the_rate_admitted() -> None:
    controller, cut_at = refused_after_a_step(100.0)

    # Above some 34 req/s a step's overshoot is found again within a second at
    # the common pace; a guess past the limit would only draw more 429s.
    assert controller.rate_at(cut_at) == pytest.approx(0.9 * 100.0)


def test_a_client_held_by_its_permits_is_cut_as_usual_not_guessed() -> None:
    controller = RateController(RateSettings(initial_rate=30.0))
    sends = [k / 20 for k in range(40)]  # 20 req/s where the pace allows 30 or more
    send_at(controller, *sends)
    answer(controller, sends[:-1], 0.1)

    cut_at = sends[-1] + 0.01
    controller.on_throttle(cut_at, sends[-1], None)

    # The sends went no faster than what was accepted: nothing to guess between,
    # so the common curve, 0.9 times 20 and back at 20 only after its K.
    assert controller.rate_at(cut_at) == pytest.approx(0.9 * 20)
    send_paced(controller, cut_at, cut_at + GUESS_KNEE_S)
    left = (RECOVERY_KNEE_S - GUESS_KNEE_S) / RECOVERY_KNEE_S
    expected = 20 * (1 - 0.1 * left**3)
    assert controller.rate_at(cut_at + GUESS_KNEE_S) == pytest.approx(expected)


def test_a_first_429_at_full_pace_cuts_from_the_accepted_rate() -> None:
    controller = saturated(30, until=0.99, latency_s=0.1)

    controller.on_throttle(1.0, 0.98, None)

    assert controller.rate_at(1.0) == pytest.approx(0.9 * 30)


def test_a_run_never_throttled_keeps_a_bounded_record() -> None:
    controller = RateController(RateSettings(initial_rate=10.0))
    sends = [k / 10 for k in range(10_000)]  # 1,000 s at 10 req/s, no 429
    for sent_at in sends:
        send_at(controller, sent_at)
        controller.on_success(sent_at + 0.1, 0.1)

    # 60 s back from the last answer, at 1,000.0 s, are kept, not the whole run:
    # the sends from 940.0 s (600), the answers from 940.0 s to 1,000.0 s (601).
    kept = (controller._sent, controller._accepted, controller._accepted_sends)
    assert [len(times) for times in kept] == [600, 601, 600]


def test_a_low_limit_met_again_stretches_the_approach() -> None:
    controller = RateController(RateSettings(initial_rate=8.0))
    sends = [k / 8 for k in range(8)]
    send_at(controller, *sends)
    answer(controller, sends[:7], 0.125)
    controller.on_throttle(0.9, 0.875, None)

    # The cut that ends start-up probes at the common pace: back at 8 after K.
    again = 0.9 + RECOVERY_KNEE_S
    recovery_sends = [again - 2 + k / 8 for k in range(16)]
    send_at(controller, *recovery_sends[:-1])
    latest_rate = controller.rate_at(recovery_sends[-1])
    send_at(controller, recovery_sends[-1])
    answer(controller, recovery_sends, 0.125)
    assert controller.rate_at(again) == pytest.approx(8.0)

    # Throttled again at 8 req/s (the pace of the latest send), 8 admitted: the
    # limit is known, halfway between the start-up's aim (8) and 2.5 % below the
    # rate refused. The cut is to 0.98 times it, and K = 100 requests / 7.9 req/s =
    # 12.66 s, not 2.9 s.
    controller.on_throttle(again, again - 0.01, None)
    limit = (8.0 + 0.975 * latest_rate) / 2
    knee_s = 100 / limit
    assert controller.known_limit == pytest.approx(limit)
    assert controller.rate_at(again) == pytest.approx(0.98 * limit)
    send_paced(controller, again, again + RECOVERY_KNEE_S)
    progress = (knee_s - RECOVERY_KNEE_S) / knee_s
    assert controller.rate_at(again + RECOVERY_KNEE_S) == pytest.approx(
        limit * (1 - 0.02 * progress**3), rel=1e-4
    )
    send_paced(controller, again + RECOVERY_KNEE_S, again + knee_s)
    assert controller.rate_at(again + knee_s) == pytest.approx(limit, rel=1e-4)


def test_a_long_retry_after_holds_all_sends_until_the_reset() -> None:
    rng_seed = 5
    controller = RateController(rng=random.Random(rng_seed))
    sends = [k / 4 for k in range(4)]
    send_at(controller, *sends)
    answer(controller, sends, 0.1)

    assert controller.on_throttle(1.0, 0.9, 5.0) is True

    reset = 1.0 + 5.0 * (1 + 0.1 * random.Random(rng_seed).random())
    assert controller.mode is RateMode.WINDOW
    assert controller.barrier_until == pytest.approx(reset)
    # 4 accepted between the first send and the reset.
    assert controller.rate_at(reset) == pytest.approx(0.9 * 4 / reset)


def test_a_window_is_paced_to_spread_its_quota_up_to_the_next_reset() -> None:
    rng_seed = 5
    controller = RateController(rng=random.Random(rng_seed))
    # 300 requests admitted in the 3 s before a 429 that says: 7 s to the reset.
    sends = [10.0 + k / 100 for k in range(300)]
    send_at(controller, *sends)
    answer(controller, sends, 0.1)

    assert controller.on_throttle(13.002, 13.0, 7.0) is True

    # The reset lies up to a second before the one announced, so the window (10 s,
    # the shortest common length a 7 s wait fits in) started between 9.0 and 10.0:
    # its quota is the 300 sent since 9.5, spread up to the earliest next reset.
    hold_until = 13.002 + 7.0 * (1 + 0.1 * random.Random(rng_seed).random())
    assert controller.barrier_until == pytest.approx(hold_until)
    pace = 300 / (13.002 + 6.0 + 10.0 - hold_until)
    assert controller.rate_at(hold_until) == pytest.approx(0.98 * pace)


def test_a_later_retry_after_of_the_same_episode_extends_the_hold() -> None:
    controller = RateController(rng=random.Random(5))
    send_at(controller, 0.0, 0.25)
    controller.on_throttle(1.0, 0.9, 5.0)

    assert controller.on_throttle(1.1, 0.95, 7.0) is False
    assert controller.barrier_until == pytest.approx(8.1)
    assert controller.cuts == 1


def test_window_mode_sticks_and_a_short_retry_after_only_cuts() -> None:
    controller = RateController(rng=random.Random(5))
    send_at(controller, 0.0, 0.25)
    controller.on_throttle(1.0, 0.9, 5.0)
    barrier = controller.barrier_until
    send_at(controller, barrier + 1.0)

    assert controller.on_throttle(barrier + 1.1, barrier + 1.0, None) is True
    assert controller.mode is RateMode.WINDOW
    assert controller.barrier_until == barrier


def test_accepted_rate_counts_answers_over_the_horizon() -> None:
    controller = saturated(32, until=2.0, latency_s=0.125)

    assert controller.horizon_s == 1.0
    assert controller.accepted_rate(2.0) == 32.0
    assert controller.used_rate(2.0) == 28.0


def test_latency_percentile_and_maximum() -> None:
    window = LatencyWindow(size=10)
    for latency_s in range(1, 11):
        window.add(float(latency_s))

    assert (window.p90_s, window.max_s) == (9.0, 10.0)

    for _ in range(9):
        window.add(0.5)
    assert (window.p90_s, window.max_s) == (0.5, 10.0)
    window.add(0.25)
    assert (window.p90_s, window.max_s) == (0.5, 0.5)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"min_rate": 0.0}, "RateSettings.min_rate must be a number above zero, got 0"),
        ({"max_rate": -1.0}, "RateSettings.max_rate must be a number above zero"),
        (
            {"initial_rate": 50.0, "max_rate": 10.0},
            "expects min_rate <= initial_rate <= max_rate, got 0.1, 50.0 and 10.0",
        ),
    ],
)
def test_settings_name_the_bad_field(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RateSettings(**changes)


def test_a_cut_measures_up_to_the_latest_sends_not_the_latest_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    controller = saturated(40, until=2.0, latency_s=0.1)
    controller.on_throttle(1.902, 1.9, None)
    # Then a second at 20 req/s whose answers are slow: none is in yet.
    slower = [2.0 + k / 20 for k in range(21)]
    send_at(controller, *slower)
    controller.on_success(3.0, 0.9)

    with caplog.at_level("INFO", logger="powerp_async.control.rate"):
        assert controller.on_throttle(3.002, 3.0, None) is True

    # The answers alone would end 0.9 s back, in the stretch at 40 req/s; a 429
    # comes back in 2 ms, so the sends up to a few of those back were admitted.
    # 20 req/s admitted and refused: the limit is pinned down at 0.975 x 20.
    assert caplog.messages[-1] == (
        "throttled: rate 36 -> 19.1 req/s (accepted 20 req/s, mode recovery, "
        "limit known)"
    )


def test_requests_that_got_no_answer_are_not_counted_as_admitted(
    caplog: pytest.LogCaptureFixture,
) -> None:
    controller = saturated(20, until=2.0, latency_s=0.1)
    controller.on_throttle(1.902, 1.9, None)
    # Then 20 req/s for a second, of which every other got no answer at all.
    sends = [2.0 + k / 20 for k in range(21)]
    send_at(controller, *sends)
    for sent_at in sends[1:-1:2]:
        controller.on_lost(sent_at)

    with caplog.at_level("INFO", logger="powerp_async.control.rate"):
        controller.on_throttle(3.002, 3.0, None)

    assert caplog.messages[-1].endswith("(accepted 10 req/s, mode recovery)")


def after_startup_at(rate: int, count: int) -> RateController:
    """Start-up ended by a 429 at 32 req/s, then ``count`` sends at ``rate`` from
    2 s, all but the last answered after 0.125 s."""
    controller = saturated(32, until=2.0, latency_s=0.125)
    controller.on_throttle(2.0, 1.95, None)
    sends = [2.0 + k / rate for k in range(count)]
    send_at(controller, *sends)
    answer(controller, sends[:-1], 0.125)
    return controller


def test_an_episode_that_pins_the_limit_down_makes_the_next_cut_shallow() -> None:
    # 30 req/s for six seconds, all answered, until a 429 at that rate.
    controller = after_startup_at(30, 181)

    assert controller.on_throttle(8.002, 8.0, None) is True

    # 30 req/s admitted since the previous 429 and refused now: the limit is taken
    # 2.5 % below it, and the cut goes to 0.98 times that, not to 0.9.
    assert controller.known_limit == pytest.approx(0.975 * 30)
    assert controller.rate_at(8.002) == pytest.approx(0.98 * 0.975 * 30)


def test_a_429_right_after_a_cut_forgets_the_known_limit() -> None:
    controller = after_startup_at(30, 181)
    controller.on_throttle(8.002, 8.0, None)
    late = 2.0 + 181 / 30
    before = controller.rate_at(late)
    send_at(controller, late)

    assert controller.on_throttle(8.035, late, None) is True

    # Refused again within a quarter of the horizon of a cut: the limit dropped
    # below the cut. The common cut, from the rate the refused request went at.
    assert controller.known_limit is None
    assert controller.rate_at(8.035) == pytest.approx(0.9 * before)
    assert before == pytest.approx(0.98 * 0.975 * 30, rel=1e-3)


def test_a_limit_found_by_probing_past_the_curve_is_not_taken_as_known() -> None:
    # Seven seconds at 40 req/s, all admitted: the curve, back at 32 after K, is
    # well above it by then, probing for a raised limit.
    controller = after_startup_at(40, 281)

    assert controller.on_throttle(9.002, 9.0, None) is True

    # A common cut, which keeps probing upward at the common pace.
    assert controller.known_limit is None
    assert controller.rate_at(9.002) == pytest.approx(0.9 * 40)


def test_recovery_from_a_pace_below_two_per_second_follows_the_curve() -> None:
    # The first query is refused: the pace is cut below 2 req/s.
    controller = RateController()
    send_at(controller, 0.0)
    controller.on_throttle(0.1, 0.0, None)
    cut_to = controller.rate_at(0.1)

    # Then everything is accepted, and the client sends whenever its pace allows.
    moment = 0.1
    while moment < 60.0:
        rate = controller.rate_at(moment)
        controller.on_sent(moment)
        controller.on_success(moment + 0.01, 0.01)
        moment += 1 / rate

    # Before each send, the last second held one send fewer than the pace, and
    # half as much again as that kept the pace at the cut for good.
    assert cut_to == pytest.approx(1.8)
    assert controller.rate_at(60.0) == pytest.approx(
        controller._curve.rate_at(60.0), rel=0.01
    )
    assert controller.rate_at(60.0) > 100
