"""Buffered points become part files, partitioned by database and day, atomically.

A flush writes each part under a hidden temporary name, commits the journal line that
names it, and only then renames it into view. Readers therefore never see a half-written
file or a part whose blocks were not committed, and a resumed run can finish or discard
whatever a crash left behind.

A flush happens when enough points have gathered, when the oldest buffered block has
waited :data:`MAX_BUFFER_AGE_S`, at the end of a run, and on the way out of a run that
stops early (Ctrl-C, cancellation, an error elsewhere): every buffered block is
complete, so committing it saves fetching it again.

Staging and committing are apart (:class:`PartStager`, :func:`commit_parts`), so a
worker of another process can stage a batch's parts in the folder and hand the driver,
which alone holds the journal, only their names to commit (:class:`StagedBatch`).
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from .._engine import RunStats
from ..models import POINT_SCHEMA, Block
from ._folder import writing
from ._formats import SUFFIXES, Format, write_file
from ._manifest import Manifest
from ._order import by_signal_and_time
from ._staged import StagedBatch, StagedPart, discard_files

logger = logging.getLogger("powerp_async.export")

TEMP_PREFIX: Final = ".part-"
TEMP_SUFFIX: Final = ".tmp"

MAX_BUFFER_AGE_S: Final = 30.0
"""How long a fetched block may wait for its commit, so slow exports save regularly.

Checked as each block arrives and, while none does, by the run every second or so.
"""


@dataclass(slots=True)
class PartWriter:
    """Collects finished blocks and writes them out in committed flushes.

    A flush that fails (disk full, interrupted) leaves the writer unusable: whether
    its journal line was written is then unknown, and only a resumed run, reading the
    journal, can tell. The journal makes either outcome safe. A flush that fails
    while writing its parts removes those it had written, since nothing can have
    committed them; one that fails writing its journal line leaves them for the
    resume, which reveals or removes them by what the journal holds.
    """

    folder: Path
    fmt: Format
    manifest: Manifest
    rows_per_flush: int
    neutralise_formulas: bool = False
    clock: Callable[[], float] = time.monotonic
    run_id: str = field(default_factory=lambda: secrets.token_hex(4))
    stats: RunStats | None = None
    """The run's counters; each commit records the points dropped since the last."""
    _batches: list[pa.RecordBatch] = field(default_factory=list)
    _units: list[str] = field(default_factory=list)
    _empty: list[dict[str, Any]] = field(default_factory=list)
    _owed: list[tuple[Block, str]] = field(default_factory=list)
    _rows: int = 0
    _oldest_s: float | None = None
    _stager: PartStager = field(init=False)
    _broken: bool = False
    _dropped_committed: int = 0
    parts_written: int = 0

    def __post_init__(self) -> None:
        self._stager = PartStager(
            self.folder, self.fmt, self.run_id, self.neutralise_formulas
        )

    def add(
        self,
        unit_id: str,
        batch: pa.RecordBatch,
        empty: list[dict[str, Any]],
        owed: Sequence[tuple[Block, str]] = (),
    ) -> None:
        """Buffer one finished block, with the blocks of refused signals it owes;
        flushes when enough rows or time have gathered."""
        if not self._units:
            self._oldest_s = self.clock()

        if batch.num_rows:
            self._batches.append(batch)

        self._units.append(unit_id)
        self._empty.extend(empty)
        self._owed.extend(owed)
        self._rows += batch.num_rows
        if self._rows >= self.rows_per_flush:
            self.flush()
        else:
            self.flush_if_due()

    def flush_if_due(self) -> None:
        """Flush if the oldest buffered block has waited long enough."""
        if self._oldest_s is not None and (
            self.clock() - self._oldest_s >= MAX_BUFFER_AGE_S
        ):
            self.flush()

    def flush(self) -> None:
        """Write, commit and reveal everything buffered; a no-op when nothing is.

        Raises :class:`ExportWriteError` when the folder cannot be written.
        """
        if not self._units and not self._dropped_since_commit():
            return

        if self._broken:
            raise RuntimeError("a flush failed before; this writer cannot commit more")

        # Cleared only once this flush has completed: see the class docstring.
        self._broken = True
        with writing(self.folder):
            self._write_commit_reveal()

        self._broken = False

    def salvage(self) -> None:
        """Commit what is buffered on the way out of a run that stops early.

        An error here is logged, not raised: the one that stopped the run matters
        more, and the blocks are left for the resumed run to fetch again.
        """
        if self._broken or not self._units:
            return

        blocks = len(self._units)
        try:
            self.flush()
        except Exception as error:
            logger.warning(
                "could not commit %d fetched blocks while stopping: %s", blocks, error
            )
            return

        logger.info("committed %d fetched blocks while stopping", blocks)

    def commit_staged(self, batch: StagedBatch) -> None:
        """Commit a batch another process staged, and reveal its parts.

        Raises :class:`ExportWriteError` when the folder cannot be written; the
        batch's parts then stay hidden, for a resume to reveal or remove.
        """
        if self._broken:
            raise RuntimeError("a flush failed before; this writer cannot commit more")

        self._broken = True
        with writing(self.folder):
            commit_parts(self.folder, self.manifest, batch)

        self._broken = False
        self._dropped_committed += batch.dropped_points
        self.parts_written += len(batch.parts)

    def _write_commit_reveal(self) -> None:
        # Checked before any part is written too: writing one would recreate a
        # folder removed during the run.
        self.manifest.check_in_place()
        parts = self._stager.stage(self._batches)
        dropped = self._dropped_since_commit()
        staged = StagedBatch(
            tuple(self._units),
            parts,
            self._rows,
            tuple(self._empty),
            dropped,
            owed=tuple(self._owed),
        )
        self._batches, self._units, self._empty, self._rows = [], [], [], 0
        self._owed = []
        self._oldest_s = None
        commit_parts(self.folder, self.manifest, staged)
        self._dropped_committed += dropped
        logger.debug("committed %d blocks, %d points", len(staged.units), staged.points)
        self.parts_written += len(parts)

    def _dropped_since_commit(self) -> int:
        """Points the engine dropped since the last commit.

        Counted as blocks are decoded, so a commit may count the drops of a block
        decoded but not yet handed over; over a whole run the sum is exact.
        """
        if self.stats is None:
            return 0

        return self.stats.dropped_points - self._dropped_committed


