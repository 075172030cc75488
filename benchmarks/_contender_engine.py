"""powerp-async, told nothing about the server's limits: ``PowerPClient`` defaults.

Two rows: ``fetch()`` as shipped, and ``export()`` to Parquet, whose files are read
back after the clock stops to count what reached the disk. A third, for the growth
series only, is ``fetch()`` started flat out: its server has no limits, and a client
starting at 4 requests per second takes the first second or two of every job to
climb, which is most of a small job and a sliver of a large one.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from powerp_async import PowerPClient
from powerp_async._engine import RunStats
from powerp_async._export import ExportSpec, export
from powerp_async._time import from_epoch_us
from powerp_async.models import Measurement

from .contenders import Job, Tally

FLAT_OUT_RATE_PER_S: Final = 1000.0
"""The start of the flat-out row: faster than the growth steps can send, so every
step runs at the pace its CPU allows from its first request."""


def count_table(tally: Tally, table: pa.Table | pa.RecordBatch) -> None:
    """Add the points of a ``POINT_SCHEMA`` table to the per-signal counts."""
    keys = pc.binary_join_element_wise(
        pc.cast(table.column("database_id"), pa.string()), table.column("index"), "|"
    )
    counted = pc.value_counts(keys)
    values = counted.field("values").to_pylist()
    for key, count in zip(values, counted.field("counts").to_pylist(), strict=True):
        database_id, index = key.split("|", 1)
        tally.counts[(int(database_id), index)] += count


def _client(job: Job, **settings: Any) -> PowerPClient:
    return PowerPClient(
        client_id=job.client_id,
        client_secret=job.client_secret,
        base_url=job.base_url,
        **settings,
    )


def _range(job: Job) -> tuple[datetime, datetime]:
    return from_epoch_us(job.start_us), from_epoch_us(job.end_us)


async def run_engine(job: Job, tally: Tally, **settings: Any) -> None:
    stats = RunStats()
    async with _client(job, **settings) as client:
        signals = (await client.measurements())[: job.signal_count]
        start, end = _range(job)
        async with client.fetch(
            signals, start, end, window=job.window, stats=stats
        ) as results:
            async for result in results:
                assert result.batch is not None  # failures are raised at the end
                count_table(tally, result.batch)
                tally.event(result.batch.num_rows)

    tally.requests, tally.retries = stats.requests, stats.retries
    tally.throttled, tally.body_bytes = stats.throttled, stats.bytes_received


async def run_engine_flat_out(job: Job, tally: Tally) -> None:
    """``fetch()`` told only that the server takes any rate, as ``initial_rate``."""
    await run_engine(job, tally, initial_rate=FLAT_OUT_RATE_PER_S)


async def run_export(job: Job, tally: Tally) -> None:
    points_seen = [0]

    def progress(stats: RunStats, _blocks_total: int) -> None:
        tally.event(stats.points - points_seen[0])
        points_seen[0] = stats.points

    with tempfile.TemporaryDirectory(prefix="powerp-bench-") as folder:
        async with _client(job) as client:
            databases, indexes = _selection(
                await client.measurements(), job.signal_count
            )
            start, end = _range(job)
            spec = ExportSpec(
                out=Path(folder) / "export",
                start=start,
                end=end,
                window=job.window,
                source="benchmark",
                databases=databases,
                indexes=indexes,
            )
            report = await export(client, spec, progress=progress)

        tally.stop()
        tally.requests, tally.retries = report.requests, report.retries
        tally.throttled = report.throttled
        _count_files(tally, Path(folder))


def _count_files(tally: Tally, folder: Path) -> None:
    files = sorted(folder.rglob("*.parquet"))
    count_table(tally, ds.dataset(files, format="parquet").to_table())


def _selection(
    listing: Sequence[Measurement], signal_count: int
) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The ``databases`` and ``indexes`` of an export of exactly the first signals
    (empty: all of them)."""
    chosen = listing[:signal_count]
    if len(chosen) == len(listing):
        return (), ()

    databases = {m.database_id for m in chosen}
    if len(databases) > 1:
        raise ValueError(
            "an export selects by database and index; the first "
            f"{signal_count} signals span databases {sorted(databases)}"
        )

    return tuple(databases), tuple(m.index for m in chosen)
