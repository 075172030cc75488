"""Part files written under hidden names, and the batch of blocks they hold.

A :class:`StagedBatch` is what it takes to commit blocks: the hidden parts that hold
their points, with each part's size and SHA-256, and what the journal records beside
them. The export's own writer stages one per flush; a worker of another process (see
:class:`~powerp_async._export.Executor`) stages one per batch of blocks and returns it,
small, to the driver, which alone commits and reveals.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ..errors import ConfigurationError, PowerPError
from ..models import Block
from ._checks import PartCheck

STAGED_COUNTERS: Final = (
    "requests",
    "retries",
    "throttled",
    "server_errors",
    "transport_errors",
    "splits",
    "presplit_blocks",
    "bytes_received",
)
"""The counters of :class:`~powerp_async.RunStats` a staged batch brings along; its
blocks, points and drops are counted from the batch itself, once it is committed."""


@dataclass(frozen=True, slots=True)
class StagedPart:
    """A part written under its hidden name, not committed yet; paths are relative to
    the export folder."""

    temporary: str
    final: str
    check: PartCheck


@dataclass(frozen=True, slots=True)
class WorkerStop:
    """The error that ended a batch, and with it the run, after some of its blocks
    were staged: its kind (the error's class name), its message, and for a server
    outage how long the server had been failing."""

    kind: str
    message: str
    outage_s: float = 0.0


@dataclass(frozen=True, slots=True)
class StagedBatch:
    """Blocks whose every point is in ``parts``, ready for one journal line.

    ``failed`` names the blocks of the batch that could not be fetched, each with what
    ended it; they are in no part. ``owed`` names blocks of signals the server refused
    within the committed ones (not planned, so not of the batch), each with the
    refusal; the commit records them, for a resume to fetch. ``counters`` adds the
    requests, retries and other counts of :class:`~powerp_async.RunStats` the batch
    cost to the driver's.
    ``stop``, if set, ended the batch before all its blocks were fetched: the driver
    commits what the batch holds, then ends the run.
    """

    units: tuple[str, ...]
    parts: tuple[StagedPart, ...]
    points: int
    empty: tuple[dict[str, Any], ...] = ()
    dropped_points: int = 0
    failed: tuple[tuple[Block, str], ...] = ()
    owed: tuple[tuple[Block, str], ...] = ()
    counters: tuple[tuple[str, int], ...] = ()
    stop: WorkerStop | None = None

    def __post_init__(self) -> None:
        if self.points < 0 or self.dropped_points < 0:
            raise ValueError(
                f"expected counts of zero or more, got points={self.points}, "
                f"dropped_points={self.dropped_points}"
            )

        if self.parts and not self.units:
            raise ValueError("expected the units the parts hold, got parts alone")


def discard_files(folder: Path, temporaries: list[str]) -> None:
    """Remove staged parts that will never be committed; never raises, so the error
    that ended their batch is the one reported."""
    for temporary in temporaries:
        with contextlib.suppress(OSError):
            (folder / temporary).unlink(missing_ok=True)


class RemoteBlockError(PowerPError):
    """A block that failed in another process, as that process described it."""


def check_staged(folder: Path, batch: StagedBatch) -> None:
    """Refuse to commit a batch whose parts are not in ``folder`` as staged.

    A worker that writes to a folder of the same name on a disk of its own leaves
    nothing here to commit; committing the names would record parts that no reader
    will ever find.
    """
    for part in batch.parts:
        try:
            size = (folder / part.temporary).stat().st_size
        except FileNotFoundError:
            size = None

        if size != part.check.size_bytes:
            found = "nothing" if size is None else f"{size} bytes"
            raise ConfigurationError(
                f"a worker staged {part.temporary} ({part.check.size_bytes} bytes) in "
                f"{folder}, but the driver finds {found} there: the export folder "
                "must be on a filesystem the workers share with the driver"
            )
