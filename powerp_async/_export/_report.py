"""The account of an export, written beside the data as ``_report.json``.

Besides counts, it lists the gaps: for each signal, the time ranges in which the server
returned no point at all. Auditors ask for these first.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from .._engine import RunStats
from .._redact import excerpt
from .._time import format_wire
from ..models import Block
from ._manifest import ManifestState

REPORT_NAME: Final = "_report.json"
MAX_REASON_CHARS: Final = 1000
"""How much of a failed block's description and error the journal and report keep:
room for the longest this client words (a block, its refusal with 200 characters of
the answer, and what came of it), whose end says what to do; only an error from
elsewhere is cut."""


@dataclass(frozen=True, slots=True)
class Gap:
    """A range ``[start, end)`` in which one signal returned no point.

    Example::

        report = ExportReport.read(Path("demo-export"))
        for gap in report.gaps:
            print(gap.database_id, gap.index, gap.start, gap.end)
    """

    database_id: int
    index: str
    aggregation: str
    start: str
    end: str


@dataclass(frozen=True, slots=True)
class ExportReport:
    """Counts of the whole export (all runs into the folder) and of this run.

    Example::

        report = await export(client, spec)
        print(report.points, report.requests, report.complete)
        ExportReport.read(spec.out) == report  # what _report.json holds
    """

    blocks_total: int
    blocks_committed: int
    blocks_failed: int
    points: int
    max_points: int
    points_this_run: int
    requests: int
    retries: int
    throttled: int
    server_errors: int
    transport_errors: int
    elapsed_s: float
    parts: int
    complete: bool
    gaps: tuple[Gap, ...]
    failures: tuple[str, ...]
    failed_units: tuple[str, ...]
    dropped_points: int = 0
    """Points the server sent twice, off the window grid, outside the range asked,
    for signals not asked or with a time that could not be read, all runs together;
    they are not in the data."""
    dropped_points_this_run: int = 0
    unchecked_parts: int = 0
    """Parts committed before sizes and digests were recorded: a resume checks only
    that they exist."""

    @classmethod
    def build(
        cls,
        journal: ManifestState,
        stats: RunStats,
        blocks_total: int,
        max_points: int,
        points_before: int = 0,
    ) -> ExportReport:
        """The account of a folder from its journal, with this run's counts; the
        points of this run are those committed since the journal held
        ``points_before`` (a run stopped may have fetched more)."""
        return cls(
            blocks_total=blocks_total,
            blocks_committed=len(journal.done_units),
            blocks_failed=len(journal.failed),
            points=journal.points,
            max_points=max_points,
            points_this_run=journal.points - points_before,
            requests=stats.requests,
            retries=stats.retries,
            throttled=stats.throttled,
            server_errors=stats.server_errors,
            transport_errors=stats.transport_errors,
            elapsed_s=round(stats.elapsed_s, 3),
            parts=len(journal.parts),
            complete=not journal.failed and len(journal.done_units) >= blocks_total,
            gaps=tuple(merge_gaps(journal.empty_signals)),
            failures=tuple(journal.failed.values()),
            failed_units=tuple(journal.failed),
            dropped_points=journal.dropped_points,
            dropped_points_this_run=stats.dropped_points,
            unchecked_parts=len(journal.parts) - len(journal.checks),
        )

    @classmethod
    def read(cls, folder: Path) -> ExportReport:
        """The report the last run into ``folder`` wrote."""
        fields = orjson.loads((folder / REPORT_NAME).read_bytes())
        fields["gaps"] = tuple(Gap(**gap) for gap in fields["gaps"])
        fields["failures"] = tuple(fields["failures"])
        fields["failed_units"] = tuple(fields.get("failed_units", ()))  # added later
        return cls(**fields)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def failure_reason(block: Block, error: BaseException) -> str:
    """What ended a block, short enough for a report line."""
    return excerpt(block.describe_failure(error), MAX_REASON_CHARS)


def merge_gaps(empty: Iterable[dict[str, Any]]) -> list[Gap]:
    """Join the per-block empty ranges of each signal into maximal ranges."""
    ranges: dict[tuple[int, str, str], list[tuple[int, int]]] = defaultdict(list)
    for record in empty:
        key = (record["database_id"], record["index"], record["aggregation"])
        ranges[key].append((record["start"], record["end"]))

    gaps: list[Gap] = []
    for (database_id, index, aggregation), spans in sorted(ranges.items()):
        for start, end in _merged(sorted(spans)):
            gaps.append(
                Gap(
                    database_id,
                    index,
                    aggregation,
                    format_wire(start),
                    format_wire(end),
                )
            )
    return gaps


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def write_report(folder: Path, report: ExportReport) -> None:
    """Write the report atomically (aside, then renamed)."""
    temporary = folder / f".{REPORT_NAME}.tmp"
    temporary.write_bytes(orjson.dumps(report.to_json(), option=orjson.OPT_INDENT_2))
    os.replace(temporary, folder / REPORT_NAME)


def remove_report(folder: Path) -> None:
    """Remove the report of an earlier run: a run that resumes the export outdoes
    it, and a run killed before it writes its own must not leave it to be read as
    the latest account."""
    (folder / REPORT_NAME).unlink(missing_ok=True)
