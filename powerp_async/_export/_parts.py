"""Buffered points become part files, partitioned by database and day, atomically.

A flush writes each part under a hidden temporary name, commits the journal line that
names it, and only then renames it into view. Readers therefore never see a half-written
file or a part whose blocks were not committed, and a resumed run can finish or discard
whatever a crash left behind.
"""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ..models import POINT_SCHEMA
from ._formats import SUFFIXES, Format, write_file
from ._manifest import Manifest

logger = logging.getLogger("powerp_async.export")

TEMP_PREFIX = ".part-"
TEMP_SUFFIX = ".tmp"


@dataclass(slots=True)
class PartWriter:
    """Collects finished blocks and writes them out in committed flushes."""

    folder: Path
    fmt: Format
    manifest: Manifest
    rows_per_flush: int
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    _batches: list[pa.RecordBatch] = field(default_factory=list)
    _units: list[str] = field(default_factory=list)
    _empty: list[dict[str, Any]] = field(default_factory=list)
    _rows: int = 0
    _sequence: int = 0
    parts_written: int = 0

    def add(
        self, unit_id: str, batch: pa.RecordBatch, empty: list[dict[str, Any]]
    ) -> None:
        """Buffer one finished block; flushes when enough rows have gathered."""
        if batch.num_rows:
            self._batches.append(batch)
        self._units.append(unit_id)
        self._empty.extend(empty)
        self._rows += batch.num_rows
        if self._rows >= self.rows_per_flush:
            self.flush()

    def flush(self) -> None:
        """Write, commit and reveal everything buffered; a no-op when nothing is."""
        if not self._units:
            return

        table = pa.Table.from_batches(self._batches, POINT_SCHEMA)
        staged = [self._stage(part) for part in _partitions(table)]
        self.manifest.commit(
            [final for _, final in staged], self._units, table.num_rows, self._empty
        )
        for temporary, final in staged:
            os.replace(self.folder / temporary, self.folder / final)

        logger.debug("committed %d blocks, %d points", len(self._units), table.num_rows)
        self.parts_written += len(staged)
        self._batches, self._units, self._empty, self._rows = [], [], [], 0

    def _stage(self, part: tuple[int, str, pa.Table]) -> tuple[str, str]:
        database_id, day, rows = part
        self._sequence += 1
        directory = Path(f"database={database_id}") / f"day={day}"
        (self.folder / directory).mkdir(parents=True, exist_ok=True)
        name = f"part-{self.run_id}-{self._sequence:06d}{SUFFIXES[self.fmt]}"
        temporary = directory / f".{name}{TEMP_SUFFIX}"
        write_file(rows, self.folder / temporary, self.fmt)
        return str(temporary), str(directory / name)


def _partitions(table: pa.Table) -> list[tuple[int, str, pa.Table]]:
    """Split by (database, UTC day), each part sorted by signal and time."""
    days = pc.strftime(table["timestamp"], format="%Y-%m-%d")
    keyed = table.append_column("_day", days)
    keys = keyed.group_by(["database_id", "_day"]).aggregate([])
    parts = []
    for database_id, day in zip(
        keys["database_id"].to_pylist(), keys["_day"].to_pylist(), strict=True
    ):
        mask = pc.and_(
            pc.equal(keyed["database_id"], database_id), pc.equal(keyed["_day"], day)
        )
        rows = keyed.filter(mask).drop_columns(["_day"])
        rows = rows.sort_by([("index", "ascending"), ("timestamp", "ascending")])
        parts.append((database_id, day, rows))
    return sorted(parts, key=lambda part: (part[0], part[1]))


def recover(folder: Path, committed_parts: list[str]) -> int:
    """After a crash: reveal committed parts still hidden, delete uncommitted ones.

    Returns how many leftover files were deleted.
    """
    for final in committed_parts:
        path = folder / final
        temporary = path.with_name(f".{path.name}{TEMP_SUFFIX}")
        if not path.exists() and temporary.exists():
            os.replace(temporary, path)

    removed = 0
    for leftover in folder.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        leftover.unlink()
        removed += 1
    return removed
