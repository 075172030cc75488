"""Answers from a misbehaving server: each one tolerated, retried, or a clear error."""

from __future__ import annotations

import asyncio
import gzip
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from powerp_async import Measurement, PowerPClient
from powerp_async._engine import RunStats
from powerp_async._http import _CHUNK_BYTES, AnswerTooLongError, _Body
from powerp_async._time import format_wire, parse_wire
from powerp_async.errors import (
    BadRequestError,
    FetchFailedError,
    MalformedResponseError,
    PermissionDeniedError,
    ServerError,
    TransportError,
)
from powerp_async.events import (
    BlockDone,
    ControlChanged,
    PaceChanged,
    RequestDone,
    RetryScheduled,
)

START = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
GOOD = [
    {"index": "1", "value": 1.5, "timestamp": "2026-12-04T10:00:01Z"},
    {"index": "1", "value": 2.5, "timestamp": "2026-12-04T10:00:02Z"},
]


@dataclass
class ScriptedServer:
    """Answers queries from a script, one entry per request; the last one repeats."""

    script: list[Callable[[web.Request], object]] = field(default_factory=list)
    queries: int = 0
    listing: list[Callable[[web.Request], object]] = field(default_factory=list)
    listings: int = 0

    async def token(self, request: web.Request) -> web.Response:
        return web.json_response({"access_token": "tok", "expires_in": 3600})

    async def measurements(self, request: web.Request) -> web.StreamResponse:
        step = self.listing[min(self.listings, len(self.listing) - 1)]
        self.listings += 1
        return step(request)  # type: ignore[return-value]

    async def query(self, request: web.Request) -> web.StreamResponse:
        step = self.script[min(self.queries, len(self.script) - 1)]
        self.queries += 1
        answer = step(request)
        if asyncio.iscoroutine(answer):
            answer = await answer
        return answer  # type: ignore[return-value]


def good(request: web.Request) -> web.Response:
    return web.Response(body=orjson.dumps(GOOD), content_type="application/json")


def status(code: int, body: bytes = b"", content_type: str = "text/html"):
    return lambda request: web.Response(
        status=code, body=body, content_type=content_type
    )


async def reset_mid_body(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"Content-Type": "application/json"})
    answer.content_length = 10_000
    await answer.prepare(request)
    await answer.write(b'[{"index": "1", "value": 1.5, "times')
    request.transport.close()
    return answer


async def trickle(request: web.Request) -> web.StreamResponse:
    answer = web.StreamResponse(headers={"Content-Type": "application/json"})
    await answer.prepare(request)
    for byte in orjson.dumps(GOOD)[:20]:
        await answer.write(bytes([byte]))
        await asyncio.sleep(0.2)
    return answer


def compressed_badly(encoding: str, body: bytes):
    """A 200 whose body says it is compressed as ``encoding`` but cannot be undone."""
    return lambda request: web.Response(
        body=body,
        headers={"Content-Encoding": encoding, "Content-Type": "application/json"},
    )


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[ScriptedServer, str]]:
    fake = ScriptedServer()
    app = web.Application()
    app.router.add_post("/rt-api/api/v1/auth/token", fake.token)
    app.router.add_post("/rt-api/api/v1/Query", fake.query)
    app.router.add_get("/rt-api/api/v1/measurements", fake.measurements)
    async with TestServer(app, host="127.0.0.1") as server:
        yield fake, str(server.make_url("/rt-api/api"))


def client_for(base_url: str, **settings: object) -> PowerPClient:
    return PowerPClient(
        client_id="x",
        client_secret="y",
        base_url=base_url,
        initial_rate=100,
        max_attempts=3,
        **settings,
    )


async def query(client: PowerPClient):
    return await client.query(
        1, ["1"], START, START + timedelta(seconds=2), window="1s"
    )


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch) -> None:
    monkeypatch.setattr("powerp_async._engine.backoff_s", lambda attempt: 0.0)


@pytest.mark.parametrize(
    "failure",
    [
        status(502, b"<html><body>Bad Gateway</body></html>"),
        status(504, b""),
        status(500, b'{"error": "boom"}', "application/json"),
        status(200, b'[{"index": "1", "value": 1.5, "timest', "application/json"),
        status(200, b"", "application/json"),
        reset_mid_body,
        status(408, b""),  # the server gave up waiting for the request
        status(425, b"Too Early", "text/plain"),
    ],
    ids=[
        "502-html",
        "504-empty",
        "500-json",
        "cut-json",
        "empty-200",
        "reset",
        "408",
        "425",
    ],
)
async def test_transient_failures_are_retried_then_succeed(scripted, failure) -> None:
    fake, base_url = scripted
    fake.script = [failure, good]

    async with client_for(base_url) as client:
        table = await query(client)

    assert table.column("value_float").to_pylist() == [1.5, 2.5]
    assert fake.queries == 2


