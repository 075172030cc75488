"""A bulk export: plan, fetch, write in committed parts, resume, report.

The plan is frozen in the journal's header (parameters and the signal list), so a
resumed run plans exactly the same blocks and skips those already committed: every point
reaches the dataset exactly once, whatever instant the previous run stopped at.

A run that stops early (Ctrl-C, cancellation, an error) first commits the blocks it
had fetched but not yet written, so resuming does not fetch them again.

The blocks are fetched by an executor (``executor=``): by default the client's own
engine in this process; :mod:`powerp_async.dask_executor` fetches them on a cluster,
whose workers stage part files that only this driver commits (see ``_executor``).

A block that still fails after its retries is recorded in the journal as failed, with
its reason, and the run goes on with the others; the report counts and names the
failed blocks, and a resume fetches them (and only them, if the rest was done). A
failure that speaks for every block (refused credentials, a server down longer than
``max_outage_s``, every query refused as bad) ends the run early; the blocks given up
on so far are recorded, and the report is written, all the same.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import anyio

from .._assembly import BlockResult
from .._engine import RunStats
from .._groups import plain_errors
from .._hooks import ShieldedHook, check_hook
from .._redact import mask_url
from .._time import format_wire, to_epoch_us
from ..client import PowerPClient
from ..errors import ExportWriteError, FetchFailedError
from ..models import Block, Measurement
from ..planning import TimeRange, ends_after_now, time_slices
from ._executor import Executor, ExportJob, LocalExecutor, Outcome
from ._folder import check_folder, writing
from ._gaps import block_gaps
from ._manifest import read_manifest
from ._open import OpenExport, create_folder, reopen_folder
from ._outstanding import Outstanding
from ._parts import TEMP_PREFIX, TEMP_SUFFIX, PartWriter
from ._report import ExportReport, failure_reason, write_report
from ._spec import ExportSpec, check_call, select_signals
from ._staged import (
    STAGED_COUNTERS,
    RemoteBlockError,
    StagedBatch,
    check_staged,
    discard_files,
)

logger = logging.getLogger("powerp_async.export")
range_logger = logging.getLogger("powerp_async.export.range")
"""Shown on the command line without ``-v``: a range that ends after now."""

PROGRESS_INTERVAL_S: Final = 0.5
FLUSH_CHECK_S: Final = 1.0
"""How often a run checks whether buffered blocks have waited long enough to commit."""

ProgressCallback = Callable[[RunStats, int], None]
Failures = list[tuple[Block, BaseException]]


async def export(
    client: PowerPClient,
    spec: ExportSpec,
    *,
    resume: bool = False,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
) -> ExportReport:
    """Run (or resume) an export into ``spec.out``; returns the report it also writes.

    ``progress`` is called with the run's counters and the number of blocks, twice
    a second and once at the end; it must be a plain function, and one that raises is
    logged once and does not stop the export.

    ``executor`` fetches the blocks; by default the client's own engine, in this
    process. :class:`powerp_async.dask_executor.DaskExecutor` fetches them on a Dask
    cluster instead, with the same journal, report and exactly-once guarantee.

    Raises :class:`~powerp_async.FetchFailedError` after writing everything else if
    some blocks could not be fetched (the report, :meth:`ExportReport.read`, names
    them); running again with ``resume=True`` fetches only what is missing. Raises
    :class:`ExportWriteError` if the folder cannot be written during the run, and
    :class:`~powerp_async.ConfigurationError`, before anything is fetched, if the
    folder cannot be used or does not match what is resumed.

    Example::

        async with PowerPClient.from_env() as client:
            report = await export(client, spec)         # spec: an ExportSpec
            # after a crash or Ctrl-C, the same call with resume=True goes on:
            report = await export(client, spec, resume=True)
    """
    check_call(client, spec, executor)
    check_hook("progress", progress)
    shown = None if progress is None else ShieldedHook("progress", progress)
    _warn_of_future(spec.time_range())
    check_folder(spec.out, fresh=not resume)
    block_size = spec.block_size or client.config.block_size
    source = spec.source or mask_url(client.config.base_url)
    if resume:
        opened = reopen_folder(spec, block_size, source)
    else:
        signals = await select_signals(client, spec)
        opened = create_folder(spec, block_size, source, signals)

    try:
        report = await _run(client, spec, opened, shown, executor or LocalExecutor())
    except BaseException:
        opened.manifest.abandon()
        raise

    with writing(spec.out):
        opened.manifest.close()
    return report


async def _run(
    client: PowerPClient,
    spec: ExportSpec,
    opened: OpenExport,
    progress: ProgressCallback | None,
    executor: Executor,
) -> ExportReport:
    stats = RunStats(blocks_done=len(opened.done), blocks_resumed=len(opened.done))
    writer = PartWriter(
        spec.out,
        spec.format,
        opened.manifest,
        spec.rows_per_flush,
        neutralise_formulas=spec.neutralise_formulas,
        stats=stats,
    )
    fetch = _Fetch(client, spec, opened, executor, writer, stats, [])
    failures = fetch.failures
    try:
        await fetch.run(progress)
    except BaseException as error:
        writer.salvage()
        _account_while_stopping(spec, opened, stats, failures, error)
        raise

    with writing(spec.out):
        opened.manifest.check_in_place()
        if executor.stages_parts:
            _remove_leftovers(spec.out)

        opened.manifest.record_failed(_reasons(failures))
        report = _write_report(spec, opened, stats)

    if failures:
        raise FetchFailedError(failures)

    return report


def _account_while_stopping(
    spec: ExportSpec,
    opened: OpenExport,
    stats: RunStats,
    failures: Failures,
    error: BaseException,
) -> None:
    """Record the blocks given up on, and the report of the run as it stopped (but
    where the folder itself failed it): the server, Ctrl-C or the caller's
    cancellation stopped it.

    An error here is logged, not raised: the one that stopped the run matters more.
    """
    try:
        with writing(spec.out):
            opened.manifest.record_failed(_reasons(failures))
            if not isinstance(error, ExportWriteError):
                _write_report(spec, opened, stats)
    except Exception as failure:
        logger.warning("could not record the run's outcome while stopping: %s", failure)


def _write_report(
    spec: ExportSpec, opened: OpenExport, stats: RunStats
) -> ExportReport:
    journal = read_manifest(spec.out)
    journal.empty_signals.extend(_not_asked(opened.signals, opened.span))
    total = opened.blocks_planned + len(journal.owed)
    report = ExportReport.build(
        journal, stats, total, opened.max_points, opened.points_before
    )
    write_report(spec.out, report)
    return report


def _reasons(failures: Failures) -> dict[str, str]:
    """Each failed block's unit id with what ended it, for the journal and report."""
    return {block.unit_id: failure_reason(block, error) for block, error in failures}


