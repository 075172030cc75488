"""Errors raised on what a server sent carry no error of a parser or of aiohttp.

Such an error quotes what the server sent, unmasked: a header echoing the token, a
page echoing the form. A traceback prints an error's cause and context, and error
trackers keep them, so the client's own errors are raised apart from them.
"""

from __future__ import annotations

import traceback
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from powerp_async import MalformedResponseError, PowerPClient, TransportError

from .conftest import ANCHOR

SECRET = "chain-s3cret-Q8wE2rT6yU"
TOKEN = "tok-CHAIN-5d4c3b2a1f0e9d8c"
ECHO = f"you sent Bearer {TOKEN} and client_secret={SECRET}. "


async def _token(request: web.Request) -> web.Response:
    return web.json_response({"access_token": TOKEN, "expires_in": 3600})


async def _page_for_a_token(request: web.Request) -> web.Response:
    return web.Response(text=f"<html>{ECHO}{await request.text()}</html>")


async def _huge_header(request: web.Request) -> web.Response:
    return web.Response(headers={"X-Echo": ECHO * 200}, text="[]")


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=f"<html>{ECHO}</html>")


async def _listing_echoing_the_token(request: web.Request) -> web.Response:
    return web.json_response([{"databaseId": f"{TOKEN} {SECRET}", "index": "1"}])


async def _time_echoing_the_token(request: web.Request) -> web.Response:
    point = {"index": "1", "timestamp": f"{TOKEN} {SECRET}", "value": 1.0}
    return web.json_response([point])


async def _page_of_points(request: web.Request) -> web.Response:
    return web.Response(body=f"[{{'{ECHO}': NaN".encode())


@pytest.fixture
async def echoing() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/page/v1/auth/token", _page_for_a_token)
    for prefix in ("header", "listing", "field", "times", "points"):
        app.router.add_post(f"/{prefix}/v1/auth/token", _token)
    app.router.add_get("/field/v1/measurements", _listing_echoing_the_token)
    app.router.add_get("/header/v1/measurements", _huge_header)
    app.router.add_get("/listing/v1/measurements", _page)
    app.router.add_post("/times/v1/Query", _time_echoing_the_token)
    app.router.add_post("/points/v1/Query", _page_of_points)
    async with TestServer(app, host="127.0.0.1") as server:
        yield str(server.make_url("")).rstrip("/")


def _client(base: str) -> PowerPClient:
    return PowerPClient(
        client_id="tester",
        client_secret=SECRET,
        base_url=base,
        max_attempts=1,
        max_outage_s=0.5,
        initial_rate=100,
    )


def assert_raised_alone(error: BaseException) -> None:
    """No cause or context, and a traceback that shows no piece of a secret."""
    assert error.__cause__ is None
    assert error.__context__ is None
    shown = "".join(traceback.format_exception(error))
    for secret in (SECRET, TOKEN):
        assert secret[:10] not in shown


@pytest.mark.parametrize(
    ("prefix", "kind"),
    [
        ("page", MalformedResponseError),  # the token endpoint answers a page
        ("header", TransportError),  # a header too long for aiohttp to read
        ("listing", MalformedResponseError),  # the listing answers a page
        ("field", MalformedResponseError),  # a field of the listing echoes them
    ],
)
async def test_a_listing_failing_on_what_the_server_sent_raises_alone(
    echoing: str, prefix: str, kind: type[Exception]
) -> None:
    async with _client(f"{echoing}/{prefix}") as client:
        with pytest.raises(kind) as caught:
            await client.measurements()

    assert_raised_alone(caught.value)


@pytest.mark.parametrize("prefix", ["times", "points"])
async def test_a_query_failing_on_what_the_server_sent_raises_alone(
    echoing: str, prefix: str
) -> None:
    async with _client(f"{echoing}/{prefix}") as client:
        with pytest.raises(MalformedResponseError) as caught:
            await client.query(1, ["1"], ANCHOR, ANCHOR + timedelta(seconds=5))

    assert_raised_alone(caught.value)
