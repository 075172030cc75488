"""What a Dask task runs: fetch a batch of blocks, stage its parts, describe them.

:func:`run_batch` runs on a worker. It hands the fetching to the process's engine loop
(see ``_loop``), where one client and one engine per settings live for the life of
the process, then writes the batch's parts under hidden names in the export folder
and returns a :class:`~powerp_async._export.StagedBatch`: names, checks and counts,
never points. It commits nothing: run twice, it stages twice, and the driver commits
one of the two.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import anyio
import pyarrow as pa
from distributed import Event

from .._assembly import BlockResult
from .._engine import Engine, RunStats
from .._export._formats import Format
from .._export._gaps import block_gaps
from .._export._parts import PartStager
from .._export._report import failure_reason
from .._export._staged import (
    STAGED_COUNTERS,
    StagedBatch,
    WorkerStop,
    discard_files,
)
from ..client import PowerPClient
from ..errors import PowerPError
from ..models import Block, Measurement
from ._loop import engine_loop
from ._settings import WorkerSettings

logger = logging.getLogger("powerp_async.dask_executor")

RUN_ID_BYTES: Final = 6
"""Random bytes in each attempt's part names: attempts never write the same file."""


@dataclass(frozen=True, slots=True)
class BatchTask:
    """One task's blocks, where their parts go, and the settings to fetch them by.

    Nothing in it is secret; its repr is short, since Dask logs the arguments of a
    task that fails.
    """

    settings: WorkerSettings
    folder: str
    fmt: Format
    neutralise_formulas: bool
    blocks: tuple[Block, ...]
    signals: tuple[Measurement, ...]
    """The batch's signals, whose declared types guide decoding."""
    staging: str = ""
    """Begins the names of the batch's staged parts (no ``-`` in it), so that the
    driver can find them; empty outside a :class:`DaskExecutor` run."""
    stopping: Event | None = None
    """Set by the driver when it stops without waiting for the batch."""

    def __repr__(self) -> str:
        return f"<BatchTask of {len(self.blocks)} blocks into {self.folder}>"


class WorkerStoppedError(PowerPError):
    """What ended a batch and, with it, the run (refused credentials, a server down
    too long), told by its kind and message, since the original error may not
    survive the trip back to the driver."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message, kind)
        self.kind = kind

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(slots=True)
class _Fetched:
    done: list[tuple[BlockResult, pa.RecordBatch]]
    failed: list[tuple[Block, str]]
    stats: RunStats
    side: str | None
    stop: WorkerStop | None = None


@dataclass(slots=True)
class _Engines:
    """This process's clients and engines, one per settings; used on the loop only.

    One engine per process keeps what it learns (query sizes the server takes, the
    edge it labels windows by) from batch to batch, as one local run does; a lock
    lets one batch use it at a time.
    """

    clients: list[PowerPClient] = field(default_factory=list)
    engines: dict[WorkerSettings, tuple[Engine, anyio.Lock]] = field(
        default_factory=dict
    )

    async def fetch(self, task: BatchTask) -> _Fetched:
        engine, lock = await self._engine(task.settings)
        async with lock:
            engine.stats = RunStats()
            engine.learn_types(task.signals)
            fetched = _Fetched([], [], engine.stats, None)
            try:
                await _collect(engine, task, fetched)
            except PowerPError as error:
                # The blocks fetched before the run-ending error are staged all the
                # same, and committed by the driver before it ends the run.
                outage_s = getattr(error, "outage_s", 0.0)
                fetched.stop = WorkerStop(type(error).__name__, str(error), outage_s)

            fetched.side = engine.label_side
            return fetched

    async def _engine(self, settings: WorkerSettings) -> tuple[Engine, anyio.Lock]:
        if settings not in self.engines:
            client = PowerPClient(settings.client_config())
            await client.__aenter__()
            self.clients.append(client)
            self.engines[settings] = (client.engine(), anyio.Lock())
            logger.info("worker client opened for %r", settings.base_url)

        return self.engines[settings]

    async def aclose(self) -> None:
        for client in self.clients:
            await client.aclose()


async def _collect(engine: Engine, task: BatchTask, fetched: _Fetched) -> None:
    async with engine.run(task.blocks) as results:
        async for result in results:
            if result.error is None and result.batch is not None:
                fetched.done.append((result, result.batch))
            else:
                error = result.error or RuntimeError("no data")
                reason = failure_reason(result.block, error)
                fetched.failed.append((result.block, reason))


_ENGINES: Final = _Engines()


def run_batch(task: BatchTask) -> StagedBatch:
    """Fetch ``task``'s blocks and stage their parts; the task Dask runs.

    Raises :class:`WorkerStoppedError` for an error that ends the whole run.
    """
    try:
        fetched = engine_loop(_ENGINES.aclose).run(_ENGINES.fetch(task))
    except PowerPError as error:
        raise WorkerStoppedError(str(error), type(error).__name__) from None

    staged = _stage(task, fetched)
    if staged.parts and _driver_stopped(task):
        # No one will commit these parts, nor delete them: the driver has deleted
        # those it found when it stopped, and these may have come after.
        discard_files(Path(task.folder), [part.temporary for part in staged.parts])
        return StagedBatch((), (), 0, failed=_not_taken(task))

    return staged


def _driver_stopped(task: BatchTask) -> bool:
    """Whether the driver stopped without this batch; asked of the scheduler, after
    the parts are written, so that a driver that stops later finds them."""
    if task.stopping is None:
        return False

    try:
        return bool(task.stopping.is_set())
    except Exception as error:
        # A batch is never lost to this question: its parts are left to the
        # driver, or to the resume, as they were before it was asked.
        logger.warning("could not ask whether the run still goes on: %r", error)
        return False


def _not_taken(task: BatchTask) -> tuple[tuple[Block, str], ...]:
    reason = "the run stopped before this batch came back"
    return tuple((block, reason) for block in task.blocks)


def _stage(task: BatchTask, fetched: _Fetched) -> StagedBatch:
    """Write the fetched points under hidden names, here, off the engine's loop."""
    run_id = secrets.token_hex(RUN_ID_BYTES)
    if task.staging:
        run_id = f"{task.staging}-{run_id}"
    stager = PartStager(Path(task.folder), task.fmt, run_id, task.neutralise_formulas)
    parts = stager.stage([batch for _, batch in fetched.done if batch.num_rows])
    gaps = [
        gap
        for result, batch in fetched.done
        for gap in block_gaps(result.kept_block, batch, fetched.side)
    ]
    owed = [
        (block, failure_reason(block, error))
        for result, _ in fetched.done
        for block, error in result.refused
    ]
    return StagedBatch(
        units=tuple(result.block.unit_id for result, _ in fetched.done),
        parts=parts,
        points=sum(batch.num_rows for _, batch in fetched.done),
        empty=tuple(gaps),
        dropped_points=fetched.stats.dropped_points,
        failed=tuple(fetched.failed),
        owed=tuple(owed),
        counters=tuple(
            (name, getattr(fetched.stats, name)) for name in STAGED_COUNTERS
        ),
        stop=fetched.stop,
    )
