"""The progress line shows what the controller is doing."""

from __future__ import annotations

import io
import random
import re

from powerp_async import RunStats
from powerp_async._progress import ProgressLine
from powerp_async.control import (
    AdaptivePacer,
    CircuitBreaker,
    FakeClock,
    RateController,
)
from powerp_async.pacing import FixedPacer


def line(pacer: AdaptivePacer | FixedPacer, stats: RunStats) -> str:
    stream = io.StringIO()
    ProgressLine(stream, pacer, columns=lambda: 1_000)(stats, 10)
    return stream.getvalue().removeprefix("\r")


def test_the_line_shows_mode_gate_and_blocks_cut() -> None:
    clock = FakeClock()
    pacer = AdaptivePacer(
        clock=clock,
        controller=RateController(rng=random.Random(1)),
        breaker=CircuitBreaker(rng=random.Random(2)),
    )
    stats = RunStats(requests=3, throttled=1, splits=1, presplit_blocks=4)

    assert line(pacer, stats) == (
        "0/10 blocks  0 points  3 requests  0 points/s  ETA --:--  "
        "4.0 req/s startup, 0.0 answered/s, 0 in flight (limit 128)  "
        "(1 throttled, 0 retries)  "
        "5 blocks cut to fit"
    )


async def test_an_open_circuit_is_shown_with_its_age() -> None:
    clock = FakeClock()
    pacer = AdaptivePacer(clock=clock, breaker=CircuitBreaker(rng=random.Random(2)))
    for _ in range(5):
        pacer.breaker.on_failure(clock.now(), connection=True)
    await clock.advance(3.0)

    assert line(pacer, RunStats()).endswith(
        "4.0 req/s startup, 0.0 answered/s, 0 in flight (limit 128), circuit open 3 s"
    )


def test_a_fixed_pacer_shows_its_rate() -> None:
    assert line(FixedPacer(7.0), RunStats()).endswith("7.0 req/s, 0 in flight")


def test_the_line_is_cut_to_the_terminal_so_redraws_stay_on_one_row() -> None:
    stream = io.StringIO()
    columns = [40]
    progress = ProgressLine(stream, FixedPacer(7.0), columns=lambda: columns[0])

    progress(RunStats(requests=3), 10)
    columns[0] = 30  # the window was narrowed
    progress(RunStats(requests=4), 10)
    columns[0] = 100  # and widened: the whole line shows again
    progress(RunStats(requests=5), 10)

    assert stream.getvalue() == (
        "\r0/10 blocks  0 points  3 requests  0 po"  # 39 columns of 40
        "\r0/10 blocks  0 points  4 requ"  # 29 of 30
        "\r0/10 blocks  0 points  5 requests  0 points/s  ETA --:--  7.0 req/s, 0 in "
        "flight"
    )


async def test_a_hold_the_server_asked_for_is_shown_while_it_lasts() -> None:
    clock = FakeClock()
    pacer = AdaptivePacer(clock=clock, controller=RateController(rng=random.Random(1)))
    await clock.advance(5.0)
    pacer.controller.on_throttle(clock.now(), clock.now() - 0.1, retry_after_s=42.0)

    held = line(pacer, RunStats())
    await clock.advance(42.0 * 1.1)

    # The announced 42 s, and up to a tenth more so clients do not return at once.
    assert re.search(r", holding 4[2-6] s as the server asked$", held)
    assert "holding" not in line(pacer, RunStats())


def test_signals_refused_within_fetched_blocks_are_counted() -> None:
    stats = RunStats(requests=9, blocks_done=2, signals_refused=3)

    assert line(FixedPacer(7.0), stats).endswith(
        "7.0 req/s, 0 in flight  3 signal blocks refused"
    )


async def test_the_pace_allowed_is_shown_beside_the_answers_that_came() -> None:
    clock = FakeClock()
    pacer = AdaptivePacer(clock=clock, controller=RateController())
    await clock.advance(5.0)
    for _ in range(3):
        pacer.controller.on_success(clock.now(), 0.1)

    # Three answers over the last second (H is 1 s at this latency).
    assert "4.0 req/s startup, 3.0 answered/s, 0 in flight" in line(pacer, RunStats())
