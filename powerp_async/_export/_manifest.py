"""The export's journal: what was asked, and which blocks are safely on disk.

``_manifest.jsonl`` in the output folder is append-only. Its first line holds the
export's parameters and the frozen list of signals, so a resumed run plans exactly the
same blocks. Each later line commits one flush: the part files it made and the blocks
whose every point is inside them. A line is written whole and fsynced before the parts
it names are renamed into view; a torn last line, left by a crash mid-write, is ignored
on reading, so the journal is readable whatever instant a crash hits.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from ..errors import ConfigurationError

MANIFEST_NAME: Final = "_manifest.jsonl"
VERSION: Final = 1


@dataclass(slots=True)
class ManifestState:
    """What a journal says: the parameters, and everything committed so far."""

    header: dict[str, Any]
    done_units: set[str] = field(default_factory=set)
    parts: list[str] = field(default_factory=list)
    empty_signals: list[dict[str, Any]] = field(default_factory=list)
    points: int = 0


class Manifest:
    """Appends commits to the journal of one export folder."""

    def __init__(self, folder: Path) -> None:
        self.path = folder / MANIFEST_NAME
        self._handle = self.path.open("ab")

    def close(self) -> None:
        self._handle.close()

    @classmethod
    def create(cls, folder: Path, header: Mapping[str, Any]) -> Manifest:
        manifest = cls(folder)
        manifest._append({"kind": "header", "version": VERSION, **header})
        return manifest

    def commit(
        self,
        parts: list[str],
        units: list[str],
        points: int,
        empty_signals: list[dict[str, Any]],
    ) -> None:
        """Record that ``units`` are complete in ``parts`` (relative to the folder)."""
        self._append(
            {
                "kind": "commit",
                "parts": parts,
                "units": units,
                "points": points,
                "empty": empty_signals,
            }
        )

    def _append(self, record: Mapping[str, Any]) -> None:
        self._handle.write(orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE))
        self._handle.flush()
        os.fsync(self._handle.fileno())


def read_manifest(folder: Path) -> ManifestState:
    """Replay a journal; raises ``ConfigurationError`` if there is none to resume."""
    path = folder / MANIFEST_NAME
    if not path.exists():
        raise ConfigurationError(
            f"nothing to resume in {folder}: it has no {MANIFEST_NAME}"
        )
    records = _records(path)
    header = next(records, None)
    if header is None or header.get("kind") != "header":
        raise ConfigurationError(f"{path} does not start with an export header")
    if header.get("version") != VERSION:
        raise ConfigurationError(
            f"{path} was written by an incompatible version "
            f"(journal version {header.get('version')}, expected {VERSION})"
        )

    state = ManifestState(header=header)
    for record in records:
        if record.get("kind") == "commit":
            state.done_units.update(record["units"])
            state.parts.extend(record["parts"])
            state.empty_signals.extend(record["empty"])
            state.points += record["points"]
    return state


def _records(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            if not line.endswith(b"\n"):
                return  # torn by a crash mid-write: never committed
            yield orjson.loads(line)
