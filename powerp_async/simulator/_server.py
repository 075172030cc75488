"""The simulator as an in-process server on a free loopback port."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final

from aiohttp import web

from ._app import API_BASE, TOKENS, build_app, check_retired_exist
from ._auth import TokenStore
from ._demo import demo_tenant
from ._settings import SimulatorSettings
from ._stats import SimulatorStats
from ._tenant import Tenant

logger = logging.getLogger("powerp_async.simulator")

SHUTDOWN_TIMEOUT_S: Final = 2.0
"""How long a stop waits for answers still being written."""


class Simulator:
    """Serve the simulated API while the ``async with`` block runs.

    >>> async with Simulator() as simulator:  # doctest: +SKIP
    ...     print(simulator.base_url)
    http://127.0.0.1:40123/rt-api/api

    ``port=0`` picks a free port. The tenant is built on construction, so ``tenant``
    (and the anchor it took from the clock) is there before the server starts.
    """

    def __init__(
        self,
        settings: SimulatorSettings | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings or SimulatorSettings()
        self.tenant: Tenant = demo_tenant(self.settings)
        check_retired_exist(self.tenant, self.settings.retired)
        self.stats = SimulatorStats()
        self._host = host
        self._port = port
        self._clock = clock
        self._wall_clock = wall_clock
        self._runner: web.AppRunner | None = None
        self._tokens: TokenStore | None = None
        self._bound: tuple[str, int] | None = None

    def __repr__(self) -> str:
        where = self.base_url if self._bound else "not running"
        return f"<Simulator {where} seed={self.settings.seed}>"

    @property
    def base_url(self) -> str:
        """The API root to give a client, e.g. ``http://127.0.0.1:40123/rt-api/api``."""
        return f"{self.origin}{API_BASE}"

    @property
    def origin(self) -> str:
        """``http://host:port`` of the running server (the stats live below it)."""
        if self._bound is None:
            raise RuntimeError(
                "the simulator is not running: expected it inside "
                "'async with Simulator() as simulator'"
            )

        host, port = self._bound
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def revoke_tokens(self) -> None:
        """Invalidate every token issued so far: the next use of one gets a 401."""
        if self._tokens is not None:
            self._tokens.revoke_all()

    async def start(self) -> None:
        """Bind and serve; ``OSError`` if the address is taken or not local."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already running")

        app = build_app(
            self.settings,
            tenant=self.tenant,
            stats=self.stats,
            clock=self._clock,
            wall_clock=self._wall_clock,
        )
        self._tokens = app[TOKENS]
        runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        await runner.setup()
        # "localhost" may resolve to both 127.0.0.1 and ::1, and port 0 would then
        # give each its own port; one address keeps one base URL.
        host = "127.0.0.1" if self._host == "localhost" else self._host
        try:
            await web.TCPSite(runner, host, self._port).start()
        except BaseException:
            await runner.cleanup()
            raise

        self._runner = runner
        bound_host, bound_port = runner.addresses[0][:2]
        self._bound = (bound_host, bound_port)
        logger.info("simulator serving %s", self.base_url)

    async def aclose(self) -> None:
        """Stop serving; safe to call twice."""
        runner, self._runner = self._runner, None
        self._bound = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
