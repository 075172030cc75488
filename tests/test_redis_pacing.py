"""The shared pacer: settings, the booking script on a real Redis, and its fallback."""

from __future__ import annotations

import asyncio
import doctest
import hashlib
import itertools
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Final

import anyio
import pytest
from redis.asyncio import Redis

from powerp_async import ClientConfig, ConfigurationError, PowerPClient
from powerp_async._redact import mask_url
from powerp_async.client import default_pacer
from powerp_async.redis_pacing import (
    AdaptiveRedisPacer,
    RedisPacer,
    SharedSchedule,
    schedule_keys,
    spacing_us,
    tenant_key,
)
from powerp_async.redis_pacing._schedule import CATCH_UP_US, RESERVE_SHA

from .processes import powerp
from .redis_server import (
    free_port,
    fresh_key,
    own_redis_server,
    redis_url_or_skip,
)

API = "http://127.0.0.1:8765/rt-api/api"
PASSWORD = "redis-pw-4e3d2c"
FIXED = {"adaptive": False, "max_rate": 20.0}


def python_output(script: str) -> str:
    """What ``script`` prints, run in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return done.stdout


def config(**settings: object) -> ClientConfig:
    return ClientConfig("demo", "s3cret-demo", base_url=API, **{**FIXED, **settings})


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (
            "http://127.0.0.1:6379",
            "rate_backend: expected a Redis URL such as 'redis://127.0.0.1:6379/0', "
            "got 'http://127.0.0.1:6379'",
        ),
        (
            "redis://:6379",
            "rate_backend: expected a Redis URL such as 'redis://127.0.0.1:6379/0', "
            "got 'redis://:6379'",
        ),
        (
            f"redis://:{PASSWORD}@127.0.0.1:port/0",
            "rate_backend: expected a Redis URL such as 'redis://127.0.0.1:6379/0', "
            "got 'redis://***@127.0.0.1:port/0'",
        ),
        (
            f"redis://:{PASSWORD}@127.0.0.1:6379/first",
            "rate_backend: expected a database number after the port, as in a Redis "
            "URL such as 'redis://127.0.0.1:6379/0', got "
            "'redis://***@127.0.0.1:6379/first'",
        ),
    ],
)
def test_a_backend_that_is_no_redis_url_is_refused_masked(url, message) -> None:
    with pytest.raises(ConfigurationError) as caught:
        config(rate_backend=url)

    assert str(caught.value) == message


def test_a_shared_pace_without_a_fixed_rate_is_an_adaptive_one() -> None:
    shared = ClientConfig(
        "demo", "s", base_url=API, rate_backend="redis://127.0.0.1:6379", max_rate=30
    )

    pacer = default_pacer(shared)

    assert isinstance(pacer, AdaptiveRedisPacer)
    assert repr(pacer) == (
        "<AdaptiveRedisPacer 4 req/s via redis://127.0.0.1:6379, key "
        f"{tenant_key(API, 'demo')!r}, shared>"
    )
    assert isinstance(
        default_pacer(config(rate_backend="redis://127.0.0.1")), RedisPacer
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (
            {"rate_key": "reporting"},
            "rate_key: expected a rate_backend (--rate-backend) to go with it",
        ),
        (
            {"rate_backend": "redis://127.0.0.1:6379", "rate_key": "two words"},
            "rate_key: expected 1 to 200 printable characters without spaces, got "
            "'two words'",
        ),
        (
            {"rate_backend": "redis://127.0.0.1:6379", "rate_key": "a{b}"},
            "rate_key: expected no braces (Redis reads them as a hash tag), got 'a{b}'",
        ),
    ],
)
def test_a_key_needs_a_backend_and_plain_characters(settings, message) -> None:
    with pytest.raises(ConfigurationError) as caught:
        config(**settings)

    assert str(caught.value) == message


async def test_reprs_mask_the_backend_password() -> None:
    url = f"redis://:{PASSWORD}@127.0.0.1:6379/3"
    shared = config(rate_backend=url, rate_key="reporting")
    pacer = RedisPacer.for_tenant(shared)

    shown = repr(shared) + repr(pacer)
    await pacer.aclose()

    assert "rate_backend='redis://***@127.0.0.1:6379/3'" in repr(shared)
    assert repr(pacer) == (
        "<RedisPacer 20 req/s via redis://***@127.0.0.1:6379/3, key 'reporting', "
        "shared>"
    )
    assert PASSWORD not in shown


async def test_the_tenant_key_is_the_api_address_and_client_id_never_the_secret():
    digest = hashlib.sha256(f"{API}\ndemo".encode()).hexdigest()[:24]
    one = config(rate_backend="redis://127.0.0.1:6379")
    other_secret = one.with_changes(client_secret="another-secret")
    other_client = one.with_changes(client_id="reporting")

    pacers = [RedisPacer.for_tenant(c) for c in (one, other_secret, other_client)]
    keys = [pacer.key for pacer in pacers]
    for pacer in pacers:
        await pacer.aclose()

    assert tenant_key(API, "demo") == digest
    assert keys == [
        digest,
        digest,
        hashlib.sha256(f"{API}\nreporting".encode()).hexdigest()[:24],
    ]
    assert schedule_keys(digest) == (
        f"powerp:{{{digest}}}:schedule",
        f"powerp:{{{digest}}}:members",
    )


def test_the_examples_run() -> None:
    from powerp_async import _rate_backend
    from powerp_async.redis_pacing import _adaptive, _pacer

    modules = (_pacer, _adaptive, _rate_backend)
    outcomes = [doctest.testmod(module) for module in modules]

    assert [(o.failed, o.attempted) for o in outcomes] == [(0, 1), (0, 1), (0, 1)]


def test_spacings_are_whole_microseconds_never_shorter_than_the_rate() -> None:
    assert [spacing_us(rate) for rate in (50, 30, 500, 7, 0.5)] == [
        20_000,
        33_334,
        2_000,
        142_858,
        2_000_000,
    ]


def test_the_core_never_imports_redis() -> None:
    script = (
        "import sys\n"
        "import powerp_async, powerp_async.cli\n"
        "from powerp_async import ClientConfig, PowerPClient\n"
        "url = 'http://127.0.0.1:8765/rt-api/api'\n"
        "PowerPClient(ClientConfig('a', 's', base_url=url))\n"
        "PowerPClient(ClientConfig('a', 's', base_url=url, adaptive=False,"
        " max_rate=5))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'redis'))\n"
    )

    assert python_output(script) == "[]\n"


def test_a_backend_without_the_extra_says_what_to_install() -> None:
    script = (
        "import sys\n"
        "sys.modules['redis'] = None  # as if the extra were not installed\n"
        "from powerp_async import ClientConfig, ConfigurationError, PowerPClient\n"
        "config = ClientConfig('a', 's', base_url='http://127.0.0.1:8765/rt-api/api',"
        " adaptive=False, max_rate=5, rate_backend='redis://127.0.0.1:6379')\n"
        "try:\n"
        "    PowerPClient(config)\n"
        "except ConfigurationError as error:\n"
        "    print(error)\n"
    )

    assert python_output(script) == (
        "rate_backend: expected the redis extra to be installed, got no 'redis' "
        "module; pip install 'powerp-async[redis]'\n"
    )


def test_the_command_names_the_option_and_masks_the_password(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"

    adaptive = powerp(
        "export", "--out", str(tmp_path / "x"), "--demo", "--rate-backend", url
    )
    elsewhere = powerp("measurements", "--demo", "--rate-backend", url)

    assert adaptive.returncode == elsewhere.returncode == 2
    assert adaptive.stderr == (
        f"powerp: error: --rate-backend: redis://***@127.0.0.1:{port}/0 is "
        f"unreachable (Error 111 connecting to 127.0.0.1:{port}. Connect call failed "
        f"('127.0.0.1', {port}).); a shared pace needs its Redis server running when "
        "the run starts\n"
    )
    assert elsewhere.stderr == (
        "powerp: error: unrecognized arguments: --rate-backend "
        f"redis://***@127.0.0.1:{port}/0 (see powerp --help)\n"
    )
    assert PASSWORD not in adaptive.stdout + elsewhere.stdout


def test_a_backend_unreachable_at_the_start_is_refused_before_any_fetch(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"

    result = powerp(
        "export", "--demo", "--since", "5m", "--window", "1m", "--database", "1",
        "--fixed-rate", "20", "--rate-backend", url, "--out", str(tmp_path / "x"),
    )  # fmt: skip

    assert result.returncode == 2
    assert result.stderr == (
        f"powerp: error: --rate-backend: redis://***@127.0.0.1:{port}/0 is "
        f"unreachable (Error 111 connecting to 127.0.0.1:{port}. Connect call failed "
        f"('127.0.0.1', {port}).); a shared pace needs its Redis server running when "
        "the run starts\n"
    )
    assert result.stdout == ""
    assert not (tmp_path / "x").exists()


def test_a_backend_lost_after_the_start_is_told_without_verbose(
    tmp_path: Path,
) -> None:
    redis_url_or_skip()
    # The server answers the check at the start and refuses every booking after it,
    # as one that went away would: the run goes on alone, and says so.
    rules = tmp_path / "users.acl"
    rules.write_text("user default on nopass ~* &* +@all -evalsha -eval\n")

    with own_redis_server(None, None, "--aclfile", str(rules)) as (_, port):
        url = f"redis://127.0.0.1:{port}/0"
        result = powerp(
            "export", "--demo", "--since", "5m", "--window", "1m", "--database", "1",
            "--index", "1", "--fixed-rate", "20", "--rate-backend", url,
            "--out", str(tmp_path / "x"), "--quiet",
        )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert (
        f"WARNING powerp_async.redis_pacing: rate backend {url} answered an error ("
        in result.stderr
    )
    assert result.stderr.count("answered an error") == 1
    assert "unreachable" not in result.stderr


async def test_a_client_refuses_a_backend_it_cannot_reach_and_closes_it() -> None:
    port = free_port()
    client = PowerPClient(config(rate_backend=f"redis://127.0.0.1:{port}/0"))

    with pytest.raises(ConfigurationError) as caught:
        await client.__aenter__()

    assert str(caught.value).startswith(
        f"rate_backend: redis://127.0.0.1:{port}/0 is unreachable (Error 111 "
    )
    assert repr(client) == "<PowerPClient http://127.0.0.1:8765/rt-api/api closed>"


def test_a_wrong_key_is_named_by_its_option(tmp_path: Path) -> None:
    done = powerp(
        *("export", "--out", str(tmp_path / "x"), "--demo", "--fixed-rate", "5"),
        *("--rate-backend", "redis://127.0.0.1:6379", "--rate-key", "two words"),
    )

    assert done.returncode == 2
    assert done.stderr == (
        "powerp: error: --rate-key: expected 1 to 200 printable characters without "
        "spaces, got 'two words'\n"
    )


@pytest.mark.parametrize("mode", [0o644, 0o600])
def test_a_backend_password_in_a_file_others_can_read_is_refused(
    tmp_path: Path, mode: int
) -> None:
    path = tmp_path / "powerp.toml"
    path.write_text(
        f'client_id = "a"\nadaptive = false\nmax_rate = 5\n'
        f'rate_backend = "redis://:{PASSWORD}@127.0.0.1:6379/0"\n',
        encoding="utf-8",
    )
    path.chmod(mode)
    environ = {"POWERP_CLIENT_SECRET": "s"}

    if mode == 0o600:
        assert ClientConfig.from_toml(path, environ).rate_backend.endswith("6379/0")
        return
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, environ)
    assert str(caught.value) == (
        f"{path} holds a password in rate_backend but can be read or changed by "
        f"group or others (mode 644); run 'chmod 600 {path}'"
    )


async def test_redis_away_from_the_start_paces_alone_and_says_so_once(caplog) -> None:
    caplog.set_level(logging.INFO, logger="powerp_async")
    port = free_port()  # nothing listens there
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    pacer = RedisPacer(url, 200, key=fresh_key(), rejoin_every_s=0.01)

    for _ in range(5):
        async with pacer.permit() as permit:
            permit.succeeded()
    await pacer.aclose()

    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1
    assert warnings[0].startswith(
        f"rate backend redis://***@127.0.0.1:{port}/0 unreachable ("
    )
    assert warnings[0].endswith(
        "): pacing this process alone at 200 req/s, its share (1/1) of 200, until "
        "it is back"
    )
    assert (pacer.shared, pacer.rate, pacer.in_flight) == (False, 200, 0)
    assert PASSWORD not in caplog.text


# Against a real Redis server (skipped without one).


async def test_concurrent_bookings_follow_one_schedule_without_a_burst() -> None:
    url = redis_url_or_skip()
    key, spacing = fresh_key(), spacing_us(50)
    connections = [Redis.from_url(url) for _ in range(4)]
    schedules = [
        SharedSchedule(c, key, f"process-{n}", member_ttl_s=5)
        for n, c in enumerate(connections)
    ]

    async def book_ten(schedule: SharedSchedule):
        return [await schedule.book(spacing) for _ in range(10)]

    rounds = await asyncio.gather(*(book_ten(s) for s in schedules))
    last = [await s.book(spacing) for s in schedules]
    for connection in connections:
        await connection.aclose()

    bookings = sorted((b for r in rounds for b in r), key=lambda b: b.slot_us)
    slots = [b.slot_us for b in bookings]
    first = bookings[0]
    assert first.slot_us == first.now_us  # the first slot is now: no burst, no wait
    assert [b - a for a, b in itertools.pairwise(slots)] == [spacing] * 39
    assert slots[-1] - slots[0] == 39 * 20_000  # (N - 1) / R of Redis time
    assert all(b.slot_us >= b.now_us for b in bookings)  # none earlier than booked
    assert [b.live for b in last] == [4, 4, 4, 4]
    assert last[0].slot_us == slots[-1] + spacing


async def test_a_pause_restarts_the_schedule_and_a_short_delay_keeps_it() -> None:
    url = redis_url_or_skip()
    spacing = spacing_us(10)  # 100 ms: the catch-up allowance is one spacing
    async with Redis.from_url(url) as connection:
        schedule = SharedSchedule(connection, fresh_key(), "p", member_ttl_s=5)
        first = await schedule.book(spacing)
        await asyncio.sleep(0.13)  # 30 ms past the next slot: within the allowance
        kept = await schedule.book(spacing)
        await asyncio.sleep(0.35)  # past the allowance: the schedule restarts
        restarted = await schedule.book(spacing)
        delayed = await schedule.book(spacing, not_before_us=250_000)

    assert spacing > CATCH_UP_US
    assert kept.slot_us == first.slot_us + spacing
    assert kept.wait_s == 0  # caught up: sent at once
    assert restarted.slot_us == restarted.now_us
    assert delayed.slot_us == delayed.now_us + 250_000


async def test_a_server_without_the_script_gets_its_text_once() -> None:
    url = redis_url_or_skip()
    async with Redis.from_url(url) as connection:
        await connection.script_flush()
        schedule = SharedSchedule(connection, fresh_key(), "p", member_ttl_s=5)
        first = await schedule.book(1_000)
        loaded = await connection.script_exists(RESERVE_SHA)
        second = await schedule.book(1_000)

    assert first.slot_us == first.now_us
    assert loaded == [True]
    assert second.slot_us == first.slot_us + 1_000


async def test_processes_count_while_they_book_and_leave_on_close() -> None:
    url = redis_url_or_skip()
    key = fresh_key()
    async with Redis.from_url(url) as connection:
        lasting = SharedSchedule(connection, key, "lasting", member_ttl_s=30)
        brief = SharedSchedule(connection, key, "brief", member_ttl_s=0.2)
        leaving = SharedSchedule(connection, key, "leaving", member_ttl_s=30)
        await brief.book(1_000)
        await leaving.book(1_000)
        together = await lasting.book(1_000)
        await leaving.leave()
        await asyncio.sleep(0.3)  # brief's membership expires
        alone = await lasting.book(1_000)
        members = await connection.zrange(schedule_keys(key)[1], 0, -1)

    assert (together.live, alone.live) == (3, 1)
    assert members == [b"lasting"]


async def test_a_killed_redis_leaves_the_pacer_alone_until_it_is_back(caplog):
    redis_url_or_skip()
    caplog.set_level(logging.INFO, logger="powerp_async")
    port = free_port()
    url = f"redis://:{PASSWORD}@127.0.0.1:{port}/0"
    key = fresh_key()

    with own_redis_server(port, PASSWORD) as (server, _):
        other = RedisPacer(url, 200, key=key)
        pacer = RedisPacer(url, 200, key=key, rejoin_every_s=0.05)
        async with other.permit(), pacer.permit():
            pass
        async with pacer.permit():
            shared_before = (pacer.shared, pacer.live_processes, pacer.rate)
        os.kill(server.pid, signal.SIGKILL)
        server.wait(timeout=10)
        for _ in range(3):
            async with pacer.permit():
                pass
        alone = (pacer.shared, pacer.live_processes, pacer.rate)

    with own_redis_server(port, PASSWORD):
        permits_to_rejoin = 0
        while not pacer.shared and permits_to_rejoin < 200:
            async with pacer.permit():
                permits_to_rejoin += 1
        await pacer.aclose()
        await other.aclose()

    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    warnings = [m for level, m in messages if level == "WARNING"]
    assert shared_before == (True, 2, 200)
    assert alone == (False, 2, 100)
    assert pacer.shared
    assert 1 <= permits_to_rejoin < 200
    assert len(warnings) == 1
    assert warnings[0].endswith(
        "pacing this process alone at 100 req/s, its share (1/2) of 200, until it "
        "is back"
    )
    assert (
        "INFO",
        f"rate backend redis://***@127.0.0.1:{port}/0 is back: sharing 200 req/s again",
    ) in messages
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize(
    ("url", "shown", "why"),
    [
        (
            "redis://127.0.0.1:{port}/0",
            "redis://127.0.0.1:{port}/0",
            "the URL gives no password and the server wants one",
        ),
        (
            "redis://:wrong-pw-123@127.0.0.1:{port}/0",
            "redis://***@127.0.0.1:{port}/0",
            "wrong user or password",
        ),
        (
            f"redis://someone:{PASSWORD}@127.0.0.1:{{port}}/0",
            "redis://***@127.0.0.1:{port}/0",
            "wrong user or password",
        ),
        (
            "redis://127.0.0.1:{port}/0?password=wrong-77",
            "redis://127.0.0.1:{port}/0?password=***",
            "wrong user or password",
        ),
    ],
)
async def test_a_backend_refusing_the_credentials_is_refused_masked(
    url: str, shown: str, why: str
) -> None:
    redis_url_or_skip()
    with own_redis_server(password=PASSWORD) as (_, port):
        pacer = RedisPacer(url.format(port=port), 20, key="k")
        with pytest.raises(ConfigurationError) as caught:
            await pacer.acheck()
        await pacer.aclose()

    assert str(caught.value) == (
        f"rate_backend: {shown.format(port=port)} refused the credentials ({why}): "
        "check the user and password in the URL"
    )


@pytest.mark.parametrize("option", ["db=x", "socket_timeout=abc"])
def test_a_query_option_redis_cannot_read_is_refused_by_name(option: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RedisPacer(f"redis://:{PASSWORD}@127.0.0.1:6379/0?{option}", 20, key="k")

    name = option.partition("=")[0]
    assert str(caught.value) == (
        f"rate_backend: redis://***@127.0.0.1:6379/0?{option}: Invalid value for "
        f"'{name}' in connection URL."
    )


@pytest.mark.parametrize("adaptive", [False, True])
async def test_keys_holding_another_kind_of_value_are_refused_at_the_start(
    adaptive: bool,
) -> None:
    url = redis_url_or_skip()
    key = fresh_key()
    held = f"powerp:{{{key}}}:{'adaptive' if adaptive else 'schedule'}"
    redis = Redis.from_url(url)
    if adaptive:
        await redis.set(held, "x")  # where a hash belongs
    else:
        await redis.hset(held, "x", "1")  # where a string belongs
    pacer = (
        AdaptiveRedisPacer(url, key=key) if adaptive else RedisPacer(url, 20, key=key)
    )

    with pytest.raises(ConfigurationError) as caught:
        await pacer.acheck()
    await pacer.aclose()
    await redis.delete(held)
    await redis.aclose()

    found, kept = ("string", "hash") if adaptive else ("hash", "string")
    assert str(caught.value) == (
        f"rate_backend: {mask_url(url)}: key {held!r} holds a {found}, where the "
        f"shared pace of tenant {key!r} keeps a {kept}; delete it, or name another "
        "tenant key (rate_key, --rate-key)"
    )


async def test_a_backend_answering_an_error_is_refused_saying_so() -> None:
    url = redis_url_or_skip()
    base = url.rsplit("/", 1)[0] if url.count("/") > 2 else url
    pacer = RedisPacer(f"{base}/999999", 20, key="k")

    with pytest.raises(ConfigurationError) as caught:
        await pacer.acheck()
    await pacer.aclose()

    assert str(caught.value) == (
        f"rate_backend: {mask_url(base)}/999999 answered the connection check with an "
        "error (DB index is out of range)"
    )


async def test_a_pacer_counts_as_it_opens_before_its_first_booking() -> None:
    url = redis_url_or_skip()
    key = fresh_key()
    first, second = RedisPacer(url, 20, key=key), RedisPacer(url, 20, key=key)

    await first.acheck()
    alone = first.live_processes
    await second.acheck()
    async with first.permit():
        pass
    await first.aclose()
    await second.aclose()

    assert (alone, second.live_processes, first.live_processes) == (1, 2, 2)


async def test_a_backend_that_answers_passes_the_check_and_is_shared() -> None:
    url = redis_url_or_skip()
    pacer = RedisPacer(url, 20, key=fresh_key())

    await pacer.acheck()
    async with pacer.permit():
        pass
    await pacer.aclose()

    assert (pacer.shared, pacer.live_processes) == (True, 1)


FAR_WAIT: Final = re.compile(
    r"rate backend (?P<url>\S+), key '(?P<key>[^']+)': a booked slot is "
    r"(?P<wait>[0-9.]+) s away, (?P<times>\d+) times what (?P<rate>[0-9.]+) req/s "
    r"for (?P<live>\d) process(es)? implies; do all of them share the same rate\? "
    r"Each wait is cut at (?P<cut>[0-9.]+) s, after which the request goes"
)


def far_waits(caplog) -> list[dict[str, str]]:
    messages = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    found = [FAR_WAIT.fullmatch(message) for message in messages]
    assert None not in found, messages
    return [match.groupdict() for match in found if match is not None]


async def test_a_process_paced_by_a_slower_rate_on_its_key_says_so_once(
    caplog,
) -> None:
    url = redis_url_or_skip()
    key = fresh_key()
    slow = RedisPacer(url, 4, key=key)
    fast = RedisPacer(url, 40, key=key)

    async def take(pacer: RedisPacer, permits: int) -> None:
        for _ in range(permits):
            async with pacer.permit():
                pass

    with anyio.fail_after(20):
        async with anyio.create_task_group() as group:
            group.start_soon(take, slow, 4)
            group.start_soon(take, fast, 6)
    await slow.aclose()
    await fast.aclose()

    (told,) = far_waits(caplog)
    assert (told["url"], told["key"]) == (mask_url(url), key)
    assert (told["rate"], told["live"], told["cut"]) == ("40", "2", "60")
    assert int(told["times"]) >= 4


async def test_a_slot_further_ahead_than_any_wait_is_started_afresh(caplog) -> None:
    url = redis_url_or_skip()
    key = fresh_key()
    async with Redis.from_url(url) as connection:
        seconds, micros = await connection.time()
        far_us = seconds * 1_000_000 + micros + 200_000_000  # 200 s ahead
        await connection.set(schedule_keys(key)[0], far_us, px=60_000)
    pacer = RedisPacer(url, 20, key=key, max_wait_s=0.3)

    started = time.monotonic()
    async with pacer.permit():
        pass
    async with pacer.permit():
        pass
    await pacer.aclose()

    assert time.monotonic() - started < 1.0
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"rate backend {mask_url(url)}, key {key!r}: the shared schedule held a slot "
        "further ahead than any process waits for, which no powerp process books; it "
        "was started afresh"
    ]
