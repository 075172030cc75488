"""The client secret and tokens never reach a log, an error, a repr or a file."""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import pickle
from datetime import timedelta
from pathlib import Path

import pytest

from powerp_async import ClientConfig, ExportSpec, PowerPClient, _redact, export
from powerp_async._redact import excerpt, remember_secret, scrub
from powerp_async._token import TokenManager
from powerp_async.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ServerError,
)

from .conftest import ANCHOR, CLIENT_SECRET


def every_byte_below(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


@pytest.fixture
def tokens(monkeypatch) -> list[str]:
    """Every token the client is issued during the test, to search output for."""
    issued: list[str] = []
    original = TokenManager._store

    def remember(self, answer, *rest):
        issued.append(answer["access_token"])
        original(self, answer, *rest)

    monkeypatch.setattr(TokenManager, "_store", remember)
    return issued


async def test_debug_export_with_token_renewals_leaks_nothing(
    simulator, tmp_path, caplog, capsys, tokens
) -> None:
    caplog.set_level(logging.DEBUG)
    spec = ExportSpec(
        out=tmp_path / "out",
        start=ANCHOR - timedelta(minutes=30),
        end=ANCHOR,
        window="10s",
        databases=(1,),
        rows_per_flush=5_000,
    )
    progress_lines = []

    async with PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        initial_rate=50,
    ) as client:

        def progress(stats, total):
            progress_lines.append(repr(stats))
            if len(progress_lines) == 2:
                simulator.revoke_tokens()  # forces a 401 and a renewal mid-run

        report = await export(client, spec, progress=progress)
        shown = repr(client) + repr(client.config) + repr(client._tokens)

    assert report.complete
    assert len(tokens) == 2  # the first, and the one after the 401
    written = every_byte_below(spec.out)
    text = caplog.text + capsys.readouterr().out + shown + "".join(progress_lines)
    assert "DEBUG" in caplog.text  # the log really was at its most verbose
    for secret in (CLIENT_SECRET, *tokens):
        assert secret not in text
        assert secret.encode() not in written


async def test_refused_credentials_do_not_echo_the_secret(simulator, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-a1b2c3"

    async with PowerPClient(
        client_id="tester", client_secret=wrong, base_url=simulator.base_url
    ) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.measurements()

    assert wrong not in str(caught.value) + repr(caught.value) + caplog.text


def test_credentials_in_the_base_url_are_refused_and_masked() -> None:
    url = f"https://me:{CLIENT_SECRET}@powerp.invalid/rt-api/api"

    with pytest.raises(ConfigurationError) as caught:
        PowerPClient(client_id="tester", client_secret="x", base_url=url)

    assert "https://***@powerp.invalid/rt-api/api" in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)


def test_a_configuration_taken_apart_shows_its_secret_masked() -> None:
    config = ClientConfig("tester", CLIENT_SECRET, base_url="http://127.0.0.1:9/api")

    fields = dataclasses.asdict(config)
    copied = copy.deepcopy(config)
    restored = pickle.loads(pickle.dumps(config))

    assert fields["client_secret"] == CLIENT_SECRET  # still the text to send
    assert repr(fields["client_secret"]) == "'***'"
    assert CLIENT_SECRET not in repr(fields) + str(fields)
    assert CLIENT_SECRET not in repr(dataclasses.replace(config, client_id="other"))
    assert f"{config.client_secret}" == CLIENT_SECRET
    assert repr(copied.client_secret) == repr(restored.client_secret) == "'***'"
    assert copied == restored == config


