"""An export's first request, the listing, waited for through an outage.

A server down when an export starts (refused connections, 5xx, 429) is waited for as
one down in mid-run is: up to the client's ``max_outage_s`` in all, then the run
stops with the same :class:`~powerp_async.ServerUnavailableError`. Each wait is told
at WARNING on :data:`STARTUP_LOGGER`, which the command shows without ``-v``, so a
user sees the run is alive and what it waits for.
"""

from __future__ import annotations

import itertools
import logging
import time
from typing import Final

import anyio

from .._retry import backoff_s, outage_error
from ..client import PowerPClient
from ..errors import ServerError, ThrottledError, TransportError
from ..models import Measurement

STARTUP_LOGGER: Final = "powerp_async.export.startup"

RUN_AGAIN: Final = "Run it again once the server is back"

logger = logging.getLogger(STARTUP_LOGGER)

_SERVER_DOWN: Final = (ServerError, ThrottledError, TransportError)


async def list_through_outage(client: PowerPClient) -> list[Measurement]:
    """The listing; the server is waited for while it fails, up to ``max_outage_s``
    from the start, then :class:`~powerp_async.ServerUnavailableError`.

    The first try has no deadline: a slow listing of a large tenant is no outage.
    """
    started = time.monotonic()
    deadline = started + client.config.max_outage_s
    try:
        return await client.measurements(attempts=1)
    except _SERVER_DOWN as error:
        last = error

    # A first try that took the whole outage allowed leaves no time to try again.
    with anyio.move_on_after(deadline - time.monotonic()):
        for attempt in itertools.count(1):
            if time.monotonic() >= deadline:
                break
            await _wait_before_next(attempt, last, deadline)
            try:
                return await client.measurements(attempts=1)
            except _SERVER_DOWN as error:
                last = error

    stopped = f"before anything was fetched (last: {last})"
    raise outage_error(time.monotonic() - started, stopped, RUN_AGAIN) from last


async def _wait_before_next(attempt: int, error: Exception, deadline: float) -> None:
    left_s = max(0.0, deadline - time.monotonic())
    delay_s = min(backoff_s(attempt), left_s)
    logger.warning(
        "the server fails the listing (%s); trying again in %.1f s, giving up in "
        "%.0f s",
        error,
        delay_s,
        left_s,
    )
    await anyio.sleep(delay_s)
