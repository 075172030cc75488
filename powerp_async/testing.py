"""Helpers for testing code that uses powerp-async: the simulator on its own thread.

:class:`SimulatorThread` serves the simulated API from a background thread with an
event loop of its own, so it works from synchronous tests, from any async test
framework, and from code that calls the API with another HTTP client entirely. The
pytest fixture ``powerp_simulator`` (installed with the package) is built on it.

>>> with SimulatorThread() as server:                        # doctest: +SKIP
...     config = server.client_config()
...     requests.get(server.base_url + "/v1/measurements", ...)
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from types import TracebackType
from typing import Any, Final

from .config import ClientConfig
from .simulator import Simulator, SimulatorSettings, SimulatorStats, Tenant

START_TIMEOUT_S: Final = 30.0


class SimulatorThread:
    """A running simulator on a free loopback port, served by a background thread."""

    def __init__(self, settings: SimulatorSettings | None = None) -> None:
        self.settings = settings or SimulatorSettings()
        self._simulator = Simulator(self.settings)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="powerp-simulator", daemon=True
        )

    def __repr__(self) -> str:
        return f"<SimulatorThread {self._simulator!r}>"

    @property
    def base_url(self) -> str:
        return self._simulator.base_url

    @property
    def tenant(self) -> Tenant:
        """The simulated tenant; ``tenant.points(...)`` is what queries answer."""
        return self._simulator.tenant

    @property
    def stats(self) -> SimulatorStats:
        return self._simulator.stats

    def client_config(self, **overrides: Any) -> ClientConfig:
        """A client configuration with this simulator's address and credentials."""
        return ClientConfig(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret,
            base_url=self.base_url,
            **overrides,
        )

    def revoke_tokens(self) -> None:
        """Make every token issued so far invalid, as a server restart would."""
        self._loop.call_soon_threadsafe(self._simulator.revoke_tokens)

    def start(self) -> None:
        self._thread.start()
        self._call(self._simulator.start())

    def stop(self) -> None:
        if self._thread.is_alive():
            self._call(self._simulator.aclose())
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=START_TIMEOUT_S)
        self._loop.close()

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _call(self, work: Any) -> None:
        done: Future[None] = asyncio.run_coroutine_threadsafe(work, self._loop)
        done.result(timeout=START_TIMEOUT_S)
