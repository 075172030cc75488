"""A bulk export: plan, fetch, write in committed parts, resume, report.

The plan is frozen in the journal's header (parameters and the signal list), so a
resumed run plans exactly the same blocks and skips those already committed: every point
reaches the dataset exactly once, whatever instant the previous run stopped at.

A run that stops early (Ctrl-C, cancellation, an error) first commits the blocks it
had fetched but not yet written, so resuming does not fetch them again.

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
from collections.abc import Callable
from typing import Any, Final

import anyio

from .._assembly import BlockResult
from .._engine import RunStats
from .._groups import plain_errors
from .._redact import mask_url
from .._time import to_epoch_us
from ..client import PowerPClient
from ..errors import ExportWriteError, FetchFailedError, PowerPError
from ..models import Block, Measurement
from ..planning import TimeRange, time_slices
from ._folder import check_folder, writing
from ._gaps import block_gaps
from ._manifest import read_manifest
from ._open import OpenExport, create_folder, reopen_folder
from ._parts import PartWriter
from ._report import ExportReport, failure_reason, write_report
from ._spec import ExportSpec, select_signals

logger = logging.getLogger("powerp_async.export")

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
) -> ExportReport:
    """Run (or resume) an export into ``spec.out``; returns the report it also writes.

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
    check_folder(spec.out, fresh=not resume)
    block_size = spec.block_size or client.config.block_size
    source = spec.source or mask_url(client.config.base_url)
    if resume:
        opened = reopen_folder(spec, block_size, source)
    else:
        signals = await select_signals(client, spec)
        opened = create_folder(spec, block_size, source, signals)

    try:
        return await _run(client, spec, opened, progress)
    finally:
        opened.manifest.close()


async def _run(
    client: PowerPClient,
    spec: ExportSpec,
    opened: OpenExport,
    progress: ProgressCallback | None,
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
    failures: Failures = []
    try:
        await _fetch_and_write(client, opened, writer, stats, progress, failures)
    except BaseException as error:
        writer.salvage()
        _account_while_stopping(spec, opened, stats, failures, error)
        raise

    with writing(spec.out):
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
    """Record the blocks given up on, and the report when the server stopped the run.

    An error here is logged, not raised: the one that stopped the run matters more.
    """
    try:
        with writing(spec.out):
            opened.manifest.record_failed(_reasons(failures))
            if isinstance(error, PowerPError) and not isinstance(
                error, ExportWriteError
            ):
                _write_report(spec, opened, stats)
    except Exception as failure:
        logger.warning("could not record the run's outcome while stopping: %s", failure)


def _write_report(
    spec: ExportSpec, opened: OpenExport, stats: RunStats
) -> ExportReport:
    journal = read_manifest(spec.out)
    journal.empty_signals.extend(_not_asked(opened.signals, opened.span))
    report = ExportReport.build(journal, stats, opened.blocks_total, opened.max_points)
    write_report(spec.out, report)
    return report


def _reasons(failures: Failures) -> dict[str, str]:
    """Each failed block's unit id with what ended it, for the journal and report."""
    return {block.unit_id: failure_reason(block, error) for block, error in failures}


async def _fetch_and_write(
    client: PowerPClient,
    opened: OpenExport,
    writer: PartWriter,
    stats: RunStats,
    progress: ProgressCallback | None,
    failures: Failures,
) -> None:
    engine = client.engine(stats=stats)
    engine.learn_types(opened.signals)
    with plain_errors():
        async with anyio.create_task_group() as group:
            if progress is not None:
                group.start_soon(_report_progress, progress, stats, opened.blocks_total)

            group.start_soon(_flush_when_due, writer)
            async with engine.run(opened.pending()) as results:
                async for result in results:
                    _take(result, writer, failures, engine.label_side)

            writer.flush()
            group.cancel_scope.cancel()


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
    writer.add(
        result.block.unit_id, result.batch, block_gaps(result.block, result.batch, side)
    )


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


async def _report_progress(
    progress: ProgressCallback, stats: RunStats, total_blocks: int
) -> None:
    while True:
        progress(stats, total_blocks)
        await anyio.sleep(PROGRESS_INTERVAL_S)


__all__ = ["export"]