@pytest.mark.parametrize("tail", [f"?apikey={CLIENT_SECRET}", "?", "#section"])
def test_a_query_after_the_base_url_is_refused_and_not_shown(tail: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        PowerPClient(
            client_id="tester",
            client_secret="x",
            base_url=f"http://127.0.0.1:9/rt-api/api{tail}",
        )

    assert str(caught.value) == (
        "base_url: 'http://127.0.0.1:9/rt-api/api' is followed by a query or fragment "
        "('?...' or '#...'), which the API's paths cannot follow; remove it"
    )


ECHO_SECRET = "echo-s3cr3t/with+chars"


@pytest.fixture
async def echoing_server():
    """A server that echoes what it was sent in its errors: the form, the token."""
    from aiohttp import web
    from aiohttp.test_utils import TestServer

    seen = {"token_requests": 0, "redirected": 0}

    async def token(request: web.Request) -> web.Response:
        seen["token_requests"] += 1
        form = await request.text()
        if seen["token_requests"] <= 2:
            return web.Response(status=503, text=f"upstream choked on {form}")
        return web.json_response(
            {"access_token": "tok-ECHOED-9f8e7d", "expires_in": 60}
        )

    async def query(request: web.Request) -> web.Response:
        bearer = request.headers["Authorization"]
        return web.Response(status=500, text=f"invalid token {bearer.split()[1]}")

    async def elsewhere(request: web.Request) -> web.Response:
        seen["redirected"] += 1
        return web.json_response({"access_token": "stolen", "expires_in": 60})

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(location="/elsewhere")

    app = web.Application()
    app.router.add_post("/api/v1/auth/token", token)
    app.router.add_post("/api/v1/Query", query)
    app.router.add_post("/moved/v1/auth/token", redirect)
    app.router.add_post("/elsewhere", elsewhere)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/"), seen


async def test_secrets_echoed_by_a_server_are_masked(
    echoing_server, caplog, monkeypatch
) -> None:
    base, seen = echoing_server
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr("powerp_async._token.backoff_s", lambda attempt: 0.0)
    monkeypatch.setattr("powerp_async._engine.backoff_s", lambda attempt: 0.0)

    async with PowerPClient(
        client_id="tester",
        client_secret=ECHO_SECRET,
        base_url=f"{base}/api",
        initial_rate=100,
        max_attempts=2,
    ) as client:
        with pytest.raises(ServerError) as caught:
            await client.query(1, ["1"], ANCHOR, ANCHOR + timedelta(seconds=5))

    assert seen["token_requests"] == 3
    shown = caplog.text + str(caught.value) + caught.value.excerpt
    assert "upstream choked on client_id=tester&client_secret=***" in caplog.text
    assert "invalid token ***" in shown
    for secret in (ECHO_SECRET, "echo-s3cr3t%2Fwith%2Bchars", "tok-ECHOED-9f8e7d"):
        assert secret not in shown


async def test_redirects_are_not_followed_with_the_form(echoing_server) -> None:
    base, seen = echoing_server

    async with PowerPClient(
        client_id="tester", client_secret=ECHO_SECRET, base_url=f"{base}/moved"
    ) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.measurements()

    assert seen["redirected"] == 0
    # Where it points is said, so a moved API can be followed by hand.
    assert str(caught.value).startswith("token request: HTTP 307: ")
    assert str(caught.value).endswith(
        "; it redirects to /elsewhere, which is not followed: if that is where the "
        "API now lives, set the base URL to it"
    )


async def test_debug_export_through_faults_leaks_nothing(
    settings, tmp_path, caplog, monkeypatch, tokens
) -> None:
    from dataclasses import replace

    from powerp_async.simulator import Simulator, named_scenario

    monkeypatch.setattr("powerp_async._engine.backoff_s", lambda attempt: 0.01)
    caplog.set_level(logging.DEBUG)
    faulty = replace(settings, scenario=named_scenario("faults-5pct"), token_ttl_s=1)
    simulator = Simulator(faulty)
    spec = ExportSpec(
        out=tmp_path / "out",
        start=ANCHOR - timedelta(minutes=60),
        end=ANCHOR,
        window="10s",
        databases=(3,),
        block_size=5,
    )

    async with (
        simulator,
        PowerPClient(
            client_id="tester",
            client_secret=CLIENT_SECRET,
            base_url=simulator.base_url,
            initial_rate=50,
        ) as client,
    ):
        report = await export(client, spec)

    served = simulator.stats.snapshot()["requests"]["query"]
    assert report.complete
    assert sum(n for status, n in served.items() if status != "200") > 0  # faults met
    assert len(tokens) >= 2  # the short-lived token was renewed during the run
    written = every_byte_below(spec.out)
    for secret in (CLIENT_SECRET, *tokens):
        assert secret not in caplog.text
        assert secret.encode() not in written


@pytest.mark.parametrize(
    "secret", ['q"uo\\te-Zz9', "ünïcødé-sécret", "tab\tand/slash-Q7"]
)
def test_a_secret_echoed_inside_json_is_masked(secret: str) -> None:
    remember_secret(secret)
    echoed = [
        json.dumps({"got": secret}),
        json.dumps({"got": secret}, ensure_ascii=False),
    ]

    for body in echoed:
        assert excerpt(body) == '{"got": "***"}'
        assert scrub(f"HTTP 401: {body}") == 'HTTP 401: {"got": "***"}'


@pytest.mark.parametrize(
    "secret",
    ['q"uo\\te-Zz9', "Grüße-aus-Köln", "tab\tand/slash-Q7", "emoji-\U0001f512-k"],
)
@pytest.mark.parametrize("ascii_only", [True, False])
@pytest.mark.parametrize("depth", [2, 3])
def test_a_secret_echoed_in_json_inside_json_is_masked(
    secret: str, ascii_only: bool, depth: int
) -> None:
    # An error description that quotes the request's JSON: escaped twice, or thrice.
    remember_secret(secret)
    body: object = {"client_secret": secret}
    for _ in range(depth):
        body = json.dumps({"echo": body}, ensure_ascii=ascii_only)

    shown = scrub(f"HTTP 401: {body}")

    assert _innermost(shown.removeprefix("HTTP 401: ")) == {"client_secret": "***"}


def _innermost(text: str) -> object:
    """The JSON inside ``text``, read again for as long as it holds JSON text."""
    value: object = json.loads(text)
    while isinstance(value, dict) and set(value) == {"echo"}:
        inner = value["echo"]
        value = json.loads(inner) if isinstance(inner, str) else inner
    return value


@pytest.mark.parametrize(
    "echoed",
    [
        '{"got": "k9+Qz\\/Xw7Lm2Pq=="}',  # "/" escaped, as PHP writes it
        '{"got": "k9\\u002BQz/Xw7Lm2Pq=="}',  # "+" escaped, upper-case hex, as .NET
        '{"got": "k9\\u002bQz\\u002fXw7Lm2Pq\\u003d\\u003d"}',  # everything escaped
    ],
)
def test_a_secret_echoed_by_other_json_writers_is_masked(echoed: str) -> None:
    remember_secret("k9+Qz/Xw7Lm2Pq==")

    assert scrub(echoed) == '{"got": "***"}'


@pytest.mark.parametrize(
    "echoed",
    [
        "Sx9%2Fkq%2BLm%3DZt%20wq%26P%C3%A9",  # quote(), upper-case hex
        "Sx9%2fkq%2bLm%3dZt%20wq%26P%c3%a9",  # lower-case hex, as some servers write
        "Sx9%2fkq%2BLm%3dZt+wq%26P%c3%A9",  # a form's space, cases mixed
        "".join(f"%{byte:02x}" for byte in "Sx9/kq+Lm=Zt wq&Pé".encode()),  # all
    ],
)
def test_a_secret_echoed_url_encoded_any_way_is_masked(echoed: str) -> None:
    remember_secret("Sx9/kq+Lm=Zt wq&Pé")

    assert scrub(f"bad timestamp {echoed!r} at 0") == "bad timestamp '***' at 0"


def test_a_token_holding_a_lone_surrogate_is_remembered_and_masked() -> None:
    token = "tok-\ud800-lone-surrogate"
    remember_secret(token)

    assert scrub(f"got {token}") == "got ***"


@pytest.mark.parametrize(
    "echoed",
    [
        "p&amp;ss&lt;w&gt;rd&quot;Q+/=%ab",  # Python's html.escape
        'p&amp;ss&lt;w&gt;rd"Q+/=%ab',  # quotes left as they are
        "p&#38;ss&#60;w&#62;rd&#34;Q+/=%ab",  # decimal references
        "p&#x26;ss&#X3c;w&#x3E;rd&#x22;Q+/=%ab",  # hexadecimal, either case
    ],
)
def test_a_secret_echoed_in_an_html_page_is_masked(echoed: str) -> None:
    remember_secret('p&ss<w>rd"Q+/=%ab')
    page = f"<html><body>Login failed for secret {echoed}</body></html>"

    assert scrub(page) == "<html><body>Login failed for secret ***</body></html>"
    assert excerpt(page) == "<html><body>Login failed for secret ***</body></html>"


def test_scrubbing_takes_no_lock_a_signal_handler_could_wait_on_forever() -> None:
    # A handler for a second Ctrl-C scrubs its line while the main thread it
    # interrupted may be inside scrub() itself.
    remember_secret("h4ndl3r-S3cret")

    with _redact._secrets_lock:
        assert scrub("said h4ndl3r-S3cret") == "said ***"


def test_a_token_echoed_cut_short_is_masked() -> None:
    remember_secret("tK7q2Vx9Lm4Pz8Rw1Ny6Hc3Jd5")

    said = scrub("invalid token tK7q2Vx9Lm4Pz8Rw… (expired); ends Ny6Hc3Jd5")

    # Its first 14 characters form a piece; its last 9 are too short to tell.
    assert said == "invalid token ***… (expired); ends Ny6Hc3Jd5"


def test_pieces_of_a_secret_given_to_scrub_are_masked_too() -> None:
    said = scrub(
        "got 'Wq8zR4nT5yU2' then 'xWq8zR4nT5y', not 'Wq8zR4nT5'", "Wq8zR4nT5yU2pL0"
    )

    assert said == "got '***' then 'x***', not 'Wq8zR4nT5'"