@dataclass(slots=True)
class _Fetch:
    """One run's fetching: outcomes from the executor into the writer."""

    client: PowerPClient
    spec: ExportSpec
    opened: OpenExport
    executor: Executor
    writer: PartWriter
    stats: RunStats
    failures: Failures
    outstanding: Outstanding = field(default_factory=Outstanding)

    async def run(self, progress: ProgressCallback | None) -> None:
        with plain_errors():
            async with anyio.create_task_group() as group:
                if progress is not None:
                    total = self.opened.blocks_total
                    group.start_soon(_report_progress, progress, self.stats, total)

                group.start_soon(_flush_when_due, self.writer)
                async with self.executor.run(
                    self.client, self._job(), self._blocks(), self.stats
                ) as outcomes:
                    async for outcome in outcomes:
                        self._take(outcome)

                self.writer.flush()
                self._account_unsettled()
                group.cancel_scope.cancel()

        if progress is not None:
            # The last word on a finished run, not the state up to half a second ago.
            progress(self.stats, self.opened.blocks_total)

    def _job(self) -> ExportJob:
        return ExportJob(
            self.spec.out,
            self.spec.format,
            self.spec.neutralise_formulas,
            tuple(self.opened.signals),
        )

    def _blocks(self) -> Iterator[Block]:
        """The pending blocks, tracked when they come back staged, which may be
        more than once."""
        pending = self.opened.pending()
        if not self.executor.stages_parts:
            return pending

        return self.outstanding.issue(pending)

    def _take(self, outcome: Outcome) -> None:
        if isinstance(outcome, StagedBatch):
            self._commit(outcome)
        else:
            _take(outcome, self.writer, self.failures, self.executor.label_side)

    def _commit(self, batch: StagedBatch) -> None:
        """Commit a staged batch, unless its blocks were settled by another attempt."""
        _add_counters(self.stats, batch)
        settled = [*batch.units, *(block.unit_id for block, _ in batch.failed)]
        if not self.outstanding.holds_all(settled):
            discard_files(self.spec.out, [part.temporary for part in batch.parts])
            logger.info(
                "discarded a repeated attempt at %d blocks; they were settled before",
                len(settled),
            )
            return

        if batch.units:
            check_staged(self.spec.out, batch)
            self.writer.commit_staged(batch)

        self.outstanding.settle(settled)
        self.failures.extend((b, RemoteBlockError(why)) for b, why in batch.failed)
        self.failures.extend((b, RemoteBlockError(why)) for b, why in batch.owed)
        _count_staged(self.stats, batch)

    def _account_unsettled(self) -> None:
        """Blocks an executor never answered for are failed, so a resume fetches
        them, rather than silently missing from a run that says it is complete."""
        for block in self.outstanding.left():
            self.failures.append((block, RemoteBlockError("no result came back")))
            self.stats.blocks_failed += 1


