"""The adaptive shared pace: its script on a real Redis, two pacers on one key, and the
fallback when Redis goes away."""

from __future__ import annotations

import logging
import os
import signal
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from powerp_async.redis_pacing import (
    AdaptiveRedisPacer,
    RateBounds,
    SharedRate,
    Throttle,
    state_key,
)
from powerp_async.redis_pacing._shared_rate import ADAPTIVE_SHA, CUT_FACTOR, PROBE_GAIN

from .redis_server import free_port, fresh_key, own_redis_server, redis_url_or_skip

PASSWORD = "redis-pw-8c7b6a"


@pytest.fixture
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url_or_skip())
    yield client
    await client.aclose()


def shared(
    redis: Redis, key: str, member: str, *, initial: float = 10.0, **limits: float
) -> SharedRate:
    bounds = RateBounds(initial, limits.get("floor", 0.1), limits.get("ceiling", 1e9))
    return SharedRate(redis, key, member, member_ttl_s=5.0, bounds=bounds)


def test_only_a_long_retry_after_pauses_everybody() -> None:
    assert Throttle.of(7, None) == Throttle(7, -1)
    assert Throttle.of(7, 1.0) == Throttle(7, -1)
    assert Throttle.of(7, 2.5) == Throttle(7, 2_500_000)
    assert Throttle.of(7, 86_400.0) == Throttle(7, 300_000_000)


async def test_a_burst_of_429s_on_two_processes_cuts_the_shared_rate_once(caplog):
    url = redis_url_or_skip()
    caplog.set_level(logging.INFO, logger="powerp_async.redis_pacing")
    key = fresh_key()
    first = AdaptiveRedisPacer(url, key=key, initial_rate=10)
    second = AdaptiveRedisPacer(url, key=key, initial_rate=10)

    async with (
        first.permit() as a1,
        first.permit() as a2,
        second.permit() as b1,
        second.permit() as b2,
    ):
        for permit in (a1, a2, b1, b2):
            permit.throttled(None)
    # The 429s reach Redis with each process's next booking.
    async with first.permit(), second.permit():
        pass
    after_burst = (first.cuts, second.cuts, first.rate, second.rate)
    async with second.permit() as late:
        late.throttled(None)
    async with second.permit():
        pass
    await first.aclose()
    await second.aclose()

    # Nothing was accepted, so each cut takes half the rate as the accepted one.
    assert after_burst == (1, 1, CUT_FACTOR * 5.0, CUT_FACTOR * 5.0)
    assert (second.cuts, second.rate) == (2, CUT_FACTOR * (CUT_FACTOR * 5.0 / 2))
    assert [r.getMessage() for r in caplog.records] == [
        f"throttled: shared rate cut to 4.5 req/s (cut 1, key {key!r})",
        f"throttled: shared rate cut to 2.02 req/s (cut 2, key {key!r})",
    ]


async def test_accepted_answers_double_the_start_and_probe_gently_after_a_cut(redis):
    rate = shared(redis, fresh_key(), "one")

    first = await rate.reserve()
    # The first booking starts the schedule; growth needs one that keeps it.
    kept = await rate.reserve(accepted=3)
    started = await rate.reserve(accepted=5)
    cut = await rate.reserve(throttles=[Throttle(first.now_us)])
    probed = await rate.reserve(accepted=3)

    assert (first.rate, kept.rate, started.rate) == (10.0, 10.0, 15.0)
    assert (started.grown_up, cut.grown_up) == (False, True)
    # The cut measured the 8 answers accepted within its second (at most the rate).
    assert (cut.rate, cut.cuts, cut.cut) == (CUT_FACTOR * 8, 1, 1)
    assert probed.rate == cut.rate + 3 * PROBE_GAIN * 8 / cut.rate


async def test_one_cut_never_goes_below_half_the_rate(redis) -> None:
    # Just started, or seeded after Redis restarted: few answers are counted yet.
    rate = shared(redis, fresh_key(), "one", initial=16.0)

    first = await rate.reserve()
    cut = await rate.reserve(accepted=2, throttles=[Throttle(first.now_us)])

    assert (cut.rate, cut.cut) == (CUT_FACTOR * 8.0, 1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("pause", "9999999999999999"),
        ("last", "9999999999999999"),
        ("win", "9999999999999999"),
        ("rate", "nan"),
        ("rate", "inf"),
        ("rate", "1e308"),
        ("rate", "-5"),
        ("wmax", "junk"),
        ("wmax", "0.000001"),  # below the floor, where no cut puts it
    ],
)
async def test_a_state_no_process_wrote_is_started_afresh(
    redis, field: str, value: str
) -> None:
    key = fresh_key()
    rate = shared(redis, key, "one")
    await rate.reserve()
    await redis.hset(state_key(key), field, value)

    afresh = await rate.reserve()
    after = await rate.reserve()

    assert (afresh.restarted, afresh.wait_s, afresh.rate) == (True, 0, 10.0)
    assert not after.restarted
    assert after.wait_s <= 0.1


async def test_a_slot_further_ahead_than_the_live_processes_book_is_junk(
    redis,
) -> None:
    key = fresh_key()
    rate = shared(redis, key, "one", floor=1.0)
    booked = await rate.reserve()
    # One process books one slot and one of its spacing ahead at most, at no less
    # than the floor's pace: 4 s for one process and one just gone, at 1 per second.
    await redis.hset(state_key(key), "last", booked.now_us + 890_000_000)

    afresh = await rate.reserve()

    assert (afresh.restarted, afresh.wait_s) == (True, 0)


