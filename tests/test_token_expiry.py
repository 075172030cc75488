"""Tokens that expire on their way: renewed and retried, never taken for refused
credentials; a fresh token refused within its life is."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import anyio
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from powerp_async import PowerPClient
from powerp_async.errors import AuthenticationError, TokenExpiredError

START = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)
POINTS = [{"index": "1", "value": 1.5, "timestamp": "2026-12-04T10:00:01Z"}]
LIFETIME_S = 0.3


@dataclass
class ShortLivedTokens:
    """Tokens living briefly from issue, some answered too late to be used."""

    answer_delays_s: list[float]
    refuse_all: bool = False
    issued_at: dict[str, float] = field(default_factory=dict)
    refused: list[str] = field(default_factory=list)

    async def token(self, request: web.Request) -> web.Response:
        token = f"token-{len(self.issued_at) + 1}"
        self.issued_at[token] = time.monotonic()
        delays = self.answer_delays_s
        await anyio.sleep(delays[min(len(self.issued_at), len(delays)) - 1])
        return web.json_response({"access_token": token, "expires_in": LIFETIME_S})

    async def query(self, request: web.Request) -> web.Response:
        token = request.headers["Authorization"].removeprefix("Bearer ")
        age_s = time.monotonic() - self.issued_at[token]
        if self.refuse_all or age_s >= LIFETIME_S:
            self.refused.append(token)
            return web.json_response({"error": "invalid_token"}, status=401)
        return web.Response(body=orjson.dumps(POINTS), content_type="application/json")


async def _serve(tokens: ShortLivedTokens) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/rt-api/api/v1/auth/token", tokens.token)
    app.router.add_post("/rt-api/api/v1/Query", tokens.query)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("/rt-api/api"))


async def _query(tokens: ShortLivedTokens):
    async for base_url in _serve(tokens):
        async with PowerPClient(
            client_id="x",
            client_secret="y",
            base_url=base_url,
            initial_rate=100,
            max_attempts=3,
        ) as client:
            return await client.query(
                1, ["1"], START, START + timedelta(seconds=1), window="1s"
            )
    raise AssertionError("the server did not start")


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch) -> None:
    monkeypatch.setattr("powerp_async._engine.backoff_s", lambda attempt: 0.0)


async def test_tokens_expired_on_their_way_are_replaced_until_one_arrives() -> None:
    tokens = ShortLivedTokens(answer_delays_s=[0.35, 0.35, 0.0])

    table = await _query(tokens)

    assert table.column("value_float").to_pylist() == [1.5]
    assert tokens.refused == ["token-1", "token-2"]


async def test_a_fresh_token_refused_within_its_life_is_refused_credentials() -> None:
    tokens = ShortLivedTokens(answer_delays_s=[0.0], refuse_all=True)

    with pytest.raises(AuthenticationError, match="may lack access to the API"):
        await _query(tokens)

    assert tokens.refused == ["token-1", "token-2"]


async def test_tokens_that_never_arrive_alive_are_told_as_such() -> None:
    tokens = ShortLivedTokens(answer_delays_s=[0.35])

    with pytest.raises(TokenExpiredError, match="tokens live about as long as"):
        await _query(tokens)

    # Retried as a failure is, up to the attempts allowed (3 here), each attempt
    # replacing its token up to three times.
    assert len(tokens.refused) == 3 * 4