@pytest.mark.parametrize(
    ("failure", "kind", "says"),
    [
        (
            status(502, b"<html><body>Bad Gateway</body></html>"),
            ServerError,
            "HTTP 502: <html><body>Bad Gateway</body></html>",
        ),
        (status(504, b""), ServerError, "HTTP 504 with an empty body"),
        (
            status(200, b'{"items": []}', "application/json"),
            MalformedResponseError,
            "expected a JSON array of points, got a JSON object",
        ),
        (reset_mid_body, TransportError, "the connection broke while reading"),
    ],
    ids=["502", "504", "object", "reset"],
)
async def test_persistent_failures_end_in_a_typed_error(
    scripted, failure, kind, says
) -> None:
    fake, base_url = scripted
    fake.script = [failure]

    async with client_for(base_url) as client:
        with pytest.raises(kind, match=says.replace("(", r"\(")):
            await query(client)

    assert fake.queries == 3  # max_attempts


async def test_a_query_answered_out_of_order_comes_sorted(scripted) -> None:
    fake, base_url = scripted
    fake.script = [
        lambda request: web.Response(
            body=orjson.dumps(GOOD[::-1]), content_type="application/json"
        )
    ]

    async with client_for(base_url) as client:
        table = await query(client)

    assert table.column("value_float").to_pylist() == [1.5, 2.5]


async def test_wrong_content_type_with_good_json_is_accepted(scripted) -> None:
    fake, base_url = scripted
    fake.script = [status(200, orjson.dumps(GOOD), "text/plain")]

    async with client_for(base_url) as client:
        table = await query(client)

    assert table.num_rows == 2


async def test_a_trickle_slower_than_the_timeout_is_a_timeout(scripted) -> None:
    fake, base_url = scripted
    fake.script = [trickle, good]

    async with client_for(base_url, timeout_s=0.5) as client:
        table = await query(client)

    assert table.num_rows == 2
    assert fake.queries == 2


async def test_forbidden_names_the_database_not_the_token(scripted) -> None:
    fake, base_url = scripted
    fake.script = [status(403, b'{"error": "forbidden"}', "application/json")]

    async with client_for(base_url) as client:
        with pytest.raises(PermissionDeniedError) as caught:
            await query(client)

    assert "database 1" in str(caught.value)
    assert "tok" not in str(caught.value).replace("token", "")
    assert fake.queries == 1  # never retried


async def test_points_already_fetched_survive_a_failed_block(scripted) -> None:
    fake, base_url = scripted
    fake.script = [good, status(403, b"no")]
    signals_done = []

    async def fetch_both(client: PowerPClient) -> None:
        async with client.fetch(
            [Measurement(1, "1"), Measurement(1, "2")],
            START,
            START + timedelta(seconds=2),
            block_size=1,
        ) as results:
            async for result in results:
                signals_done.append(result.block.indexes)

    async with client_for(base_url, max_in_flight=1) as client:
        with pytest.raises(FetchFailedError) as caught:
            await fetch_both(client)

    assert signals_done == [("1",)]
    assert [b.indexes for b, _ in caught.value.failures] == [("2",)]


async def test_a_database_refused_to_many_blocks_at_once_is_not_searched_by_each(
    scripted,
) -> None:
    fake, base_url = scripted
    fake.script = [status(403, b'{"error": "forbidden"}', "application/json")]
    signals = [Measurement(7, str(n)) for n in range(20)]
    end = START + timedelta(minutes=29 * 40)  # 40 slices of 29 one-minute windows

    async def fetch_all(client: PowerPClient) -> None:
        async with client.fetch(signals, START, end, window="1m") as results:
            async for _ in results:
                pass

    async with client_for(base_url, max_in_flight=8) as client:
        with pytest.raises(FetchFailedError) as caught:
            await fetch_all(client)

    # 40 blocks of 20 signals: the first refused is searched down to quarters (six
    # queries more), which takes the database as forbidden; the blocks refused
    # meanwhile wait for that search and are not searched again.
    assert len(caught.value.failures) == 40
    assert fake.queries <= 7 + 8 * 2


async def test_a_forbidden_database_is_asked_once(scripted) -> None:
    fake, base_url = scripted

    def by_database(request: web.Request):
        async def answer() -> web.Response:
            body = await request.json()
            if body["databaseId"] == 7:
                return web.json_response({"error": "forbidden"}, status=403)
            return good(request)

        return answer()

    fake.script = [by_database]
    signals = [Measurement(7, str(n)) for n in range(5)] + [Measurement(1, "1")]

    async def fetch_all(client: PowerPClient) -> None:
        async with client.fetch(
            signals, START, START + timedelta(seconds=2), block_size=1
        ) as results:
            async for _ in results:
                pass

    async with client_for(base_url, max_in_flight=1) as client:
        with pytest.raises(FetchFailedError) as caught:
            await fetch_all(client)

    failures = caught.value.failures
    assert [b.database_id for b, _ in failures] == [7] * 5
    assert all(isinstance(error, PermissionDeniedError) for _, error in failures)
    # A 403 for one signal may be about that signal: four of them, never one answer,
    # make the database forbidden; its fifth block is not asked, then database 1.
    assert fake.queries == 5


