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
from typing import TYPE_CHECKING, Final, Generic, TypeVar

import pyarrow as pa
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._arguments import as_config, as_signals
from ._export import ExportReport, ExportSpec
from ._export import export as export_async
from ._export._executor import Executor
from .client import PowerPClient
from .config import ClientConfig
from .models import Measurement

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")

CANCEL_CHECK_S: Final = 0.1
"""How often a caller waiting on the work's thread looks for its own cancellation."""


def measurements(config: ClientConfig) -> list[Measurement]:
    """Every signal the credentials can see.

    Example::

        signals = blocking.measurements(ClientConfig.from_env())
        wind = [s for s in signals if s.unit_symbol == "m/s"]
    """

    config = as_config(config)

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
    config, chosen = as_config(config), as_signals(signals)

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
    config, chosen = as_config(config), as_signals(signals)

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
    config, chosen = as_config(config), as_signals(signals)
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

    config = as_config(config)

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
    """Run ``work`` on a thread with a loop of its own, the caller's thread waiting.

    If the wait is interrupted (Ctrl-C in a notebook, or the caller's task being
    cancelled), the work is cancelled and waited for, so what it holds (an export's
    folder, connections) is released before the interruption reaches the caller.
    """
    running = _OwnLoop(work)
    running.thread.start()
    try:
        _wait_or_raise_cancelled(running.finished)
    except BaseException:
        running.cancel()
        # An event, not Thread.join: a join interrupted by Ctrl-C can leave the
        # thread marked as stopped while it still runs (CPython 3.11).
        running.finished.wait()
        raise

    return running.result()


class _OwnLoop(Generic[T]):
    """``work`` run to completion by ``asyncio.run`` on a thread of its own."""

    def __init__(self, work: Callable[[], Awaitable[T]]) -> None:
        self._work = work
        self._outcome: list[T] = []
        self._failure: list[BaseException] = []
        self._task: asyncio.Task[T] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._started = threading.Event()
        self.finished = threading.Event()
        self.thread = threading.Thread(target=self._target, name="powerp-blocking")

    def cancel(self) -> None:
        """Cancel the work, whether or not it has started yet."""
        self._started.wait()
        if self._loop is not None and self._task is not None:
            self._loop.call_soon_threadsafe(self._task.cancel)

    def result(self) -> T:
        if self._failure:
            raise self._failure[0]
        return self._outcome[0]

    def _target(self) -> None:
        try:
            self._outcome.append(asyncio.run(self._main()))
        except BaseException as error:  # handed to the caller's thread
            self._failure.append(error)
        finally:
            self._started.set()
            self.finished.set()

    async def _main(self) -> T:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._started.set()
        return await self._work()


def _wait_or_raise_cancelled(finished: threading.Event) -> None:
    """Wait for ``finished``; raise ``CancelledError`` if the caller's task is
    cancelled meanwhile (``asyncio.run`` answers Ctrl-C that way, and cannot
    deliver it while this thread is held in a plain wait)."""
    caller = asyncio.current_task()
    while not finished.wait(CANCEL_CHECK_S):
        if caller is not None and caller.cancelling():
            raise asyncio.CancelledError
