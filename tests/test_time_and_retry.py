"""Durations, wire times, Retry-After and backoff."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from powerp_async._redact import excerpt, mask_url
from powerp_async._retry import MAX_RETRY_AFTER_S, backoff_s, parse_retry_after
from powerp_async._time import (
    format_duration,
    format_wire,
    parse_duration_us,
    parse_wire,
    to_epoch_us,
)


@pytest.mark.parametrize(
    ("text", "us"),
    [
        ("200ms", 200_000),
        ("1s", 1_000_000),
        ("7s", 7_000_000),
        ("1m30s", 90_000_000),
        ("2h", 7_200_000_000),
        ("1d", 86_400_000_000),
        ("250us", 250),
    ],
)
def test_durations(text: str, us: int) -> None:
    assert parse_duration_us(text) == us
    assert parse_duration_us(format_duration(us)) == us


@pytest.mark.parametrize("text", ["", "10", "1.5s", "s", "0s", "-1s", "1 fortnight"])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration_us(text)


def test_wire_format_is_z_and_never_offset_then_z() -> None:
    aware = datetime(2026, 12, 4, 10, 0, tzinfo=timezone(timedelta(hours=1)))

    assert format_wire(to_epoch_us(aware)) == "2026-12-04T09:00:00Z"
    assert format_wire(to_epoch_us(datetime(2026, 12, 4, 9, 0, 0, 5))) == (
        "2026-12-04T09:00:00.000005Z"
    )


@pytest.mark.parametrize(
    "text",
    [
        "2026-12-04T10:00:00.5Z",
        "2026-12-04T10:00:00.500000+00:00",
        "2026-12-04T11:00:00.500000001+01:00",
        "2026-12-04T10:00:00.5z",
    ],
)
def test_wire_times_in_every_accepted_spelling(text: str) -> None:
    expected = to_epoch_us(datetime(2026, 12, 4, 10, 0, 0, 500_000, tzinfo=UTC))
    assert parse_wire(text) == expected


def test_malformed_wire_time() -> None:
    with pytest.raises(ValueError, match="invalid time '2026-13-01"):
        parse_wire("2026-13-01T00:00:00Z")


NOW = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({}, None),
        ({"Retry-After": "3"}, 3.0),
        ({"Retry-After": "0.25"}, 0.25),
        ({"Retry-After": " 2 "}, 2.0),
        ({"Retry-After": "-1"}, None),
        ({"Retry-After": "nan"}, None),
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "soon"}, None),
        ({"Retry-After": "1m0s"}, None),
        ({"Retry-After": "99999"}, MAX_RETRY_AFTER_S),
        ({"Retry-After": "Fri, 04 Dec 2026 10:00:07 GMT"}, 7.0),
        # Against the response's Date, not the local clock (here 1 h off).
        (
            {
                "Retry-After": "Fri, 04 Dec 2026 11:00:05 GMT",
                "Date": "Fri, 04 Dec 2026 11:00:00 GMT",
            },
            5.0,
        ),
        ({"Retry-After": "Fri, 04 Dec 2026 09:00:00 GMT"}, None),
    ],
)
def test_retry_after_in_every_form(
    headers: dict[str, str], seconds: float | None
) -> None:
    assert parse_retry_after(headers, now=NOW) == seconds


def test_backoff_is_full_jitter_under_a_growing_cap() -> None:
    rng = random.Random(7)
    draws = [[backoff_s(n, rng=rng) for _ in range(200)] for n in range(8)]

    assert all(0 <= d < min(30.0, 0.5 * 2**n) for n, ds in enumerate(draws) for d in ds)
    assert max(draws[7]) > 20  # capped at 30 s, not at 64 s, yet spread up to it
    assert min(draws[7]) < 5


def test_masking_of_urls_and_bodies() -> None:
    assert mask_url(
        "https://user:pw@host.example/rt-api/api?client_secret=abc&x=1"
    ) == ("https://***@host.example/rt-api/api?client_secret=***&x=1")
    # A password with an unescaped /, #, ? or @ ends urlsplit's host part early.
    assert mask_url("redis://user:Pa/ssSECRET@127.0.0.1:6379/0") == (
        "redis://***@127.0.0.1:6379/0"
    )
    assert mask_url("redis://:pw:With@Odd/chars@127.0.0.1:16392/0") == (
        "redis://***@127.0.0.1:16392/0"
    )
    assert mask_url("redis://:sec#ret@127.0.0.1/0") == "redis://***@127.0.0.1/0"
    assert mask_url("redis://:a?b@[::1]:6379") == "redis://***@[::1]:6379"
    assert mask_url("http://u:pw@127.0.0.1:9/api?token=t0k#fr4gment") == (
        "http://***@127.0.0.1:9/api?token=***#***"
    )
    assert mask_url("http://127.0.0.1:9/api#access_token=t0k") == (
        "http://127.0.0.1:9/api#***"
    )
    body = b"<html>\x00\x1b[31m Bearer abc.def-123 " + b"x" * 500
    shown = excerpt(body)
    assert "abc.def-123" not in shown
    assert "\x1b" not in shown
    assert "\x00" not in shown
    assert shown.startswith("<html>")
    assert len(shown) <= 200
