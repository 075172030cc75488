"""A bulk export: plan, fetch, write in committed parts, resume, report.

The plan is frozen in the journal's header (parameters and the signal list), so a
resumed run plans exactly the same blocks and skips those already committed: every point
reaches the dataset exactly once, whatever instant the previous run stopped at.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import anyio
import pyarrow.compute as pc

from .._engine import BlockResult, RunStats
from .._groups import plain_errors
from .._redact import mask_url
from .._time import (
    to_epoch_us,
)
from ..client import PowerPClient
from ..errors import ConfigurationError, FetchFailedError
from ..models import Block, DataType, Measurement
from ..planning import TimeRange, plan_blocks, plan_totals, time_slices
from ._manifest import MANIFEST_NAME, Manifest, read_manifest
from ._parts import PartWriter, recover
from ._report import ExportReport, write_report
from ._spec import ExportSpec, select_signals

logger = logging.getLogger("powerp_async.export")

PROGRESS_INTERVAL_S: Final = 0.5

# Parameters that define which points an export holds; a resume must match them.
_PLAN_KEYS: Final = (
    "start",
    "end",
    "window",
    "format",
    "block_size",
    "databases",
    "indexes",
)

ProgressCallback = Callable[[RunStats, int], None]


async def export(
    client: PowerPClient,
    spec: ExportSpec,
    *,
    resume: bool = False,
    progress: ProgressCallback | None = None,
) -> ExportReport:
    """Run (or resume) an export into ``spec.out``; returns the report it also writes.

    Raises :class:`~powerp_async.FetchFailedError` after writing everything else if
    some blocks could not be fetched; running again with ``resume=True`` fetches only
    what is missing.
    """
    block_size = spec.block_size or client.config.block_size
    parameters = spec.plan_parameters(block_size)
    if resume:
        signals, done, manifest = _reopen(spec.out, parameters)
    else:
        signals = await select_signals(client, spec)
        done, manifest = set(), _create(spec.out, parameters, client, signals)

    try:
        return await _run(client, spec, block_size, signals, done, manifest, progress)
    finally:
        manifest.close()


def _create(
    out: Path,
    parameters: dict[str, Any],
    client: PowerPClient,
    signals: list[Measurement],
) -> Manifest:
    if out.exists() and any(out.iterdir()):
        hint = (
            " (add --resume to continue it)" if (out / MANIFEST_NAME).exists() else ""
        )
        raise ConfigurationError(
            f"output folder {out} is not empty; refusing to mix two exports{hint}"
        )
    out.mkdir(parents=True, exist_ok=True)
    header = {
        "parameters": parameters,
        "source": mask_url(client.config.base_url),
        "signals": [_signal_record(m) for m in signals],
    }
    return Manifest.create(out, header)


def _reopen(
    out: Path, parameters: dict[str, Any]
) -> tuple[list[Measurement], set[str], Manifest]:
    state = read_manifest(out)
    recorded = state.header["parameters"]
    different = [k for k in _PLAN_KEYS if recorded.get(k) != parameters.get(k)]
    if different:
        details = ", ".join(
            f"{k}: recorded {recorded.get(k)!r}, now {parameters.get(k)!r}"
            for k in different
        )
        raise ConfigurationError(
            f"cannot resume into {out}: it was made with other parameters ({details})"
        )
    removed = recover(out, state.parts)
    if removed:
        logger.info(
            "removed %d uncommitted part files left by an interrupted run", removed
        )
    signals = [_signal_from_record(r) for r in state.header["signals"]]
    return signals, state.done_units, Manifest(out)


async def _run(
    client: PowerPClient,
    spec: ExportSpec,
    block_size: int,
    signals: list[Measurement],
    done: set[str],
    manifest: Manifest,
    progress: ProgressCallback | None,
) -> ExportReport:
    span = spec.time_range()
    total_blocks, max_points = plan_totals(signals, span, block_size=block_size)
    pending = (
        b
        for b in plan_blocks(signals, span, block_size=block_size)
        if b.unit_id not in done
    )
    writer = PartWriter(spec.out, spec.format, manifest, spec.rows_per_flush)
    stats = RunStats(blocks_done=len(done), blocks_resumed=len(done))
    engine = client.engine(stats=stats)
    engine.learn_types(signals)
    failures: list[tuple[Block, BaseException]] = []

    with plain_errors():
        async with anyio.create_task_group() as group:
            if progress is not None:
                group.start_soon(_report_progress, progress, stats, total_blocks)
            async with engine.run(pending) as results:
                async for result in results:
                    _take(result, writer, failures)
            writer.flush()
            group.cancel_scope.cancel()

    journal = read_manifest(spec.out)
    journal.empty_signals.extend(_not_asked(signals, span))
    report = ExportReport.build(journal, stats, total_blocks, max_points, failures)
    write_report(spec.out, report)
    if failures:
        raise FetchFailedError(failures)
    return report


def _take(
    result: BlockResult, writer: PartWriter, failures: list[tuple[Block, BaseException]]
) -> None:
    if result.error is not None or result.batch is None:
        failures.append((result.block, result.error or RuntimeError("no data")))
        return
    writer.add(result.block.unit_id, result.batch, _empty_signals(result))


def _empty_signals(result: BlockResult) -> list[dict[str, Any]]:
    """The signals of a block that returned no point at all: gaps for the report."""
    assert result.batch is not None
    block = result.block
    seen = set(pc.unique(result.batch.column("index")).to_pylist())
    return [
        {
            "database_id": block.database_id,
            "index": index,
            "aggregation": block.aggregation,
            "start": block.start_us,
            "end": block.end_us,
        }
        for index in block.indexes
        if index not in seen
    ]


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


def _signal_record(measurement: Measurement) -> dict[str, Any]:
    first = measurement.first_data_point
    return {
        "databaseId": measurement.database_id,
        "index": measurement.index,
        "aggregation": measurement.aggregation,
        "dataType": measurement.data_type.value if measurement.data_type else None,
        "firstDataPoint": first.isoformat() if first else None,
    }


def _signal_from_record(record: dict[str, Any]) -> Measurement:
    first = record["firstDataPoint"]
    return Measurement(
        database_id=int(record["databaseId"]),
        index=str(record["index"]),
        default_agg=record["aggregation"],
        data_type=DataType.parse(record["dataType"]),
        first_data_point=datetime.fromisoformat(first) if first else None,
    )


__all__ = ["ExportSpec", "export"]