def _add_counters(stats: RunStats, batch: StagedBatch) -> None:
    """The requests and retries a batch cost, counted even if it is discarded."""
    for name, value in batch.counters:
        if name in STAGED_COUNTERS:
            setattr(stats, name, getattr(stats, name) + value)


def _count_staged(stats: RunStats, batch: StagedBatch) -> None:
    stats.blocks_done += len(batch.units)
    stats.blocks_failed += len(batch.failed)
    stats.points += batch.points
    stats.dropped_points += batch.dropped_points


def _remove_leftovers(folder: Path) -> None:
    """Delete the staged parts of attempts that died or were discarded.

    Called once every commit of the run is complete, so no hidden part left in the
    folder is committed; a run that stops early leaves them to the resume instead,
    which tells committed parts from the others by the journal.
    """
    removed = 0
    for leftover in folder.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        leftover.unlink(missing_ok=True)
        removed += 1

    if removed:
        logger.info("removed %d part files of attempts that did not commit", removed)


async def _flush_when_due(writer: PartWriter) -> None:
    """Commit blocks that waited too long, even while no new block arrives."""
    while True:
        await anyio.sleep(FLUSH_CHECK_S)
        writer.flush_if_due()


def _take(
    result: BlockResult, writer: PartWriter, failures: Failures, side: str | None
) -> None:
    if result.error is not None or result.batch is None:
        failures.append((result.block, result.error or RuntimeError("no data")))
        return

    # A refused signal is no gap: its points are owed, not missing.
    gaps = block_gaps(result.kept_block, result.batch, side)
    owed = [(block, failure_reason(block, error)) for block, error in result.refused]
    writer.add(result.block.unit_id, result.batch, gaps, owed)
    failures.extend(result.refused)


def _not_asked(signals: list[Measurement], span: TimeRange) -> list[dict[str, Any]]:
    """Slices left out of the plan because they end before a signal's first point.

    They hold no data by the server's own account, so the report lists them as gaps
    like the blocks that came back empty.
    """
    boundaries = [start for start, _ in time_slices(span)] + [span.end_us]
    gaps = []
    for signal in signals:
        first = signal.first_data_point
        if first is None or to_epoch_us(first) <= span.start_us:
            continue
        # The first slice that holds the first point starts where the gap ends.
        holding = bisect.bisect_right(boundaries, to_epoch_us(first)) - 1
        end_us = boundaries[min(holding, len(boundaries) - 1)]
        if end_us > span.start_us:
            gaps.append(
                {
                    "database_id": signal.database_id,
                    "index": signal.index,
                    "aggregation": signal.aggregation,
                    "start": span.start_us,
                    "end": end_us,
                }
            )
    return gaps


def _warn_of_future(span: TimeRange) -> None:
    """Say so when the range ends after now (see :func:`ends_after_now`)."""
    if not ends_after_now(span):
        return

    range_logger.warning(
        "the range ends at %s, after now: the server has no data there yet, so those "
        "windows are recorded as gaps and a resume will not fetch them later; end "
        "the range at now or before, and export the rest once it has passed",
        format_wire(span.end_us),
    )


async def _report_progress(
    progress: ProgressCallback, stats: RunStats, total_blocks: int
) -> None:
    while True:
        progress(stats, total_blocks)
        await anyio.sleep(PROGRESS_INTERVAL_S)


__all__ = ["export"]
