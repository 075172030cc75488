"""The token manager: one request for many callers, renewal before expiry and on 401."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from powerp_async._token import TokenManager
from powerp_async.errors import (
    AuthenticationError,
    MalformedResponseError,
    ServerError,
)

SECRET = "s3cret-value-never-shown"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeAuthServer:
    """Issues numbered tokens; answers slowly so concurrent callers overlap."""

    expires_in: object = 3600
    refuse: bool = False
    body: bytes | None = None
    failures_first: int = 0
    retry_after: str | None = None
    issued: list[str] = field(default_factory=list)
    clock: Clock | None = None
    answer_takes_s: float = 0.0
    """How far ``clock`` moves while a token is answered."""

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        await anyio.sleep(0.05)
        if self.clock is not None:
            self.clock.now += self.answer_takes_s
        if self.failures_first:
            self.failures_first -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after else {}
            return web.Response(status=503, text="<html>busy</html>", headers=headers)
        if self.refuse or form.get("client_secret") != SECRET:
            return web.json_response({"error": "invalid_client"}, status=401)
        if self.body is not None:
            return web.Response(body=self.body, content_type="application/json")
        token = f"token-{len(self.issued) + 1}"
        self.issued.append(token)
        return web.json_response({"access_token": token, "expires_in": self.expires_in})


@pytest.fixture
async def auth() -> AsyncIterator[tuple[FakeAuthServer, str]]:
    fake = FakeAuthServer()
    app = web.Application()
    app.router.add_post("/v1/auth/token", fake.token)
    async with TestServer(app, host="127.0.0.1") as server:
        yield fake, str(server.make_url("/v1/auth/token"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client_session:
        yield client_session


async def test_hundred_concurrent_callers_cause_one_request(auth, session) -> None:
    fake, url = auth
    manager = TokenManager(session, url, "demo", SECRET)
    tokens: list[str] = []

    async def call() -> None:
        tokens.append(await manager.token())

    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(call)

    assert fake.issued == ["token-1"]
    assert tokens == ["token-1"] * 100
    assert manager.requests_made == 1


async def test_renews_shortly_before_expiry(auth, session) -> None:
    fake, url = auth
    fake.expires_in = 100
    clock = Clock()
    manager = TokenManager(session, url, "demo", SECRET, clock=clock)

    first = await manager.token()
    clock.now += 89  # within 90 s of 100: still good (margin is a tenth)
    kept = await manager.token()
    clock.now += 2
    renewed = await manager.token()

    assert (first, kept, renewed) == ("token-1", "token-1", "token-2")


async def test_a_slow_answer_counts_against_the_tokens_life(auth, session) -> None:
    fake, url = auth
    fake.expires_in, fake.answer_takes_s = 10, 4
    fake.clock = clock = Clock()
    manager = TokenManager(session, url, "demo", SECRET, clock=clock)

    first = await manager.token()  # asked at 1000, answered at 1004
    clock.now += 4.9  # 8.9 s since asked: within 9 s (10 less a tenth)
    kept, kept_alive = await manager.token(), not manager.outlived(first)
    clock.now += 0.2
    renewed = await manager.token()

    assert (first, kept, kept_alive, renewed) == ("token-1", "token-1", True, "token-2")


async def test_a_token_outlives_its_life_or_its_replacement(auth, session) -> None:
    fake, url = auth
    fake.expires_in = 10
    clock = Clock()
    manager = TokenManager(session, url, "demo", SECRET, clock=clock)

    first = await manager.token()
    alive = manager.outlived(first)
    clock.now += 10
    expired = manager.outlived(first)
    second = await manager.renew_after_rejection(first)

    assert (alive, expired) == (False, True)
    assert (manager.outlived(first), manager.outlived(second)) == (True, False)


async def test_without_expires_in_the_token_is_kept_until_refused(
    auth, session
) -> None:
    fake, url = auth
    fake.expires_in = None
    clock = Clock()
    manager = TokenManager(session, url, "demo", SECRET, clock=clock)

    first = await manager.token()
    clock.now += 10**6

    assert await manager.token() == first == "token-1"


async def test_burst_of_401s_renews_once(auth, session) -> None:
    fake, url = auth
    manager = TokenManager(session, url, "demo", SECRET)
    rejected = await manager.token()
    renewed: list[str] = []

    async def refused() -> None:
        renewed.append(await manager.renew_after_rejection(rejected))

    async with anyio.create_task_group() as group:
        for _ in range(20):
            group.start_soon(refused)

    assert fake.issued == ["token-1", "token-2"]
    assert renewed == ["token-2"] * 20


async def test_refused_credentials_raise_once_without_retrying(auth, session) -> None:
    _fake, url = auth
    manager = TokenManager(session, url, "demo", "wrong-secret")

    with pytest.raises(AuthenticationError) as caught:
        await manager.token()

    assert caught.value.status == 401
    assert "refused the client credentials" in str(caught.value)
    assert "invalid_client" in str(caught.value)
    assert "wrong-secret" not in str(caught.value)
    assert manager.requests_made == 1


async def test_transient_failures_are_retried(auth, session, monkeypatch) -> None:
    fake, url = auth
    fake.failures_first = 2
    monkeypatch.setattr("powerp_async._token.backoff_s", lambda attempt: 0.0)
    manager = TokenManager(session, url, "demo", SECRET)

    assert await manager.token() == "token-1"
    assert manager.requests_made == 3


async def test_retries_wait_no_longer_than_max_wait_in_all(auth, session) -> None:
    fake, url = auth
    fake.failures_first, fake.retry_after = 10, "100"
    manager = TokenManager(session, url, "demo", SECRET, max_wait_s=0.2)

    with pytest.raises(ServerError, match="503"):
        await manager.token()

    # One wait, cut from the server's 100 s to what was left of 0.2 s, then it gives up.
    assert manager.requests_made == 2
    assert fake.failures_first == 8


async def test_a_body_without_token_is_malformed_and_not_echoed(auth, session) -> None:
    fake, url = auth
    fake.body = b'{"token": "leaky-token-value"}'
    manager = TokenManager(session, url, "demo", SECRET)

    with pytest.raises(MalformedResponseError) as caught:
        await manager.token()

    assert "access_token" in str(caught.value)
    assert "leaky-token-value" not in str(caught.value) + caught.value.excerpt


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            b'{"access_token": "leaky-token-value", "expires_in": NaN}',
            "token response: expected a JSON object, got a body that is not JSON (it "
            "fails at character 53)",
        ),
        (
            b'{"access_token": " ", "expires_in": 60}',
            "token response: its 'access_token' is empty",
        ),
    ],
)
async def test_a_token_answer_not_json_or_empty_is_named_so(
    auth, session, body: bytes, message: str
) -> None:
    fake, url = auth
    fake.body = body
    manager = TokenManager(session, url, "demo", SECRET)

    with pytest.raises(MalformedResponseError) as caught:
        await manager.token()

    assert str(caught.value) == message
    assert "leaky-token-value" not in str(caught.value) + caught.value.excerpt


async def test_a_token_with_a_line_break_is_malformed_and_not_echoed(
    auth, session
) -> None:
    fake, url = auth
    fake.body = b'{"access_token": "leaky\\r\\nX-Injected: 1", "expires_in": 60}'
    manager = TokenManager(session, url, "demo", SECRET)

    with pytest.raises(MalformedResponseError) as caught:
        await manager.token()

    assert str(caught.value) == (
        "token response: its 'access_token' holds control characters, such as a "
        "line break, which no request header may carry"
    )
    assert fake.issued == []


async def test_a_token_answer_that_runs_on_is_not_read_to_its_end(
    session, monkeypatch
) -> None:
    monkeypatch.setattr("powerp_async._token.MAX_TOKEN_ANSWER_BYTES", 10_000)
    sent: list[int] = []

    async def endless(request: web.Request) -> web.StreamResponse:
        answer = web.StreamResponse(headers={"Content-Type": "application/json"})
        await answer.prepare(request)
        await answer.write(b'{"access_token": "')
        with contextlib.suppress(ConnectionError):
            for _ in range(100_000):  # 100 MB, unless the client hangs up
                await answer.write(b"x" * 1_000)
                sent.append(1_000)
        return answer

    app = web.Application()
    app.router.add_post("/v1/auth/token", endless)
    async with TestServer(app, host="127.0.0.1") as server:
        manager = TokenManager(
            session, str(server.make_url("/v1/auth/token")), "d", SECRET
        )
        with pytest.raises(MalformedResponseError) as caught:
            await manager.token()

    assert str(caught.value) == (
        "token response: the answer ran past 10,000 bytes, far more than a token "
        "takes; the rest was not read"
    )
    assert manager.requests_made == 1
    assert sum(sent) < 10_000_000


async def test_repr_shows_no_secret_or_token(auth, session) -> None:
    _, url = auth
    manager = TokenManager(session, url, "demo", SECRET)
    token = await manager.token()

    assert SECRET not in repr(manager)
    assert token not in repr(manager)
    assert "token=held" in repr(manager)


@pytest.mark.parametrize("expires_in", [0, -5, 0.0])
async def test_a_lifetime_already_over_keeps_the_token_until_refused(
    auth, session, expires_in
) -> None:
    fake, url = auth
    fake.expires_in = expires_in
    clock = Clock()
    manager = TokenManager(session, url, "demo", SECRET, clock=clock)

    first = await manager.token()
    clock.now += 3600

    # Taken at its word, it would cost a token request for every query.
    assert await manager.token() == first == "token-1"
    assert not manager.outlived(first)
    assert await manager.renew_after_rejection(first) == "token-2"
