"""The export's journal: what was asked, and which blocks are safely on disk.

``_manifest.journal`` in the output folder is append-only JSON Lines. It is not named
``.jsonl`` so that a glob over the data, such as ``out/**/*.jsonl``, never reads it as
points. Its first line holds the export's parameters, where the data came from and the
frozen list of signals, so a resumed run plans exactly the same blocks. Each later line
commits one flush: the part files it made and the blocks whose every point is inside
them, with each part's size and SHA-256 (journals from before these were recorded
have neither, and their parts are checked for presence only). A line is written whole
and fsynced before the parts it names are renamed into view. A run that gives up on
some blocks ends with a ``failed`` line naming them and why; a later commit of the
same blocks supersedes it. Readers that do not know a kind of line skip it, so
journals stay readable both ways between versions that share :data:`VERSION`. A
journal of an earlier version is resumed as that version planned it (see
:attr:`ManifestState.plans_balanced`).

A commit whose blocks came back without some signals the server refused (see
``_signal_refusals``) is a ``partial`` line: a commit that also records what it owes,
those signals' parts of the blocks as blocks of their own, which a resume fetches.
Known shortcoming: a version that does not know such lines skips them. Where they
name parts, it then finds files no commit names and refuses to resume; where none
does (the other signals had no points), it would fetch those blocks whole, and a
later resume by this version would fetch the owed signals again, twice. A journal
of version 2 keeps those versions out by its number; one of version 1 into which
partial lines were written does not, so such a folder must be resumed by a version
that reads partial lines.

A crash or a full disk can leave the last line torn (without its newline). Reading
ignores it, since it never committed anything, and a run that reopens the journal cuts
it off before appending, so the next commit starts on a line of its own. Any other
unreadable line means the journal was damaged or edited, and reading stops with an
error naming the line. So does a line whose content no longer matches the checksum
written with it (``check``: the start of the SHA-256 of the line as written without
it), since an edit that keeps the JSON valid would otherwise pass: a unit taken out
of a commit fetches its points again, twice, and a header changed to another format
or window mixes two kinds of parts in one folder. Lines written before checksums
were kept have none and are read as they are. A journal committing a block or a
part twice (a line repeated, or one copied from another export's journal, each
with a valid check) is refused too, naming the line: its points would count twice.

While an export writes to a folder it holds an exclusive lock on the journal, so a
second export into the same folder stops at once instead of interleaving commits. On
Windows there is no such lock (``fcntl`` is POSIX only): two runs into one folder are
not detected there.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import secrets
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import orjson

from ..errors import ConfigurationError, ExportWriteError
from ..models import Block
from ._checks import PartCheck
from ._units import UnitSet

logger = logging.getLogger("powerp_async.export")

MANIFEST_NAME: Final = "_manifest.journal"
VERSION: Final = 2
"""The version this package writes. Version 2 plans each group's blocks as even in
size as the signals' count allows; version 1 filled them in order. Versions that
write 1 refuse a journal of version 2, so they never plan its blocks the other way."""
READABLE_VERSIONS: Final = (1, 2)

# How much of the journal's end is read at a time when looking for its last newline.
_TAIL_CHUNK_BYTES: Final = 64 * 1024
_SHA256_HEX_DIGITS: Final = 64
CHECK_KEY: Final = "check"
_CHECK_HEX_DIGITS: Final = 16
"""Enough to tell an edited line from the one written; it guards against mistakes,
not against someone who recomputes it."""


@dataclass(slots=True)
class ManifestState:
    """What a journal says: the parameters, and everything committed so far."""

    header: dict[str, Any]
    done_units: UnitSet = field(default_factory=UnitSet)
    parts: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    """Blocks given up on and not committed since: unit id to what went wrong."""
    empty_signals: list[dict[str, Any]] = field(default_factory=list)
    points: int = 0
    checks: dict[str, PartCheck] = field(default_factory=dict)
    """Each part's size and digest as committed; parts of older journals have none."""
    dropped_points: int = 0
    """Points the server sent that were not kept, counted by commits that say so."""
    owed: dict[str, Block] = field(default_factory=dict)
    """Blocks of signals the server refused within committed blocks, by unit id,
    whether committed since or not; they are part of the export's plan."""
    units_committed: int = 0
    """Blocks named by commits, counted with repeats: a block is committed once."""

    @property
    def plans_balanced(self) -> bool:
        """Whether the export plans each group's blocks even in size, as journals
        from version 2 on do, rather than filled in order."""
        return bool(self.header["version"] >= 2)


