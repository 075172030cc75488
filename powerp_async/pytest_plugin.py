"""pytest plugin: the ``powerp_simulator`` fixture, installed with the package.

Use it in your own tests to run code against the simulated API on a free loopback
port. Settings are chosen with the ``powerp_simulator`` marker, whose keyword
arguments are those of :class:`~powerp_async.simulator.SimulatorSettings`::

    @pytest.mark.powerp_simulator(token_ttl_s=2)
    def test_my_job_survives_token_expiry(powerp_simulator):
        config = powerp_simulator.client_config()
        ...

The fixture is synchronous (the simulator runs on its own thread), so it serves
plain, asyncio and anyio tests alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .testing import SimulatorThread

MARKER = "powerp_simulator"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**settings): SimulatorSettings for the powerp_simulator fixture",
    )


@pytest.fixture
def powerp_simulator(request: pytest.FixtureRequest) -> Iterator[SimulatorThread]:
    """A running PowerP API simulator, as a ``testing.SimulatorThread``."""
    from .simulator import SimulatorSettings
    from .testing import SimulatorThread

    marker = request.node.get_closest_marker(MARKER)
    settings = SimulatorSettings(**(marker.kwargs if marker else {}))
    with SimulatorThread(settings) as server:
        yield server