@dataclass(slots=True)
class PartStager:
    """Writes buffered points as part files under hidden names, committing nothing.

    ``run_id`` is in every name it makes, so stagers of different runs, processes or
    attempts never write the same file.
    """

    folder: Path
    fmt: Format
    run_id: str
    neutralise_formulas: bool = False
    _sequence: int = 0

    def stage(self, batches: list[pa.RecordBatch]) -> tuple[StagedPart, ...]:
        """Write every partition under its hidden name, or none: a part that cannot
        be written (a full disk) takes those of this flush written before it along."""
        staged: list[StagedPart] = []
        try:
            # One partition at a time, so a flush holds at most one sorted copy of
            # one partition beside the buffer, not a copy of everything buffered.
            for part in _partitions(batches):
                staged.append(self._stage(part))
        except BaseException:
            discard_files(self.folder, [part.temporary for part in staged])
            raise

        return tuple(staged)

    def _stage(self, part: tuple[int, str, pa.Table]) -> StagedPart:
        database_id, day, rows = part
        self._sequence += 1
        directory = Path(f"database={database_id}") / f"day={day}"
        (self.folder / directory).mkdir(parents=True, exist_ok=True)
        name = f"part-{self.run_id}-{self._sequence:06d}{SUFFIXES[self.fmt]}"
        temporary = str(directory / f".{name}{TEMP_SUFFIX}")
        try:
            check = write_file(
                rows,
                self.folder / temporary,
                self.fmt,
                neutralise_formulas=self.neutralise_formulas,
            )
        except BaseException:
            discard_files(self.folder, [temporary])
            raise

        return StagedPart(temporary, str(directory / name), check)


def commit_parts(folder: Path, manifest: Manifest, batch: StagedBatch) -> None:
    """Commit ``batch`` with one journal line, then rename its parts into view."""
    manifest.commit(
        [part.final for part in batch.parts],
        list(batch.units),
        batch.points,
        list(batch.empty),
        [part.check for part in batch.parts],
        batch.dropped_points,
        [block for block, _ in batch.owed],
    )
    # Committed: from here on a retry must never write these blocks again.
    for part in batch.parts:
        os.replace(folder / part.temporary, folder / part.final)


def _partitions(
    batches: list[pa.RecordBatch],
) -> Iterator[tuple[int, str, pa.Table]]:
    """Split by (database, UTC day), each part sorted by signal and time, lazily."""
    by_key: dict[tuple[int, int], list[pa.RecordBatch]] = defaultdict(list)
    for batch in batches:
        for key, rows in _by_day(batch):
            by_key[key].append(rows)

    for (database_id, day), rows in sorted(by_key.items()):
        table = pa.Table.from_batches(rows, POINT_SCHEMA)
        yield database_id, _day_name(day), by_signal_and_time(table)


def _by_day(batch: pa.RecordBatch) -> list[tuple[tuple[int, int], pa.RecordBatch]]:
    """A block's rows by UTC day: one piece, unless its slice crosses midnight."""
    database_id = batch.column("database_id")[0].as_py()
    days = batch.column("timestamp").cast(pa.date32()).cast(pa.int32())
    first, last = pc.min_max(days).values()
    if first == last:
        return [((database_id, first.as_py()), batch)]
    return [
        ((database_id, day), batch.filter(pc.equal(days, day)))
        for day in pc.unique(days).to_pylist()
    ]


def _day_name(day: int) -> str:
    return (datetime(1970, 1, 1) + timedelta(days=day)).strftime("%Y-%m-%d")


def recover(folder: Path, committed_parts: list[str]) -> int:
    """After a crash: reveal committed parts still hidden, delete uncommitted ones.

    Returns how many leftover files were deleted.
    """
    for final in hidden_parts(folder, committed_parts):
        path = folder / final
        os.replace(hidden_path(path), path)

    removed = 0
    for leftover in folder.rglob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}"):
        leftover.unlink()
        removed += 1
    return removed


def hidden_parts(folder: Path, committed_parts: list[str]) -> list[str]:
    """The committed parts that a crash left under their hidden name only."""
    return [
        part
        for part in committed_parts
        if not (folder / part).exists() and hidden_path(folder / part).exists()
    ]


def hidden_path(path: Path) -> Path:
    """Where the part ``path`` is written before its commit reveals it."""
    return path.with_name(f".{path.name}{TEMP_SUFFIX}")


def missing_parts(folder: Path, committed_parts: list[str]) -> list[str]:
    """The committed parts that are not in ``folder`` (after :func:`recover`)."""
    return [part for part in committed_parts if not (folder / part).is_file()]