async def test_a_run_whose_every_query_is_refused_stops_early(scripted) -> None:
    fake, base_url = scripted
    fake.script = [status(400, b'{"error": "bad windowPeriod"}', "application/json")]
    signals = [Measurement(1, str(n)) for n in range(40)]

    async def fetch_all(client: PowerPClient) -> None:
        async with client.fetch(
            signals, START, START + timedelta(seconds=2), block_size=1
        ) as results:
            async for _ in results:
                pass

    async with client_for(base_url, max_in_flight=1) as client:
        with pytest.raises(BadRequestError, match="every one was refused") as stopped:
            await fetch_all(client)

    # Queries of one signal may be refused for their signal: twenty before stopping.
    assert fake.queries == 20
    assert "(20 blocks given up)" in str(stopped.value)


@pytest.mark.parametrize(
    ("answer", "encoding"),
    [
        # An encoding not asked for, whether or not a package could undo it.
        (compressed_badly("br", b"not brotli at all"), "br"),
        # A gzip stream whose closing checksum and length are zeros.
        (
            compressed_badly("gzip", gzip.compress(orjson.dumps(GOOD))[:-8] + bytes(8)),
            "gzip",
        ),
        # One cut short, and one followed by bytes no stream holds.
        (compressed_badly("gzip", gzip.compress(orjson.dumps(GOOD))[:-3]), "gzip"),
        (
            compressed_badly("gzip", gzip.compress(orjson.dumps(GOOD)) + b"[]"),
            "gzip",
        ),
    ],
    ids=["br", "gzip-checksum", "gzip-cut", "gzip-trailing"],
)
async def test_a_body_that_cannot_be_decompressed_says_so(
    scripted, answer, encoding: str
) -> None:
    fake, base_url = scripted
    fake.script = [answer]

    async with client_for(base_url) as client:
        with pytest.raises(TransportError) as raised:
            await query(client)

    assert str(raised.value).endswith(
        f"/v1/Query: the answer's {encoding} body could not be decompressed"
    )
    assert fake.queries == 3  # max_attempts: a proxy's fault may pass


def bare_deflate(data: bytes) -> bytes:
    """``data`` as a deflate stream without zlib's header, as some servers send it."""
    packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", bare_deflate),
        ("GZIP ", gzip.compress),
        ("gzip", lambda data: gzip.compress(data[:9]) + gzip.compress(data[9:])),
    ],
    ids=[
        "gzip",
        "x-gzip",
        "deflate",
        "deflate-bare",
        "gzip-spelt-loosely",
        "gzip-two-members",
    ],
)
async def test_a_compressed_answer_is_read_whole(scripted, encoding, compress) -> None:
    fake, base_url = scripted
    fake.script = [compressed_badly(encoding, compress(orjson.dumps(GOOD)))]

    async with client_for(base_url) as client:
        table = await query(client)

    assert table.column("value_float").to_pylist() == [1.5, 2.5]


@pytest.mark.parametrize("body", [b"", b"not gzip at all"], ids=["empty", "garbled"])
async def test_a_refusal_whose_body_cannot_be_decompressed_is_still_a_refusal(
    scripted, body: bytes
) -> None:
    fake, base_url = scripted
    gzip_429 = web.Response(
        status=429,
        body=body,
        headers={"Content-Encoding": "gzip", "Retry-After": "0"},
    )
    fake.script = [lambda request: gzip_429, good]

    stats = RunStats()
    async with client_for(base_url) as client:
        table = await client.query(
            1, ["1"], START, START + timedelta(seconds=2), window="1s", stats=stats
        )

    assert table.column("value_float").to_pylist() == [1.5, 2.5]
    assert (stats.throttled, stats.transport_errors, fake.queries) == (1, 0, 2)


