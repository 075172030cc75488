"""Shared fixtures: an in-process simulator on loopback and a client pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import pytest

from powerp_async import PowerPClient
from powerp_async._time import to_epoch_us
from powerp_async.simulator import Simulator, SimulatorSettings

ANCHOR = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
"""The simulator's clock anchor in tests, so every run sees the same data."""

CLIENT_SECRET = "test-secret-0f9e8d7c"


@pytest.fixture
def settings() -> SimulatorSettings:
    return SimulatorSettings(
        client_id="tester", client_secret=CLIENT_SECRET, anchor_us=to_epoch_us(ANCHOR)
    )


@pytest.fixture
async def simulator(settings: SimulatorSettings) -> AsyncIterator[Simulator]:
    async with Simulator(settings) as running:
        yield running


@pytest.fixture
async def client(simulator: Simulator) -> AsyncIterator[PowerPClient]:
    async with PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        initial_rate=100,
        max_in_flight=6,
    ) as running:
        yield running


@pytest.fixture(scope="module")
def served() -> Iterator[str]:
    """``powerp simulate`` in its own process with the test anchor; yields its URL."""
    from .processes import simulator_process

    with simulator_process(ANCHOR) as base_url:
        yield base_url
