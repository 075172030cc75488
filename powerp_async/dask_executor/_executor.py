"""The driver's side: batches of blocks out to the cluster, staged batches back.

Blocks are cut into batches (see :data:`MIN_BLOCKS_PER_BATCH` for the sizes) and
submitted a few at a time: at most ``batches_in_flight``, two per worker thread by
default, so one waits ready on each worker while it runs another, and memory stays
flat however long the export. Each result is read as it completes (``as_completed``,
fed as results come in) and its future released at once, so Dask forgets it: a
worker that dies later does not make Dask compute a finished batch again.

A batch whose worker died is computed again by Dask elsewhere; the dead attempt's
hidden parts are never committed, and the driver deletes them at the end of the run
(a resume does, if the run stops first). A batch that killed its workers more often
than Dask allows (``distributed.scheduler.allowed-failures``) comes back as failed
blocks, which a resume fetches again.

A run that stops early (Ctrl-C, an error) cancels the batches in flight, but Dask
lets a batch that already runs finish. So each batch's parts carry a staging name of
its own, and the run, on its way out, sets an event on the scheduler and deletes the
parts of its cancelled batches found so far; a batch that finishes staging later
asks the event and deletes its own. Known shortcomings: the event of a run that
stopped early stays on the scheduler (a name, a few bytes) for the scheduler's life,
since clearing it would let a late batch keep its parts; a worker that dies between
writing its parts and asking leaves them to the resume (or, for a cluster this
process closes, to :meth:`DaskExecutor.discard_abandoned_parts`).
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import secrets
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Final

import anyio
from distributed import Client, Event, Future, as_completed
from distributed.scheduler import KilledWorker

from .._engine import EXPORT_ADVICE, RunStats, stopped_after
from .._export._executor import ExportJob, Outcome
from .._export._parts import TEMP_PREFIX, TEMP_SUFFIX
from .._export._staged import StagedBatch, WorkerStop, discard_files
from .._retry import outage_error
from ..errors import ConfigurationError, PowerPError, ServerUnavailableError
from ..models import Block
from ._settings import WorkerSettings
from ._worker import BatchTask, WorkerStoppedError, run_batch

if TYPE_CHECKING:
    from ..client import PowerPClient

logger = logging.getLogger("powerp_async.dask_executor")

MIN_BLOCKS_PER_BATCH: Final = 4
MAX_BLOCKS_PER_BATCH: Final = 64
POINTS_PER_BATCH: Final = 400_000
"""A batch takes blocks until its planned points reach this, within the bounds above.