class Manifest:
    """Appends commits to the journal of one export folder, holding it locked.

    Made by :meth:`create` for a new export or :meth:`reopen` to resume one; the lock
    lasts until :meth:`close`.
    """

    def __init__(self, path: Path, handle: IO[bytes]) -> None:
        self.path = path
        self._handle = handle
        try:
            _lock(handle, path.parent)
        except BaseException:
            handle.close()
            raise

    def close(self) -> None:
        self._handle.close()

    def abandon(self) -> None:
        """Close the journal after a failure, releasing its lock.

        A write that failed (a full disk, a file size limit) leaves its bytes in the
        file's buffer, and closing tries them again and fails again. That second
        error says nothing new and would hide the first, which names the folder
        and how to resume, so it is only logged.
        """
        try:
            self._handle.close()
        except OSError as error:
            logger.debug("closing %s after a failure failed too: %s", self.path, error)

    @contextmanager
    def closed_on_error(self) -> Iterator[None]:
        """Close the journal, releasing its lock, if the block inside fails."""
        try:
            yield
        except BaseException:
            self.abandon()
            raise

    @classmethod
    def create(cls, folder: Path, header: Mapping[str, Any]) -> Manifest:
        """Start the journal of a new export; fails if ``folder`` already has one.

        The header, which lists every signal (some 100 KB for a thousand), is
        written whole under a hidden name, then linked into place: a crash while
        writing it leaves no journal, where a torn header would leave a folder that
        could neither be resumed nor exported into afresh.
        """
        path = folder / MANIFEST_NAME
        line = _checked_line({"kind": "header", "version": VERSION, **header})
        draft = folder / f".{MANIFEST_NAME}.{os.getpid()}.{secrets.token_hex(4)}"
        try:
            _write_synced(draft, line)
            _link_or_write(draft, path, line)
        finally:
            draft.unlink(missing_ok=True)

        return cls(path, path.open("r+b"))

    @classmethod
    def reopen(cls, folder: Path) -> Manifest:
        """Open an existing journal to append to it, cutting off a torn last line."""
        path = folder / MANIFEST_NAME
        try:
            handle = path.open("r+b")  # never creates one: only a journal resumes
        except FileNotFoundError:
            raise ConfigurationError(_nothing_to_resume(folder)) from None

        manifest = cls(path, handle)
        with manifest.closed_on_error():
            manifest._cut_torn_tail()

        return manifest

    def commit(
        self,
        parts: list[str],
        units: list[str],
        points: int,
        empty_signals: list[dict[str, Any]],
        checks: list[PartCheck],
        dropped_points: int = 0,
        owed: Sequence[Block] = (),
    ) -> None:
        """Record that ``units`` are complete in ``parts`` (relative to the folder),
        with each part's size and digest, and the points the server sent since the
        last commit that were not kept (duplicates, outside what was asked); and the
        blocks of refused signals they leave ``owed``, if any."""
        record: dict[str, Any] = {
            "kind": "partial" if owed else "commit",
            "parts": parts,
            "units": units,
            "points": points,
            "empty": empty_signals,
            "sizes": [check.size_bytes for check in checks],
            "sha256": [check.sha256 for check in checks],
            "dropped": dropped_points,
        }
        if owed:
            record["owed"] = [_block_record(block) for block in owed]
        self._append(record)

    def record_failed(self, failed: Mapping[str, str]) -> None:
        """Record that the blocks ``failed`` names (unit id to reason) were given up."""
        if failed:
            self._append(
                {
                    "kind": "failed",
                    "units": list(failed),
                    "reasons": list(failed.values()),
                }
            )

    def check_in_place(self) -> None:
        """Raise :class:`ExportWriteError` if the journal this run holds open is no
        longer the one in the folder: removed with the folder, moved away or
        replaced while the export ran.

        Commits written to it then reach no journal a resume could read, and parts
        written after them would recreate a folder that nothing describes.
        """
        held = os.fstat(self._handle.fileno())
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if current is None or not os.path.samestat(held, current):
            raise _journal_gone(self.path, still_linked=held.st_nlink > 0)

    def _append(self, record: Mapping[str, Any]) -> None:
        self.check_in_place()
        self._handle.seek(0, os.SEEK_END)
        self._handle.write(_checked_line(record))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def _cut_torn_tail(self) -> None:
        size = self._handle.seek(0, os.SEEK_END)
        keep = _end_of_last_line(self._handle, size)
        if keep == size:
            return

        self._handle.truncate(keep)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        logger.info(
            "cut a torn last line of %d bytes off %s, left by an interrupted run",
            size - keep,
            self.path,
        )


