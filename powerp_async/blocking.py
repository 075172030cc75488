"""Plain synchronous calls, for scripts that are not async.

Each call runs the async client to completion and returns its result. It works with
or without an event loop already running in the thread (a Jupyter kernel has one):
in that case the work runs on a short-lived thread of its own, so the caller's loop is
never re-entered. In a notebook, prefer top-level ``await`` on the async API; these
are for plain scripts.

Example::

    from powerp_async import ClientConfig, blocking

    config = ClientConfig.from_env()
    signals = blocking.measurements(config)
    table = blocking.fetch_table(config, signals[:20], start, end, window="1s")
    frame = blocking.fetch_frame(config, signals[:20], start, end, window="1m")
    for batch in blocking.fetch_batches(config, signals, start, end):
        print(batch.num_rows)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import TYPE_CHECKING, TypeVar

import pyarrow as pa
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._export import ExportReport, ExportSpec
from ._export import export as export_async
from ._export._executor import Executor
from .client import PowerPClient
from .config import ClientConfig
from .models import Measurement

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")


def measurements(config: ClientConfig) -> list[Measurement]:
    """Every signal the credentials can see.

    Example::

        signals = blocking.measurements(ClientConfig.from_env())
        wind = [s for s in signals if s.unit_symbol == "m/s"]
    """

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
    block_size: int | None = None,
) -> pa.Table:
    """All points of ``signals`` over ``[start, end)``, as one table.

    Example::

        table = blocking.fetch_table(config, signals[:20], start, end, window="1s")
        table.to_pandas()
    """
    chosen = list(signals)

    async def work() -> pa.Table:
        async with PowerPClient(config) as client:
            return await client.fetch_table(
                chosen, start, end, window=window, block_size=block_size
            )

    return run(work)


def fetch_frame(
    config: ClientConfig,
    signals: Iterable[Measurement],
    start: datetime,
    end: datetime,
    *,
    window: str = "1s",
    block_size: int | None = None,
) -> pd.DataFrame:
    """All points as a pandas DataFrame with the signals' metadata joined on; see
    :meth:`PowerPClient.fetch_frame <powerp_async.PowerPClient.fetch_frame>`.

    Example::

        frame = blocking.fetch_frame(config, signals[:20], start, end, window="1m")
    """
    chosen = list(signals)

    async def work() -> pd.DataFrame:
        async with PowerPClient(config) as client:
            return await client.fetch_frame(
                chosen, start, end, window=window, block_size=block_size
            )

    return run(work)


def fetch_batches(
    config: ClientConfig,
    signals: Iterable[Measurement],
    start: datetime,
    end: datetime,
    *,
    window: str = "1s",
    block_size: int | None = None,
) -> Iterator[pa.RecordBatch]:
    """The points as Arrow record batches, one per block, as they arrive.

    The fetch runs on a thread of its own while the caller iterates, with the memory
    bounds of :meth:`PowerPClient.fetch <powerp_async.PowerPClient.fetch>`. Blocks
    that fail after retries are raised together as
    :class:`~powerp_async.FetchFailedError` at the end, after every batch of the
    blocks that succeeded was delivered. Stopping early (``break``) cancels the
    requests still in flight.

    Example::

        for batch in blocking.fetch_batches(config, signals, start, end):
            writer.write_batch(batch)
    """
    chosen = list(signals)
    with (
        start_blocking_portal(name="powerp-blocking") as portal,
        portal.wrap_async_context_manager(PowerPClient(config)) as client,
    ):
        stream = client.fetch_batches(
            chosen, start, end, window=window, block_size=block_size
        )
        yield from _iterate(portal, stream)


def export(
    config: ClientConfig,
    spec: ExportSpec,
    *,
    resume: bool = False,
    executor: Executor | None = None,
) -> ExportReport:
    """Run an export to its folder; see :func:`powerp_async.export`.

    Example::

        spec = ExportSpec(out=Path("week"), start=start, end=end, window="1m")
        report = blocking.export(config, spec)
        print(report.points, report.complete)
    """

    async def work() -> ExportReport:
        async with PowerPClient(config) as client:
            return await export_async(client, spec, resume=resume, executor=executor)

    return run(work)


def run(work: Callable[[], Awaitable[T]]) -> T:
    """Run ``work()`` to completion, on this thread if it has no running loop.

    >>> async def answer() -> int:
    ...     return 42
    >>> run(answer)
    42
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_call(work))

    return _run_on_own_thread(work)


def _iterate(
    portal: BlockingPortal,
    stream: AbstractAsyncContextManager[AsyncIterator[pa.RecordBatch]],
) -> Iterator[pa.RecordBatch]:
    with portal.wrap_async_context_manager(stream) as batches:
        try:
            while (batch := _next_batch(portal, batches)) is not None:
                yield batch
        except GeneratorExit:
            # The caller stopped early: leaving the stream normally cancels the
            # requests still in flight, where the exception would reach the engine.
            return


def _next_batch(
    portal: BlockingPortal, batches: AsyncIterator[pa.RecordBatch]
) -> pa.RecordBatch | None:
    return portal.call(_next_or_none, batches)


async def _next_or_none(items: AsyncIterator[pa.RecordBatch]) -> pa.RecordBatch | None:
    return await anext(items, None)


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
