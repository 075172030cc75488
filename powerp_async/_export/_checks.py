"""What a resume checks of the files in an export folder before adding to it.

Each part is read back once, right after it is written and before the journal line
that commits it: its size and SHA-256 go into that line. The file is still in the page
cache then, so reading it costs little beside the write (SHA-256 runs at well over a
gigabyte a second where the processor has instructions for it). SHA-256 rather than a
faster hash, so that anyone can check a part with ``sha256sum`` against the journal.

A resume compares every committed part with what its commit recorded, and refuses a
folder holding a data file no commit names (a part copied in from elsewhere would add
its points twice). Parts committed by versions that did not record sizes are only
checked for presence.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final

_CHUNK_BYTES: Final = 1 << 20
_NOT_DATA_PREFIXES: Final = ("_", ".")
"""Names readers such as pyarrow and DuckDB's hive globs skip as not data."""


@dataclass(frozen=True, slots=True)
class PartCheck:
    """The size and SHA-256 (hex) a part had when it was committed."""

    size_bytes: int
    sha256: str


def sync_and_check(path: Path) -> PartCheck:
    """Read ``path`` back for its size and SHA-256, then flush it to disk."""
    with path.open("rb") as handle:
        check = _read_check(handle)
        os.fsync(handle.fileno())

    return check


def _read_check(handle: BinaryIO) -> PartCheck:
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(_CHUNK_BYTES):
        digest.update(chunk)
        size += len(chunk)

    return PartCheck(size, digest.hexdigest())


def first_mismatch(
    folder: Path,
    checks: Mapping[str, PartCheck],
    hidden: Mapping[str, Path] | None = None,
) -> str | None:
    """What is wrong with the first committed part that differs, or ``None``.

    ``hidden`` gives where parts that a crash left unrevealed are, by part name."""
    located = {part: (hidden or {}).get(part, folder / part) for part in checks}
    for part, recorded in checks.items():
        size = located[part].stat().st_size
        if size != recorded.size_bytes:
            return (
                f"committed part {_named(part, hidden)} is {size:,} bytes, but the "
                f"journal recorded {recorded.size_bytes:,}"
            )

    for part, recorded in checks.items():
        with located[part].open("rb") as handle:
            found = _read_check(handle).sha256

        if found != recorded.sha256:
            return (
                f"committed part {_named(part, hidden)} has SHA-256 {found}, but the "
                f"journal recorded {recorded.sha256}"
            )

    return None


def _named(part: str, hidden: Mapping[str, Path] | None) -> str:
    if hidden is None or part not in hidden:
        return part
    return f"{part} (still under the hidden name {hidden[part].name})"


def unnamed_data_files(folder: Path, committed: Iterable[str]) -> list[str]:
    """Data files in ``folder`` (names not starting with ``_`` or ``.``, nor inside a
    folder that does) that no commit names, relative to ``folder``, sorted."""
    named = {Path(part) for part in committed}
    return sorted(str(path) for path in _data_files(folder) if path not in named)


def _data_files(folder: Path) -> Iterator[Path]:
    for directory, subdirectories, files in os.walk(folder):
        subdirectories[:] = [d for d in subdirectories if _is_data(d)]
        base = Path(directory).relative_to(folder)
        yield from (base / name for name in files if _is_data(name))


def _is_data(name: str) -> bool:
    return not name.startswith(_NOT_DATA_PREFIXES)
