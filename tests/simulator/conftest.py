"""Fixtures for the simulator's own tests: a running simulator, a session, a token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from powerp_async._time import parse_wire
from powerp_async.simulator import Simulator, SimulatorSettings

ANCHOR_US = parse_wire("2026-12-04T12:00:00Z")
"""Every test tenant counts its recently started signals back from here."""

SECRET = "s3cret-for-tests"


class FakeClock:
    """A monotonic clock that moves only when told to."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sim_settings() -> SimulatorSettings:
    return SimulatorSettings(
        client_id="tester", client_secret=SECRET, anchor_us=ANCHOR_US, token_ttl_s=60
    )


@pytest.fixture
async def sim(
    sim_settings: SimulatorSettings, clock: FakeClock
) -> AsyncIterator[Simulator]:
    async with Simulator(sim_settings, clock=clock) as running:
        yield running


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def fetch_token(
    http: aiohttp.ClientSession,
    sim: Simulator,
    secret: str = SECRET,
    client_id: str = "tester",
) -> str:
    form = {
        "client_id": client_id,
        "client_secret": secret,
        "grant_type": "client_credentials",
    }
    async with http.post(f"{sim.base_url}/v1/auth/token", data=form) as response:
        assert response.status == 200
        answer = await response.json()
    token: str = answer["access_token"]
    return token


@pytest.fixture
async def token(http: aiohttp.ClientSession, sim: Simulator) -> str:
    return await fetch_token(http, sim)


async def post_query(
    http: aiohttp.ClientSession,
    sim: Simulator,
    token: str,
    body: Any,
    path: str = "Query",
) -> tuple[int, Any]:
    """POST a query body (JSON-encoded unless bytes); the status and decoded answer."""
    headers = {"Authorization": f"Bearer {token}"}
    url = f"{sim.base_url}/v1/{path}"
    if isinstance(body, bytes):
        request = http.post(url, data=body, headers=headers)
    else:
        request = http.post(url, json=body, headers=headers)
    async with request as response:
        return response.status, await response.json()


MISSING: Any = object()
"""Give a field this value in :func:`query_body` to leave it out."""


def query_body(**overrides: Any) -> dict[str, Any]:
    """A valid query of indexes 1 and 2, with fields replaced or left out."""
    body: dict[str, Any] = {
        "databaseId": 1,
        "measurementIndexes": ["1", "2"],
        "startTime": "2026-12-04T16:00:00Z",
        "endTime": "2026-12-04T16:00:10Z",
        "aggFunction": "mean",
        "windowPeriod": "1s",
    }
    body.update(overrides)
    return {name: value for name, value in body.items() if value is not MISSING}