A task costs the scheduler a millisecond or two and makes at least one part file per
database and day, so a batch should hold a few seconds of one core's decoding (some
200,000 points a second): 400,000 points, about 20 MB of JSON and 30 MB of Arrow on
the worker, which is also the most a dead worker's attempt wastes. A worker runs one
batch at a time and its engine overlaps the requests of that batch only, so a batch
holds at least four blocks even where they are large (a 200 ms window: 180,000 points
a block), and at most 64 where they are tiny (a 1-minute window: 600 points), which
keeps part files from becoming too many and too small.
"""

BATCHES_PER_THREAD: Final = 2
"""Batches in flight per worker thread: one running, one ready to start."""


class DaskExecutor:
    """Fetches an export's blocks on a Dask cluster; pass it to ``export()``.

    ``client`` is a :class:`distributed.Client` of a running cluster whose workers
    have the export folder on a filesystem they share with this process, and the
    credentials in their environment (``POWERP_CLIENT_ID``, ``POWERP_CLIENT_SECRET``).

    Example::

        with distributed.Client("tcp://127.0.0.1:8786") as cluster:
            async with PowerPClient.from_env() as client:
                await export(client, spec, executor=DaskExecutor(cluster))
    """

    stages_parts = True
    label_side = None

    def __init__(self, client: Client, *, batches_in_flight: int | None = None) -> None:
        if batches_in_flight is not None and batches_in_flight < 1:
            raise ConfigurationError(
                f"batches_in_flight: expected 1 or more, got {batches_in_flight}"
            )

        self._client = client
        self._batches_in_flight = batches_in_flight
        self._abandoned: list[tuple[Path, set[str]]] = []

    @asynccontextmanager
    async def run(
        self,
        client: PowerPClient,
        job: ExportJob,
        blocks: Iterable[Block],
        stats: RunStats,
    ) -> AsyncIterator[AsyncIterator[Outcome]]:
        settings = WorkerSettings.from_config(client.config)
        tasks = _tasks(job, settings, blocks)
        limit = self._batches_in_flight or await self._default_limit()
        submission = _Submission(self._client, job.folder, tasks, limit, stats)
        try:
            yield submission.outcomes()
        finally:
            stagings = await submission.cancel()
            if stagings:
                self._abandoned.append((job.folder, stagings))

    def discard_abandoned_parts(self) -> None:
        """Delete what workers staged for the batches that runs gave up on when they
        stopped early; for once those workers are stopped, as when this process
        closes its own cluster.

        A run deletes them itself as it stops, and its workers delete what they
        stage later, but a worker that the closing cluster stops between writing
        its parts and learning that the run stopped leaves them behind.
        """
        for folder, stagings in self._abandoned:
            _discard_staged(folder, stagings)
        self._abandoned.clear()

    async def _default_limit(self) -> int:
        threads: dict[str, int] = await anyio.to_thread.run_sync(self._client.nthreads)
        return max(1, BATCHES_PER_THREAD * sum(threads.values()))


class _Submission:
    """The batches of one run: submitted, read back and released, a few at a time."""

    def __init__(
        self,
        client: Client,
        folder: Path,
        tasks: Iterator[BatchTask],
        limit: int,
        stats: RunStats,
    ) -> None:
        self._client = client
        self._folder = folder
        self._stats = stats
        self._tasks = tasks
        self._limit = limit
        self._token = secrets.token_hex(4)
        self._prefix = f"powerp-batch-{self._token}"
        self._run_stopped = Event(f"{self._prefix}-stopping", client=client)
        self._serials = itertools.count()
        self._completed = as_completed(loop=client.loop)
        self._in_flight: dict[str, tuple[Future[StagedBatch], BatchTask]] = {}

    async def outcomes(self) -> AsyncIterator[Outcome]:
        while len(self._in_flight) < self._limit and self._submit():
            pass

        while self._in_flight:
            future = await anyio.to_thread.run_sync(
                next, self._completed, abandon_on_cancel=True
            )
            outcome = await self._read(future)
            if outcome.stop is not None:
                async for finished in self._stopping(outcome):
                    yield finished
                raise _stop_error(outcome.stop, self._stats)

            self._submit()
            yield outcome

    async def _stopping(self, stopped: StagedBatch) -> AsyncIterator[StagedBatch]:
        """The batch that stopped the run, then those already back: they are
        committed before the run ends, as the local engine commits what it fetched.
        Batches still running are cancelled on the way out."""
        yield stopped

        finished = [f for f, _ in self._in_flight.values() if f.status == "finished"]
        for future in finished:
            outcome = await self._read(future)
            yield dataclasses.replace(outcome, stop=None)

    def _submit(self) -> bool:
        task = next(self._tasks, None)
        if task is None:
            return False

        serial = next(self._serials)
        key = f"{self._prefix}-{serial}"
        # The token's length is fixed, so no batch's staging begins another's.
        staging = f"{self._token}{serial:x}"
        task = dataclasses.replace(task, staging=staging, stopping=self._run_stopped)
        future = self._client.submit(run_batch, task, key=key, pure=False)
        self._in_flight[key] = (future, task)
        self._completed.add(future)
        return True

    async def _read(self, future: Future[StagedBatch]) -> StagedBatch:
        """The batch's outcome; its future released at once, whatever it held.

        The batch stays in flight until its outcome is here: a run cancelled while
        it is read then deletes what the batch staged, which nobody will commit.
        """
        key = str(future.key)
        _, task = self._in_flight[key]
        try:
            result: StagedBatch = await anyio.to_thread.run_sync(future.result)
        except KilledWorker as error:
            self._settle(key, future)
            return _lost(task, f"its workers died while fetching it ({error})")
        except WorkerStoppedError as error:
            self._settle(key, future)
            if error.kind == ConfigurationError.__name__:
                raise ConfigurationError(f"on a Dask worker: {error}") from None
            raise WorkerStoppedError(f"on a Dask worker: {error}", error.kind) from None

        self._settle(key, future)
        return result

    def _settle(self, key: str, future: Future[StagedBatch]) -> None:
        del self._in_flight[key]
        future.release()

    async def cancel(self) -> set[str]:
        """On the way out of a run: cancel the batches still in flight, and delete
        what they staged so far; their workers delete what they stage later.
        Returns the stagings of the batches cancelled.

        None of them came back, so none was committed, and no journal names their
        parts: a resume never has them to reveal. A worker that dies before it can
        delete its parts leaves them to the resume, or to
        :meth:`DaskExecutor.discard_abandoned_parts`.
        """
        abandoned = list(self._in_flight.values())
        self._in_flight.clear()
        if not abandoned:
            return set()

        futures = [future for future, _ in abandoned]
        stagings = {task.staging for _, task in abandoned}
        # Run to the end even when the run was cancelled (Ctrl-C): it is the last
        # chance to tell the workers.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(self._stop, futures)
            await anyio.to_thread.run_sync(_discard_staged, self._folder, stagings)

        return stagings

    def _stop(self, futures: list[Future[StagedBatch]]) -> None:
        """Tell the batches still running that the run stopped, before the cluster
        forgets them; a batch that asks after this deletes its parts itself."""
        try:
            self._run_stopped.set()
            self._client.cancel(futures)
        except Exception as error:
            # The cluster may be what failed; the parts already staged are still
            # deleted, and those staged later are left to the resume.
            logger.warning("could not cancel the batches in flight: %r", error)


def _stop_error(stop: WorkerStop, stats: RunStats) -> PowerPError:
    """The error that ends the run, told with what the driver committed."""
    if stop.kind == ServerUnavailableError.__name__:
        return outage_error(stop.outage_s, stopped_after(stats), EXPORT_ADVICE.outage)

    if stop.kind == ConfigurationError.__name__:
        return ConfigurationError(f"on a Dask worker: {stop.message}")

    return WorkerStoppedError(f"on a Dask worker: {stop.message}", stop.kind)


def _discard_staged(folder: Path, stagings: set[str]) -> None:
    """Delete the staged parts whose names begin with one of ``stagings``."""
    beginnings = tuple(f"{TEMP_PREFIX}{staging}-" for staging in stagings)
    try:
        found = [
            str(path.relative_to(folder))
            for path in folder.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}")
            if path.name.startswith(beginnings)
        ]
    except OSError as error:
        logger.warning("could not look for the parts of cancelled batches: %s", error)
        return

    discard_files(folder, found)
    if found:
        logger.info("deleted %d parts of batches cancelled in flight", len(found))


def _lost(task: BatchTask, reason: str) -> StagedBatch:
    logger.warning("%d blocks failed: %s", len(task.blocks), reason)
    return StagedBatch((), (), 0, failed=tuple((b, reason) for b in task.blocks))


def _tasks(
    job: ExportJob, settings: WorkerSettings, blocks: Iterable[Block]
) -> Iterator[BatchTask]:
    """The blocks in batches, lazily, each with the signals it asks for.

    The folder travels as an absolute path: a worker resolves a relative one against
    its own working directory, not the driver's.
    """
    folder = os.path.abspath(job.folder)
    by_key = {(m.database_id, m.index): m for m in job.signals}
    for batch in _batches(blocks):
        asked = {(b.database_id, index) for b in batch for index in b.indexes}
        signals = tuple(by_key[key] for key in sorted(asked) if key in by_key)
        yield BatchTask(
            settings, folder, job.fmt, job.neutralise_formulas, batch, signals
        )


def _batches(blocks: Iterable[Block]) -> Iterator[tuple[Block, ...]]:
    batch: list[Block] = []
    points = 0
    for block in blocks:
        batch.append(block)
        points += block.max_points
        full = len(batch) >= MAX_BLOCKS_PER_BATCH or points >= POINTS_PER_BATCH
        if full and len(batch) >= MIN_BLOCKS_PER_BATCH:
            yield tuple(batch)
            batch, points = [], 0

    if batch:
        yield tuple(batch)
