"""pytest plugin: the ``powerp_simulator`` fixture, installed with the package.

Use it in your own tests to run code against the simulated API on a free loopback
port. Settings are chosen with the ``powerp_simulator`` marker, whose keyword
arguments are those of :class:`~powerp_async.simulator.SimulatorSettings`::

    @pytest.mark.powerp_simulator(token_ttl_s=2)
    def test_my_job_survives_token_expiry(powerp_simulator):
        config = powerp_simulator.client_config()
        ...

The fixture is synchronous (the simulator runs on its own thread), so it serves
plain, asyncio and anyio tests alike; an ``async def`` test still needs its runner,
pytest-asyncio's ``asyncio`` mark or ``asyncio_mode = "auto"``. A marker argument
that is not a setting, or a setting out of range, fails the test's setup with one
line that names it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import pytest

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .simulator import SimulatorSettings
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
    try:
        settings = marker_settings(marker.args, marker.kwargs) if marker else None
    except ConfigurationError as error:
        # The message alone: the plugin's own traceback would only hide it.
        raise pytest.fail.Exception(str(error), pytrace=False) from None

    with SimulatorThread(settings or SimulatorSettings()) as server:
        yield server


def marker_settings(
    args: tuple[Any, ...], kwargs: Mapping[str, Any]
) -> SimulatorSettings:
    """The settings a ``powerp_simulator`` marker asks for, or a ConfigurationError."""
    from .simulator import SimulatorSettings

    known = [f.name for f in dataclasses.fields(SimulatorSettings)]
    unknown = sorted(set(kwargs) - set(known))
    if args or unknown:
        got = ", ".join([*map(repr, args), *unknown])
        raise ConfigurationError(
            f"@pytest.mark.{MARKER}: expected settings by name, got {got}; known "
            f"settings: {', '.join(sorted(known))}"
        )

    return SimulatorSettings(**kwargs)
