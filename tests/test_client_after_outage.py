"""A client outlives an outage that stopped one of its runs."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import timedelta

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
from powerp_async.models import Block
from powerp_async.simulator import Outage, Scenario, Simulator

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, expected_points

# Down after the listing, for longer than the first fetch waits.
OUTAGE = Outage(at_s=0.5, duration_s=2.0)
START = ANCHOR - timedelta(hours=2)


async def test_the_next_fetch_after_an_outage_error_probes_and_succeeds(
    settings,
) -> None:
    down = replace(settings, scenario=Scenario(outage=OUTAGE))
    # A breaker that opens after two failures, so that the first run leaves it open.
    breaker = CircuitBreaker(CircuitSettings(min_requests=2))
    async with (
        Simulator(down) as simulator,
        PowerPClient(
            client_id="tester",
            client_secret=CLIENT_SECRET,
            base_url=simulator.base_url,
            max_outage_s=0.5,
            pacer=AdaptivePacer(breaker=breaker),
        ) as client,
    ):
        back_at = time.monotonic() + OUTAGE.at_s + OUTAGE.duration_s
        signals = [m for m in await client.measurements() if m.database_id == 1][:2]
        await anyio.sleep(back_at - OUTAGE.duration_s - time.monotonic())
        with pytest.raises(ServerUnavailableError):
            await client.fetch_table(signals, START, ANCHOR, window="1m")
        assert breaker.state is CircuitState.OPEN

        # The server is back, and the breaker's next probe due seconds from now.
        await anyio.sleep(back_at + 0.2 - time.monotonic())
        asked_at = time.monotonic()
        table = await client.fetch_table(signals, START, ANCHOR, window="1m")

    # Probed at once, not at the probe the first run left due.
    assert time.monotonic() - asked_at < breaker.settings.min_probe_interval_s
    assert breaker.state is CircuitState.CLOSED
    span = TimeRange.snap(START, ANCHOR, 60_000_000)
    assert_exact(
        pa.Table.from_batches(table.to_batches()),
        expected_points(simulator.tenant, signals, span),
    )


async def test_an_engine_run_again_after_an_outage_error_probes_and_succeeds(
    settings,
) -> None:
    # As a worker's engine does: one engine, many runs.
    down = replace(settings, scenario=Scenario(outage=OUTAGE))
    breaker = CircuitBreaker(CircuitSettings(min_requests=2))
    async with (
        Simulator(down) as simulator,
        PowerPClient(
            client_id="tester",
            client_secret=CLIENT_SECRET,
            base_url=simulator.base_url,
            max_outage_s=0.5,
            pacer=AdaptivePacer(breaker=breaker),
        ) as client,
    ):
        back_at = time.monotonic() + OUTAGE.at_s + OUTAGE.duration_s
        signals = [m for m in await client.measurements() if m.database_id == 1][:2]
        span = TimeRange.snap(START, ANCHOR, 60_000_000)
        engine = client.engine()
        await anyio.sleep(back_at - OUTAGE.duration_s - time.monotonic())
        with pytest.raises(ServerUnavailableError):
            await _results(engine, plan_blocks(signals, span))

        await anyio.sleep(back_at + 0.2 - time.monotonic())
        results = await _results(engine, plan_blocks(signals, span))

    assert len(results) == len(list(plan_blocks(signals, span)))
    assert all(result.error is None for result in results)
    fetched = pa.Table.from_batches([r.batch for r in results if r.batch is not None])
    assert_exact(fetched, expected_points(simulator.tenant, signals, span))


async def _results(engine: Engine, blocks: Iterable[Block]) -> list[BlockResult]:
    async with engine.run(blocks) as results:
        return [result async for result in results]
