"""A client outlives an outage that stopped one of its runs."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

import anyio
import pyarrow as pa
import pytest

from powerp_async import BlockResult, PowerPClient, TimeRange, plan_blocks
from powerp_async._engine import Engine
from powerp_async.control import (
    AdaptivePacer,
    CircuitBreaker,
    CircuitSettings,
    CircuitState,
)
from powerp_async.errors import ServerUnavailableError
from powerp_async.models import Block, Measurement
from powerp_async.simulator import Outage, Scenario, Simulator, SimulatorSettings

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import actual_points, assert_exact, column_for, expected_points

# Down after the listing, for longer than the first fetch waits.
OUTAGE = Outage(at_s=0.5, duration_s=2.0)
START = ANCHOR - timedelta(hours=2)
SPAN = TimeRange.snap(START, ANCHOR, 60_000_000)


@dataclass
class _Down:
    """A client of a simulator about to go down, and what the tests need of it."""

    simulator: Simulator
    client: PowerPClient
    breaker: CircuitBreaker
    signals: list[Measurement]
    back_at: float
    """When the server is back, on the monotonic clock."""

    async def until_down(self) -> None:
        await anyio.sleep(self.back_at - OUTAGE.duration_s - time.monotonic())

    async def until_back(self) -> None:
        await anyio.sleep(self.back_at + 0.2 - time.monotonic())


def _impatient_client(simulator: Simulator, **options: Any) -> PowerPClient:
    """A client of ``simulator`` that gives up after half a second of outage."""
    return PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        max_outage_s=0.5,
        **options,
    )


@asynccontextmanager
async def _going_down(settings: SimulatorSettings) -> AsyncIterator[_Down]:
    down = replace(settings, scenario=Scenario(outage=OUTAGE))
    # A breaker that opens after two failures, so that the first run leaves it open.
    breaker = CircuitBreaker(CircuitSettings(min_requests=2))
    async with (
        Simulator(down) as simulator,
        _impatient_client(simulator, pacer=AdaptivePacer(breaker=breaker)) as client,
    ):
        back_at = time.monotonic() + OUTAGE.at_s + OUTAGE.duration_s
        signals = [m for m in await client.measurements() if m.database_id == 1][:2]
        yield _Down(simulator, client, breaker, signals, back_at)


async def test_the_next_fetch_after_an_outage_error_probes_and_succeeds(
    settings,
) -> None:
    async with _going_down(settings) as down:
        await down.until_down()
        with pytest.raises(ServerUnavailableError):
            await down.client.fetch_table(down.signals, START, ANCHOR, window="1m")
        assert down.breaker.state is CircuitState.OPEN

        # The server is back, and the breaker's next probe due seconds from now.
        await down.until_back()
        asked_at = time.monotonic()
        table = await down.client.fetch_table(down.signals, START, ANCHOR, window="1m")

    # Probed at once, not at the probe the first run left due.
    assert time.monotonic() - asked_at < down.breaker.settings.min_probe_interval_s
    assert down.breaker.state is CircuitState.CLOSED
    assert_exact(
        pa.Table.from_batches(table.to_batches()),
        expected_points(down.simulator.tenant, down.signals, SPAN),
    )


async def test_an_engine_run_again_after_an_outage_error_probes_and_succeeds(
    settings,
) -> None:
    # As a worker's engine does: one engine, many runs.
    async with _going_down(settings) as down:
        engine = down.client.engine()
        await down.until_down()
        with pytest.raises(ServerUnavailableError):
            await _results(engine, plan_blocks(down.signals, SPAN))

        await down.until_back()
        results = await _results(engine, plan_blocks(down.signals, SPAN))

    assert len(results) == len(list(plan_blocks(down.signals, SPAN)))
    assert all(result.error is None for result in results)
    fetched = pa.Table.from_batches([r.batch for r in results if r.batch is not None])
    assert_exact(fetched, expected_points(down.simulator.tenant, down.signals, SPAN))


async def _results(engine: Engine, blocks: Iterable[Block]) -> list[BlockResult]:
    async with engine.run(blocks) as results:
        return [result async for result in results]


async def test_a_table_stopped_by_an_outage_holds_what_came_before(settings) -> None:
    # Down 2 s after start, for longer than the client waits: the listing is done
    # by then, and 20 blocks at 2 requests/s take some 10 s.
    down = replace(settings, scenario=Scenario(outage=Outage(2.0, 30.0)))
    async with (
        Simulator(down) as simulator,
        _impatient_client(simulator, initial_rate=2) as client,
    ):
        signals = [m for m in await client.measurements() if m.database_id == 1][:80]
        with pytest.raises(ServerUnavailableError) as stopped:
            await client.fetch_table(signals, START, ANCHOR, window="1m")

    fetched = stopped.value.fetched
    expected = expected_points(simulator.tenant, signals, SPAN)
    actual = actual_points(fetched)
    said = re.search(r"\(([\d,]+) points?\) (?:was|were) fetched", str(stopped.value))
    assert said is not None
    assert int(said[1].replace(",", "")) == fetched.num_rows
    assert 0 < len(actual) < len(expected)
    assert actual == {key: (column_for(expected[key]), expected[key]) for key in actual}
