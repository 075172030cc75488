"""The circuit breaker: when it opens, how it probes, what closes it."""

from __future__ import annotations

import math
import random

import pytest

from powerp_async.control import CircuitBreaker, CircuitSettings, CircuitState
from powerp_async.errors import ConfigurationError


def breaker(seed: int = 3) -> CircuitBreaker:
    return CircuitBreaker(rng=random.Random(seed))


def outcomes(circuit: CircuitBreaker, pattern: str, start: float = 0.0) -> float:
    """Report one outcome per character, 0.1 s apart: ``s`` success, ``f`` 5xx,
    ``c`` connection failure; returns the time after the last one."""
    moment = start
    for outcome in pattern:
        if outcome == "s":
            circuit.on_success(moment)
        else:
            circuit.on_failure(moment, connection=outcome == "c")
        moment += 0.1
    return moment


def test_half_of_twenty_requests_failing_opens_it() -> None:
    circuit = breaker()

    outcomes(circuit, "sf" * 9 + "s")
    assert circuit.openings == 0

    outcomes(circuit, "f", start=1.9)
    assert circuit.state is CircuitState.OPEN
    assert circuit.opened_at == pytest.approx(1.9)


def test_fewer_than_twenty_requests_never_open_it_by_share() -> None:
    circuit = breaker()

    outcomes(circuit, "f" * 19)

    assert circuit.state is CircuitState.CLOSED


def test_a_share_under_half_keeps_it_closed() -> None:
    circuit = breaker()

    outcomes(circuit, "ssf" * 10)

    assert circuit.state is CircuitState.CLOSED


def test_failures_older_than_ten_seconds_are_forgotten() -> None:
    circuit = breaker()
    outcomes(circuit, "f" * 15)

    outcomes(circuit, "s" * 10 + "f" * 5, start=20.0)

    assert circuit.state is CircuitState.CLOSED


def test_five_connection_failures_in_a_row_open_it() -> None:
    circuit = breaker()

    outcomes(circuit, "cccc")
    assert circuit.openings == 0
    outcomes(circuit, "c", start=0.4)

    assert circuit.state is CircuitState.OPEN
    assert circuit.openings == 1


def test_a_success_or_a_5xx_breaks_the_run_of_connection_failures() -> None:
    circuit = breaker()

    outcomes(circuit, "ccccsccccfcccc")

    assert circuit.state is CircuitState.CLOSED


def test_429s_never_open_it() -> None:
    circuit = breaker()
    outcomes(circuit, "cccc")

    for moment in range(100):
        circuit.on_success(1.0 + moment / 100)  # how the pacer reports a 429
    outcomes(circuit, "c", start=2.0)

    assert circuit.state is CircuitState.CLOSED


def test_an_open_breaker_waits_for_a_jittered_probe() -> None:
    circuit = breaker(seed=3)
    outcomes(circuit, "ccccc")

    expected_delay = random.Random(3).uniform(5.0, 6.0)
    assert circuit.next_probe_at == pytest.approx(0.4 + expected_delay)
    assert circuit.ready_at(1.0) == circuit.next_probe_at
    assert circuit.open_for_s(2.4) == pytest.approx(2.0)


def test_one_probe_at_a_time_and_a_success_closes_it() -> None:
    circuit = breaker()
    outcomes(circuit, "ccccc")
    probe_at = circuit.next_probe_at

    assert circuit.on_admitted(probe_at) is True
    assert repr(circuit) == "<CircuitBreaker half-open, opened 1 times>"
    assert circuit.ready_at(probe_at) == math.inf

    circuit.on_success(probe_at + 0.2, probe=True)
    assert circuit.state is CircuitState.CLOSED
    assert (circuit.opened_at, circuit.open_for_s(99.0)) == (None, 0.0)
    assert circuit.on_admitted(probe_at + 0.3) is False
    assert circuit.probes == 1


def test_a_failed_probe_reopens_it_at_the_same_pace() -> None:
    rng = random.Random(4)
    circuit = CircuitBreaker(rng=rng)
    outcomes(circuit, "ccccc")
    first_probe = circuit.next_probe_at
    circuit.on_admitted(first_probe)
    state = rng.getstate()

    circuit.on_failure(first_probe + 1.0, connection=True, probe=True)

    rng.setstate(state)
    assert circuit.state is CircuitState.OPEN
    assert circuit.next_probe_at == pytest.approx(
        first_probe + 1.0 + rng.uniform(5.0, 6.0)
    )
    assert circuit.opened_at == pytest.approx(0.4)


def test_probes_slow_down_after_ten_have_failed() -> None:
    rng = random.Random(5)
    circuit = CircuitBreaker(rng=rng)
    outcomes(circuit, "ccccc")
    pauses = []
    for _ in range(13):
        moment = circuit.next_probe_at
        circuit.on_admitted(moment)
        state = rng.getstate()
        circuit.on_failure(moment, probe=True)
        rng.setstate(state)
        pauses.append((circuit.next_probe_at - moment, rng.random()))

    # Ten pauses of 5 to 6 s, then the upper bound doubles up to 30 s.
    longest = [6.0] * 10 + [12.0, 24.0, 30.0]
    for (pause, share), high in zip(pauses, longest, strict=True):
        assert pause == pytest.approx(5.0 + (high - 5.0) * share)


def test_an_outage_after_many_successes_opens_it_within_twenty_requests() -> None:
    circuit = breaker()
    moment = outcomes(circuit, "s" * 500)

    outcomes(circuit, "f" * 9, start=moment)
    assert circuit.state is CircuitState.CLOSED
    outcomes(circuit, "f", start=moment + 0.9)

    assert circuit.state is CircuitState.OPEN
    assert circuit.opened_at == pytest.approx(moment + 0.9)


def test_isolated_failures_among_many_successes_keep_it_closed() -> None:
    circuit = breaker()

    outcomes(circuit, ("s" * 19 + "f") * 50)

    assert circuit.state is CircuitState.CLOSED


def test_probe_intervals_stay_within_thirty_seconds() -> None:
    circuit = breaker()
    outcomes(circuit, "ccccc")
    moment = 0.0
    for _ in range(50):
        moment = circuit.next_probe_at
        circuit.on_admitted(moment)
        circuit.on_failure(moment, probe=True)
        assert 5.0 <= circuit.next_probe_at - moment <= 30.0


def test_answers_to_requests_sent_before_it_opened_change_nothing() -> None:
    circuit = breaker()
    outcomes(circuit, "ccccc")

    circuit.on_success(0.6)
    circuit.on_failure(0.7)

    assert circuit.state is CircuitState.OPEN


def test_a_lost_probe_is_replaced_at_once() -> None:
    circuit = breaker()
    outcomes(circuit, "ccccc")
    probe_at = circuit.next_probe_at
    circuit.on_admitted(probe_at)

    circuit.on_abandoned(probe_at + 1.0, probe=True)

    assert circuit.state is CircuitState.OPEN
    assert circuit.ready_at(probe_at + 1.0) == probe_at + 1.0


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"failure_share": 0.0}, r"failure_share must lie in \(0, 1\], got 0.0"),
        ({"min_requests": 0}, "CircuitSettings.min_requests must be above zero"),
        ({"max_probe_interval_s": 1.0}, "must be at least min_probe_interval_s"),
    ],
)
def test_settings_name_the_bad_field(changes: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CircuitSettings(**changes)  # type: ignore[arg-type]
