"""Who fetches an export's blocks: the seam between the driver and its workers.

The driver (:func:`~powerp_async._export.export`) plans, keeps the journal, commits and
reports; an :class:`Executor` takes the planned blocks and hands back outcomes, as it
gets them:

* a :class:`~powerp_async.BlockResult` per block, fetched in this process, which the
  driver buffers and writes itself (:class:`LocalExecutor`, the default);
* a :class:`StagedBatch` per batch of blocks fetched elsewhere, whose parts a worker
  has already written under hidden names in the export folder; the driver commits it
  with one journal line and renames its parts into view.

An executor may hand back a batch more than once (a retried or duplicated attempt);
the driver commits the first and deletes the others' files. Nothing here names a
particular cluster: :mod:`powerp_async.dask_executor` is one executor, in its own
optional extra.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from .._assembly import BlockResult
from .._engine import Engine, RunStats
from ..models import Block, Measurement
from ._formats import Format
from ._staged import StagedBatch

if TYPE_CHECKING:
    from ..client import PowerPClient

Outcome = BlockResult | StagedBatch


@dataclass(frozen=True, slots=True)
class ExportJob:
    """What an executor knows of the export besides its blocks: where parts go, in
    which format, and the signals (whose declared types guide decoding)."""

    folder: Path
    fmt: Format
    neutralise_formulas: bool
    signals: tuple[Measurement, ...]


class Executor(Protocol):
    """Fetches planned blocks; see the module docstring.

    ``stages_parts`` says whether its outcomes are staged batches, whose leftovers
    (the files of attempts that died) the driver removes at the end of a run.
    """

    @property
    def stages_parts(self) -> bool: ...

    @property
    def label_side(self) -> str | None:
        """The window edge the server labels points by, for blocks fetched here."""
        ...

    def run(
        self,
        client: PowerPClient,
        job: ExportJob,
        blocks: Iterable[Block],
        stats: RunStats,
    ) -> AbstractAsyncContextManager[AsyncIterator[Outcome]]:
        """Fetch ``blocks``; yields their outcomes, ending when all are handed back.

        Counts what it fetches in ``stats`` as it goes, or leaves the driver to count
        the staged batches it returns.
        """
        ...


class LocalExecutor:
    """The client's own engine, in this process and event loop: every block a
    :class:`~powerp_async.BlockResult`."""

    stages_parts = False

    def __init__(self) -> None:
        self._engine: Engine | None = None

    @property
    def label_side(self) -> str | None:
        return None if self._engine is None else self._engine.label_side

    @asynccontextmanager
    async def run(
        self,
        client: PowerPClient,
        job: ExportJob,
        blocks: Iterable[Block],
        stats: RunStats,
    ) -> AsyncIterator[AsyncIterator[Outcome]]:
        self._engine = client.engine(stats=stats)
        self._engine.learn_types(job.signals)
        async with self._engine.run(blocks) as results:
            yield results
