"""Opening an export folder: a new one, or one to resume.

A new export is planned in full before its folder and journal are created, so an
export that cannot run leaves nothing behind. A resumed one is checked against its
journal before anything is fetched: the same parameters, the same source, every
committed part still in place with the size and SHA-256 its commit recorded, and no
data file that no commit names. Either way the journal stays locked until the export
closes it, so no second run writes into the folder meanwhile.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigurationError, ExportWriteError
from ..models import Block, DataType, Measurement
from ..planning import TimeRange, plan_blocks, plan_totals
from ._checks import first_mismatch, unnamed_data_files
from ._folder import writing
from ._manifest import MANIFEST_NAME, Manifest, ManifestState, read_manifest
from ._parts import hidden_parts, hidden_path, missing_parts, recover
from ._report import remove_report
from ._spec import PARAMETERS_ADDED_LATER, ExportSpec
from ._units import UnitSet

logger = logging.getLogger("powerp_async.export")

_PENDING_BATCH: Final = 4096
"""Planned blocks checked against the committed ones at a time, on a resume."""

# Parameters that define which points an export holds; a resume must match them.
_PLAN_KEYS: Final = (
    "start",
    "end",
    "window",
    "format",
    "block_size",
    "databases",
    "indexes",
    "neutralise_formulas",
)


@dataclass(frozen=True, slots=True)
class OpenExport:
    """A folder ready to write into: its locked journal and the plan it holds."""

    manifest: Manifest
    signals: list[Measurement]
    done: UnitSet
    span: TimeRange
    block_size: int
    blocks_planned: int
    max_points: int
    owed: tuple[Block, ...] = ()
    """Blocks of signals the server refused within committed blocks, as the journal
    recorded them when the folder was opened."""
    balanced: bool = True
    """Whether blocks are planned even in size within each group; folders made by
    versions that filled them in order are resumed as they were planned."""
    points_before: int = 0
    """Points the journal held committed when the folder was opened."""

    @property
    def blocks_total(self) -> int:
        return self.blocks_planned + len(self.owed)

    def pending(self) -> Iterator[Block]:
        """The planned blocks not committed yet, lazily, asked about in batches;
        then the owed ones not committed yet."""
        blocks = itertools.chain(
            plan_blocks(
                self.signals,
                self.span,
                block_size=self.block_size,
                balanced=self.balanced,
            ),
            self.owed,
        )
        if not len(self.done):
            yield from blocks
            return

        while batch := list(itertools.islice(blocks, _PENDING_BATCH)):
            done = self.done.contains([block.unit_id for block in batch])
            yield from (b for b, skip in zip(batch, done, strict=True) if not skip)


def create_folder(
    spec: ExportSpec, block_size: int, source: str, signals: list[Measurement]
) -> OpenExport:
    """Plan a new export, then create its folder and journal."""
    span = spec.time_range()
    # Planned first, so that a plan the API cannot serve leaves no folder behind.
    blocks_total, max_points = plan_totals(signals, span, block_size=block_size)
    header = {
        "parameters": spec.plan_parameters(block_size),
        "source": source,
        "source_details": dict(spec.source_details),
        "signals": [_signal_record(m) for m in signals],
    }
    manifest = _new_journal(spec.out, header)
    return OpenExport(
        manifest, signals, UnitSet(), span, block_size, blocks_total, max_points
    )


def _new_journal(out: Path, header: Mapping[str, Any]) -> Manifest:
    made = _missing_folders(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        # Before anything was fetched, as a folder that cannot be made is refused
        # when its nearest parent says so (_folder).
        _remove_new_journal(out, made)
        reason = error.strerror or type(error).__name__
        raise ConfigurationError(
            f"cannot create output folder {out}: {reason}"
        ) from None

    try:
        return Manifest.create(out, header)
    except FileExistsError:
        raise ConfigurationError(
            f"output folder {out} is not empty; refusing to mix two exports"
        ) from None
    except OSError as error:
        _remove_new_journal(out, made)
        raise ExportWriteError(out, error, resumable=False) from error


def _missing_folders(out: Path) -> list[Path]:
    """The folders from ``out`` up that do not exist yet, deepest first."""
    missing = []
    for folder in (out, *out.parents):
        if folder.exists():
            break

        missing.append(folder)

    return missing


def _remove_new_journal(out: Path, made: list[Path]) -> None:
    """Undo a journal that could not be written whole, and the folders made for it,
    so nothing is left behind."""
    with contextlib.suppress(OSError):
        (out / MANIFEST_NAME).unlink(missing_ok=True)
    for folder in made:
        with contextlib.suppress(OSError):  # one that was never made, say
            folder.rmdir()


def reopen_folder(spec: ExportSpec, block_size: int, source: str) -> OpenExport:
    """Check a folder against its journal and prepare to fetch what it lacks."""
    with writing(spec.out):
        manifest = Manifest.reopen(spec.out)

    with manifest.closed_on_error():
        return _resumable(manifest, spec, block_size, source)


def _resumable(
    manifest: Manifest, spec: ExportSpec, block_size: int, source: str
) -> OpenExport:
    journal, signals = recorded_export(spec, block_size, source)
    with writing(spec.out):
        _recover_parts(spec.out, journal)
        remove_report(spec.out)

    span = spec.time_range()
    blocks_total, max_points = plan_totals(signals, span, block_size=block_size)
    return OpenExport(
        manifest,
        signals,
        journal.done_units,
        span,
        block_size,
        blocks_total,
        max_points,
        tuple(journal.owed.values()),
        journal.plans_balanced,
        journal.points,
    )


def recorded_export(
    spec: ExportSpec, block_size: int, source: str
) -> tuple[ManifestState, list[Measurement]]:
    """The journal of the export in ``spec.out`` and the signals it recorded, checked
    against ``spec`` and ``source`` as a resume checks them; nothing is changed."""
    journal = read_manifest(spec.out)
    _check_parameters(spec.out, journal, spec.plan_parameters(block_size))
    _check_source(spec.out, journal, source)
    return journal, [_signal_from_record(r) for r in journal.header["signals"]]


def _check_parameters(
    out: Path, journal: ManifestState, parameters: dict[str, Any]
) -> None:
    recorded = _as_sets({**PARAMETERS_ADDED_LATER, **journal.header["parameters"]})
    different = [k for k in _PLAN_KEYS if recorded.get(k) != parameters.get(k)]
    if different:
        details = ", ".join(
            f"{k}: recorded {recorded.get(k)!r}, now {parameters.get(k)!r}"
            for k in different
        )
        raise ConfigurationError(
            f"cannot resume into {out}: it was made with other parameters ({details})"
        )


def _as_sets(parameters: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` with the databases and indexes selected as sets, as
    ``ExportSpec.plan_parameters`` gives them: a journal written before that
    recorded them as typed, repeats included."""
    chosen = dict(parameters)
    for key in ("databases", "indexes"):
        if isinstance(chosen.get(key), list):
            chosen[key] = sorted(set(chosen[key]))
    return chosen