def test_a_gzip_bomb_is_stopped_within_a_piece_of_its_allowance() -> None:
    # 64 MiB of spaces in some 64 KiB: aiohttp expanded a packet of it whole.
    bomb = gzip.compress(b" " * (64 << 20), compresslevel=9)
    body = _Body("gzip", 1 << 20)

    def take_by_packets() -> None:
        for start in range(0, len(bomb), 1 << 16):
            body.take(bomb[start : start + (1 << 16)])

    with pytest.raises(AnswerTooLongError) as raised:
        take_by_packets()

    assert len(bomb) < 1 << 17
    assert (1 << 20) < raised.value.read_bytes <= (1 << 20) + _CHUNK_BYTES


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (
            b'[{"index": 1, "databaseId": 2}, null]',
            "expected each signal as a JSON object, got JSON null at position 1",
        ),
        (
            b'[{"index": 1, "databaseId": 2, "name": "\xff\xfe"}]',
            "expected a JSON array of signals, got a body that is not JSON (str is "
            "not valid UTF-8: ",
        ),
        (
            b'[{"index": 1, "data',
            "expected a JSON array of signals, got a body that is not JSON (",
        ),
        (b'{"items": []}', "expected a JSON array of signals, got a JSON object"),
    ],
    ids=["null-signal", "not-utf8", "cut", "object"],
)
async def test_a_listing_that_cannot_be_read_says_why(
    scripted, body: bytes, says: str
) -> None:
    fake, base_url = scripted
    fake.listing = [status(200, body, "application/json")]

    async with client_for(base_url) as client:
        with pytest.raises(MalformedResponseError) as raised:
            await client.measurements()

    assert str(raised.value).startswith(f"measurements: {says}")


async def test_listing_is_retried_after_a_server_error(scripted) -> None:
    fake, base_url = scripted
    fake.listing = [
        status(502, b"<html>gateway</html>"),
        status(200, b'[{"index": 1, "databaseId": 2}]', "application/json"),
    ]

    async with client_for(base_url) as client:
        signals = await client.measurements()

    assert signals == [Measurement(2, "1")]
    assert fake.listings == 2


def labelled_at_both_edges(request: web.Request):
    """A server that names every window by both edges: n + 1 points per block."""

    async def answer() -> web.Response:
        body = await request.json()
        start, end = parse_wire(body["startTime"]), parse_wire(body["endTime"])
        points = [
            {
                "index": "1",
                "value": float(stamp // 10**6),
                "timestamp": format_wire(stamp),
            }
            for stamp in range(start, end + 1, 10**6)
        ]
        return web.Response(body=orjson.dumps(points), content_type="application/json")

    return answer()


async def test_points_on_both_edges_never_duplicate_across_blocks(scripted) -> None:
    fake, base_url = scripted
    fake.script = [labelled_at_both_edges]
    end = START + timedelta(minutes=40)  # two slices of 20 minutes

    async with client_for(base_url) as client:
        table = await client.fetch_table([Measurement(1, "1")], START, end)

    stamps = table.column("timestamp").cast("int64").to_pylist()
    first, last = parse_wire("2026-12-04T10:00:01Z"), parse_wire("2026-12-04T10:40:00Z")
    assert stamps == list(range(first, last + 1, 10**6))  # stop labels, once each
    assert fake.queries == 2


async def test_events_tell_what_happened_in_order(scripted) -> None:
    fake, base_url = scripted
    fake.script = [status(502, b"<html>gateway</html>"), good]
    seen: list[object] = []

    async with PowerPClient(
        client_id="x",
        client_secret="y",
        base_url=base_url,
        initial_rate=100,
        on_event=seen.append,
    ) as client:
        await query(client)

    story = [e for e in seen if not isinstance(e, PaceChanged)]
    assert [type(e) for e in story] == [
        RequestDone,
        RetryScheduled,
        RequestDone,
        BlockDone,
    ]
    assert [story[0].status, story[2].status] == [502, 200]
    assert story[1].reason.startswith("database 1 last [1 signal 1]")
    assert "HTTP 502" in story[1].reason
    assert story[3].points == 2
    assert isinstance(seen[1], PaceChanged)
    assert seen[1].previous_rate == 0.0


async def test_a_throttle_reports_the_controller_leaving_start_up(scripted) -> None:
    fake, base_url = scripted
    fake.script = [status(429), good]
    seen: list[object] = []

    async with client_for(base_url, on_event=seen.append) as client:
        await query(client)

    changes = [e for e in seen if isinstance(e, ControlChanged)]
    assert [(c.mode, c.circuit, c.throttles) for c in changes] == [
        ("recovery", "closed", 1)
    ]
    # Nothing accepted before the 429: the rate of 100 is halved, then cut to 0.9.
    assert changes[0].rate == pytest.approx(45.0)


async def test_a_failing_event_hook_never_breaks_a_run(scripted, caplog) -> None:
    fake, base_url = scripted
    fake.script = [good]

    def broken(event: object) -> None:
        raise RuntimeError("observer bug")

    async with PowerPClient(
        client_id="x", client_secret="y", base_url=base_url, on_event=broken
    ) as client:
        table = await query(client)

    assert table.num_rows == 2
    assert caplog.text.count("the on_event hook failed") == 1