def _checked_line(record: Mapping[str, Any]) -> bytes:
    """``record`` as a journal line, with the checksum of its content."""
    checked = {**record, CHECK_KEY: _checksum(orjson.dumps(record))}
    return orjson.dumps(checked, option=orjson.OPT_APPEND_NEWLINE)


def _write_synced(path: Path, content: bytes, mode: str = "wb") -> None:
    with path.open(mode) as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())


def _link_or_write(draft: Path, path: Path, content: bytes) -> None:
    """Give ``draft`` the name ``path``, failing as creating it would if it exists.

    A file system without hard links (FAT, some network shares) gets ``content``
    written under ``path`` directly, where a crash may leave the header torn.
    """
    try:
        os.link(draft, path)
    except OSError as error:
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
            raise
        _write_synced(path, content, "xb")


def _end_of_last_line(handle: IO[bytes], size: int) -> int:
    """The offset just past the journal's last newline (0 if it has none)."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK_BYTES)
        handle.seek(start)
        newline = handle.read(end - start).rfind(b"\n")
        if newline >= 0:
            return start + newline + 1

        end = start

    return 0


if sys.platform == "win32":

    def _lock(handle: IO[bytes], folder: Path) -> None:
        """No advisory file locks on Windows; see the module docstring."""

else:
    import fcntl

    def _lock(handle: IO[bytes], folder: Path) -> None:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(
                f"another export is writing to {folder}; wait for it to finish, "
                "or stop it, and try again"
            ) from None


@contextmanager
def locked_for_reading(folder: Path) -> Iterator[None]:
    """Hold the journal's lock while the folder is read, so that no export changes
    it meanwhile; raise what a resume would if another export holds it."""
    path = folder / MANIFEST_NAME
    if not path.exists():
        raise ConfigurationError(_nothing_to_resume(folder))

    with path.open("rb") as handle:
        _lock(handle, folder)
        yield


def read_manifest(folder: Path) -> ManifestState:
    """Replay a journal; raises ``ConfigurationError`` if there is none to resume."""
    path = folder / MANIFEST_NAME
    if not path.exists():
        raise ConfigurationError(_nothing_to_resume(folder))

    records = _records(path)
    state = ManifestState(header=_header(folder, path, next(records, None)))
    for number, record in records:
        _replay(state, path, number, record)

    repeats_blocks = len(state.done_units) < state.units_committed
    if repeats_blocks or len(set(state.parts)) < len(state.parts):
        raise _committed_twice(path)

    return state


def _journal_gone(path: Path, *, still_linked: bool) -> ExportWriteError:
    """The error for a journal no longer in its folder: moved with the folder, say,
    when the file this run holds open is still somewhere, or deleted."""
    if still_linked:
        reason = (
            f"its journal {MANIFEST_NAME} was moved away or replaced during the run"
        )
        advice = (
            "what was committed went with the journal: resume the export in the "
            "folder that holds it now (a folder renamed, say)"
        )
    else:
        reason = f"its journal {MANIFEST_NAME} was deleted during the run"
        advice = (
            "what was written can no longer be resumed: remove what is left of the "
            "folder and run the export again"
        )
    error = OSError(errno.ENOENT, reason)
    return ExportWriteError(path.parent, error, resumable=False, advice=advice)


def _committed_twice(path: Path) -> ConfigurationError:
    """The error for a journal committing a block or a part twice."""
    return ConfigurationError(
        f"{path}, line {_first_repeat(path)}, commits blocks or files that an "
        "earlier line committed already: the journal was edited, or given a line "
        "of another export's, and resuming would count their points twice; the "
        "folder cannot be resumed"
    )


def _first_repeat(path: Path) -> int:
    """The number of the first line committing a block or a part again: found by
    reading the journal once more, as only a journal edited by hand has one."""
    blocks: set[str] = set()
    parts: set[str] = set()
    for number, record in _records(path):
        if record.get("kind") not in {"commit", "partial"}:
            continue

        if blocks.intersection(record["units"]) or parts.intersection(record["parts"]):
            return number

        blocks.update(record["units"])
        parts.update(record["parts"])

    raise AssertionError(f"{path} was read to repeat a commit, and does not")


def _nothing_to_resume(folder: Path) -> str:
    # A run stopped before its journal was written kept nothing: it starts afresh.
    return (
        f"nothing to resume in {folder}: it has no {MANIFEST_NAME}, so no export "
        "was started there or none got as far as writing one; start it afresh, "
        "without resuming"
    )


def _header(
    folder: Path, path: Path, first: tuple[int, dict[str, Any]] | None
) -> dict[str, Any]:
    if first is None:
        raise ConfigurationError(
            f"nothing to resume in {folder}: its journal holds no complete header, "
            "as the first run stopped while writing it; remove the folder and export "
            "again"
        )

    header = first[1]
    if header.get("kind") != "header":
        raise ConfigurationError(f"{path} does not start with an export header")

    version = header.get("version")
    if type(version) is not int or version not in READABLE_VERSIONS:
        raise ConfigurationError(
            f"{path} was written by an incompatible version "
            f"(journal version {version!r}, expected one of "
            f"{', '.join(map(str, READABLE_VERSIONS))})"
        )

    return header


def _replay(
    state: ManifestState, path: Path, number: int, record: dict[str, Any]
) -> None:
    kind = record.get("kind")
    try:
        if kind == "commit":
            _replay_commit(state, record)
        elif kind == "partial":
            _replay_commit(state, record)
            owed = (_block_from_record(entry) for entry in record["owed"])
            state.owed.update((block.unit_id, block) for block in owed)
        elif kind == "failed":
            state.failed.update(zip(record["units"], record["reasons"], strict=True))
    except (KeyError, TypeError, ValueError):
        raise _damaged(path, number, f"not a valid {kind} record") from None


def _replay_commit(state: ManifestState, record: dict[str, Any]) -> None:
    units = record["units"]
    state.done_units.update(units)
    state.units_committed += len(units)
    state.parts.extend(record["parts"])
    if "sizes" in record:  # journals written before sizes were recorded lack them
        checks = zip(record["sizes"], record["sha256"], strict=True)
        for part, (size, digest) in zip(record["parts"], checks, strict=True):
            state.checks[part] = PartCheck(_count(size), _hex(digest))

    state.empty_signals.extend(record["empty"])
    state.points += record["points"]
    state.dropped_points += _count(record.get("dropped", 0))  # added later
    if state.failed:
        for unit in units:
            state.failed.pop(unit, None)


def _block_record(block: Block) -> dict[str, Any]:
    return {
        "database_id": block.database_id,
        "aggregation": block.aggregation,
        "indexes": list(block.indexes),
        "start": block.start_us,
        "end": block.end_us,
        "window": block.window_us,
    }


def _block_from_record(record: dict[str, Any]) -> Block:
    indexes = record["indexes"]
    if not indexes or not all(isinstance(index, str) for index in indexes):
        raise ValueError(f"expected a list of indexes, got {indexes!r}")

    aggregation = record["aggregation"]
    if not isinstance(aggregation, str):
        raise ValueError(f"expected an aggregation, got {aggregation!r}")

    return Block(
        _count(record["database_id"]),
        aggregation,
        tuple(indexes),
        _count(record["start"]),
        _count(record["end"]),
        _count(record["window"]),
    )


def _count(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a count of zero or more, got {value!r}")

    return value


def _hex(value: object) -> str:
    if not isinstance(value, str) or len(value) != _SHA256_HEX_DIGITS:
        raise ValueError(f"expected a SHA-256 in hex, got {value!r}")

    return value


def _records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each complete line with its number (from 1); a torn last line is skipped."""
    with path.open("rb") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.endswith(b"\n"):
                return  # torn by a crash mid-write: never committed

            try:
                record = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise _damaged(path, number, f"not JSON: {error.msg}") from None

            if not isinstance(record, dict):
                raise _damaged(path, number, "not a JSON object")

            if CHECK_KEY in record:
                written = record.pop(CHECK_KEY)
                if written != _checksum(orjson.dumps(record)):
                    raise _damaged(path, number, "its content does not match its check")

            yield number, record


def _checksum(line: bytes) -> str:
    return hashlib.sha256(line).hexdigest()[:_CHECK_HEX_DIGITS]


def _damaged(path: Path, number: int, what: str) -> ConfigurationError:
    return ConfigurationError(
        f"{path}, line {number}, is unreadable ({what}): the journal was damaged or "
        "edited outside the export, so the folder cannot be resumed"
    )