def _check_source(out: Path, journal: ManifestState, source: str) -> None:
    recorded = journal.header.get("source")
    if recorded != source:
        raise ConfigurationError(
            f"cannot resume into {out}: its data came from {recorded!r}, but this "
            f"run reads from {source!r}; resume from the same source, or export "
            "into a new folder"
        )


def _recover_parts(out: Path, journal: ManifestState) -> None:
    """Insist that every committed part is there as committed, then finish or discard
    what a crash left: a resume refused changes nothing in the folder, and no part
    is revealed to readers before its contents passed."""
    check_as_resume(out, journal)
    removed = recover(out, journal.parts)
    if removed:
        logger.info(
            "removed %d uncommitted part files left by an interrupted run", removed
        )


def check_as_resume(out: Path, journal: ManifestState) -> None:
    """The checks a resume makes of the folder's files, made without changing it:
    committed parts a crash left hidden, which a resume reveals, are checked under
    their hidden name."""
    hidden = {
        part: hidden_path(out / part) for part in hidden_parts(out, journal.parts)
    }
    missing = [part for part in missing_parts(out, journal.parts) if part not in hidden]
    _refuse_missing(out, missing)
    _check_contents(out, journal, hidden)


def _refuse_missing(out: Path, missing: list[str]) -> None:
    if missing:
        # A crash between a commit and the renaming of its parts leaves them under
        # their hidden names, files that look like litter but are the export's.
        hidden = hidden_path(out / missing[0]).name
        raise ConfigurationError(
            f"cannot resume into {out}: {len(missing)} committed part file(s) are "
            f"missing, first {missing[0]} (nor is it there under the hidden name "
            f"{hidden}, which a run stopped before revealing it leaves); the folder "
            "was modified outside the export, so its data can no longer be "
            "completed exactly. Export again into a new folder"
        )


def _check_contents(
    out: Path, journal: ManifestState, hidden: Mapping[str, Path]
) -> None:
    """Refuse a data file no commit names, or a committed part that changed, those
    still ``hidden`` read where they are."""
    unnamed = unnamed_data_files(out, journal.parts)
    if unnamed:
        raise ConfigurationError(
            f"cannot resume into {out}: it holds {len(unnamed)} data file(s) that no "
            f"commit of its journal names, first {unnamed[0]}; readers would take "
            "their points as part of the export. Move them out of the folder, then "
            "resume"
        )

    unchecked = len(journal.parts) - len(journal.checks)
    if unchecked:
        logger.warning(
            "%d of %d committed parts in %s were written by a version that did not "
            "record sizes and checksums: they are checked for presence only",
            unchecked,
            len(journal.parts),
            out,
        )

    mismatch = first_mismatch(out, journal.checks, hidden)
    if mismatch:
        raise ConfigurationError(
            f"cannot resume into {out}: {mismatch}; the file was changed outside the "
            "export, so the folder's data is no longer what was committed. Export "
            "again into a new folder"
        )


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
