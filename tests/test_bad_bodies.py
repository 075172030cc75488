"""A 200 whose body is no answer counts as a failed request, not a success: a server
that sends only such bodies (a proxy's maintenance page) is taken for down."""

from __future__ import annotations

import time
from datetime import timedelta

import pyarrow as pa
import pytest
from aiohttp import web

from powerp_async import POINT_SCHEMA, PowerPClient, RunStats
from powerp_async.control import AdaptivePacer
from powerp_async.errors import ServerUnavailableError
from powerp_async.simulator import Simulator, SimulatorSettings
from powerp_async.simulator._settings import Handler

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, expected_points, rewriting_settings, span_of

MAINTENANCE = "<html><body>Down for maintenance</body></html>"


class MaintenancePage:
    """Answers queries 200 with an HTML page, ``pages_left`` of them (all if
    ``None``)."""

    def __init__(self) -> None:
        self.pages_left: int | None = None
        self.pages = 0

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if not request.path.endswith("/Query") or self.pages_left == 0:
            return await handler(request)

        self.pages += 1
        if self.pages_left is not None:
            self.pages_left -= 1
        return web.Response(text=MAINTENANCE, content_type="text/html")


@pytest.fixture
def page() -> MaintenancePage:
    return MaintenancePage()


@pytest.fixture
def settings(page: MaintenancePage) -> SimulatorSettings:
    return rewriting_settings(page)


def _client(simulator: Simulator, pacer: AdaptivePacer) -> PowerPClient:
    return PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        max_outage_s=1.0,
        pacer=pacer,
    )


async def test_a_server_sending_only_pages_is_down_after_max_outage(
    simulator, page
) -> None:
    pacer = AdaptivePacer()
    async with _client(simulator, pacer) as client:
        signals = [m for m in await client.measurements() if m.database_id == 1]
        started = time.monotonic()
        with pytest.raises(ServerUnavailableError) as caught:
            await client.fetch_table(
                signals, ANCHOR - timedelta(hours=6), ANCHOR, window="1m"
            )
        elapsed_s = time.monotonic() - started

    message = str(caught.value)
    assert message.startswith("the server failed every request for 1 s (the last: ")
    assert "got a body that is not JSON" in message
    assert message.endswith(
        "stopped after 0 blocks (0 points) were fetched. Ask again once the server "
        "is back"
    )
    assert elapsed_s < 10
    # No answer came back well, so the pace never grew past where it starts.
    assert pacer.rate <= pacer.controller.settings.initial_rate
    assert page.pages > 0


async def test_a_few_pages_amid_answers_are_retried_and_the_fetch_is_exact(
    simulator, page
) -> None:
    page.pages_left = 3
    stats = RunStats()
    async with _client(simulator, AdaptivePacer()) as client:
        signals = [m for m in await client.measurements() if m.database_id == 1][:3]
        start = ANCHOR - timedelta(hours=2)
        async with client.fetch(signals, start, ANCHOR, window="1m", stats=stats) as rs:
            batches = [result.batch async for result in rs if result.batch is not None]

    table = pa.Table.from_batches(batches, POINT_SCHEMA)
    span = span_of(start, ANCHOR, 60_000_000)
    assert_exact(table, expected_points(simulator.tenant, signals, span))
    assert (page.pages, stats.retries, stats.server_errors) == (3, 3, 3)