async def test_429s_booked_before_a_lost_state_make_no_cut(redis) -> None:
    key = fresh_key()
    rate = shared(redis, key, "one", initial=16.0)
    booked = await rate.reserve()
    await redis.delete(state_key(key))  # flushed, expired or evicted mid-run

    again = await rate.reserve(throttles=[Throttle(booked.now_us)])
    cut = await rate.reserve(throttles=[Throttle(again.now_us)])

    assert (again.rate, again.cut, again.grown_up) == (16.0, 0, False)
    assert (cut.rate, cut.cut) == (CUT_FACTOR * 8.0, 1)


async def test_a_pacer_says_when_the_shared_state_was_started_afresh(
    redis, caplog
) -> None:
    key = fresh_key()
    pacer = AdaptiveRedisPacer(redis_url_or_skip(), key=key, initial_rate=10)
    async with pacer.permit():
        pass
    await redis.hset(state_key(key), "pause", "9999999999999999")

    with caplog.at_level(logging.WARNING, "powerp_async.redis_pacing"):
        async with pacer.permit():
            pass
    await pacer.aclose()

    assert [r.getMessage() for r in caplog.records] == [
        f"rate backend {redis_url_or_skip()}, key {key!r}: the shared state held "
        "values no powerp process writes (a pause or slot far ahead, or a rate that "
        "is no number), and was started afresh"
    ]


async def test_a_long_retry_after_pauses_every_process(redis) -> None:
    key = fresh_key()
    first, second = shared(redis, key, "first"), shared(redis, key, "second")
    booked = await first.reserve()

    paused = await first.reserve(throttles=[Throttle.of(booked.now_us, 30.0)])
    after = await second.reserve()

    spacing_us = -(-1_000_000 // (CUT_FACTOR * 5.0))
    assert paused.slot_us - paused.now_us == 30_000_000
    assert after.slot_us == paused.slot_us + spacing_us
    assert after.live == 2


async def test_the_rate_stays_within_its_floor_and_ceiling(redis) -> None:
    low = shared(redis, fresh_key(), "low", floor=1.0)
    high = shared(redis, fresh_key(), "high", ceiling=12.0)

    rates = []
    for _ in range(4):
        # Each 429 is for a request booked after the previous cut: a new episode.
        booked = await low.reserve()
        cut = await low.reserve(throttles=[Throttle(booked.now_us)])
        rates.append(cut.rate)
    await high.reserve()
    await high.reserve()
    capped = await high.reserve(accepted=5)

    assert rates == [4.5, CUT_FACTOR * 2.25, 1.0, 1.0]
    assert capped.rate == 12.0


async def test_the_state_is_one_hash_on_the_tenant_key(redis) -> None:
    key = fresh_key()
    rate = shared(redis, key, "one")
    await redis.script_flush()

    booking = await rate.reserve()
    state = await redis.hgetall(state_key(key))

    assert await redis.script_exists(ADAPTIVE_SHA) == [True]
    assert {name.decode(): float(value) for name, value in state.items()} == {
        "rate": 10.0,
        "wmax": 10.0,
        "mode": 0.0,
        "cut_at": float(booking.now_us - 1),  # the 429s booked before it cut nothing
        "cuts": 0.0,
        "pause": 0.0,
        "last": float(booking.slot_us),
        "busy": 0.0,
        "win": float(booking.now_us),
        "acc": 0.0,
        "acc0": 0.0,
    }


async def test_a_killed_redis_leaves_each_pacer_alone_at_its_share_until_back(caplog):
    redis_url_or_skip()
    caplog.set_level(logging.INFO, logger="powerp_async")
    port = free_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    key = fresh_key()

    with own_redis_server(port, PASSWORD) as (server, _):
        other = AdaptiveRedisPacer(url, key=key, initial_rate=40)
        pacer = AdaptiveRedisPacer(url, key=key, initial_rate=40, rejoin_every_s=0.05)
        async with other.permit(), pacer.permit():
            pass
        async with pacer.permit():
            before = (pacer.shared, pacer.live_processes, pacer.rate)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        async with pacer.permit():
            alone = (pacer.shared, pacer.live_processes, pacer.rate)

    with own_redis_server(port, PASSWORD):
        permits_to_rejoin = 0
        while not pacer.shared and permits_to_rejoin < 200:
            async with pacer.permit():
                permits_to_rejoin += 1
        rejoined = (pacer.shared, pacer.rate)
        await pacer.aclose()
        await other.aclose()

    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    warnings = [m for level, m in messages if level == "WARNING"]
    assert before == (True, 2, 40.0)
    assert alone == (False, 2, 20.0)
    # Redis came back empty: the rate known before the outage seeds it again.
    assert rejoined == (True, 40.0)
    assert 1 <= permits_to_rejoin < 200
    assert len(warnings) == 1
    assert warnings[0].endswith(
        "pacing this process alone from 20 req/s, its share (1/2) of 40, until it "
        "is back"
    )
    assert (
        "INFO",
        f"rate backend redis://***@127.0.0.1:{port}/0 is back: sharing 40 req/s again",
    ) in messages
    assert PASSWORD not in caplog.text
