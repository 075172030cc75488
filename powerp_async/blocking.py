"""Plain synchronous calls, for scripts that are not async.

Each call runs the async client to completion and returns its result. It works with
or without an event loop already running in the thread (a Jupyter kernel has one):
in that case the work runs on a short-lived thread of its own, so the caller's loop is
never re-entered. In a notebook, prefer top-level ``await`` on the async API; these
are for plain scripts.

>>> from powerp_async import blocking, ClientConfig          # doctest: +SKIP
>>> config = ClientConfig.from_env()
>>> signals = blocking.measurements(config)
>>> table = blocking.fetch_table(config, signals[:20], start, end, window="1s")
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import TypeVar

import pyarrow as pa

from ._export import ExportReport, ExportSpec
from ._export import export as export_async
from .client import PowerPClient
from .config import ClientConfig
from .models import Measurement

T = TypeVar("T")


def measurements(config: ClientConfig) -> list[Measurement]:
    """Every signal the credentials can see."""

    async def work() -> list[Measurement]:
        async with PowerPClient(config) as client:
            return await client.measurements()

    return run(work)


def fetch_table(
    config: ClientConfig,
    signals: Iterable[Measurement],
    start: datetime,
    end: datetime,
    *,
    window: str = "1s",
) -> pa.Table:
    """All points of ``signals`` over ``[start, end)``, as one table."""
    chosen = list(signals)

    async def work() -> pa.Table:
        async with PowerPClient(config) as client:
            return await client.fetch_table(chosen, start, end, window=window)

    return run(work)


def export(
    config: ClientConfig, spec: ExportSpec, *, resume: bool = False
) -> ExportReport:
    """Run an export to its folder; see :func:`powerp_async.export`."""

    async def work() -> ExportReport:
        async with PowerPClient(config) as client:
            return await export_async(client, spec, resume=resume)

    return run(work)


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work()`` to completion, on this thread if it has no running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_call(work))

    return _run_on_own_thread(work)


async def _call(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def _run_on_own_thread(work: Callable[[], Awaitable[T]]) -> T:
    outcome: list[T] = []
    failure: list[BaseException] = []

    def target() -> None:
        try:
            outcome.append(asyncio.run(_call(work)))
        except BaseException as error:  # handed to the caller's thread below
            failure.append(error)

    worker = threading.Thread(target=target, name="powerp-blocking")
    worker.start()
    worker.join()
    if failure:
        raise failure[0]
    return outcome[0]
