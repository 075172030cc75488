"""Answers of queries put back together into the blocks as planned.

A caller that records finished blocks (an export's journal) knows only the planned
ones, so the engine hands on one result per planned block, however its points were
asked for: in pieces after a 413, or in queries packed across two blocks
(``control.Packer``). :class:`Assembly` splits each answer between the blocks its
query covers, by timestamp, and keeps the parts until a block is covered whole; then
the block is handed on, once. If any query of a block failed, the whole block fails
with that error, and so does every other block that query covered.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from .control import Piece, Segment
from .errors import PowerPError
from .models import POINT_SCHEMA, Block


@dataclass(frozen=True, slots=True)
class BlockResult:
    """The outcome of one block: its points, or the error that ended it.

    >>> from .errors import ServerError
    >>> block = Block(1, "last", ("7",), 0, 60_000_000, 1_000_000)
    >>> error = ServerError(
    ...     "the server answered 503", method="POST", url="http://[::1]/", status=503
    ... )
    >>> result = BlockResult(block, None, error)
    >>> result.ok, result.error.status
    (False, 503)
    """

    block: Block
    batch: pa.RecordBatch | None
    error: PowerPError | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(slots=True)
class _Partial:
    """The parts of one planned block answered so far."""

    block: Block
    covered_us: int = 0
    parts: list[tuple[int, pa.RecordBatch]] = field(default_factory=list)
    error: PowerPError | None = None

    @property
    def complete(self) -> bool:
        return self.covered_us == self.block.end_us - self.block.start_us

    def add(
        self, segment: Segment, batch: pa.RecordBatch | None, error: PowerPError | None
    ) -> None:
        self.covered_us += segment.end_us - segment.start_us
        if error is not None:
            self.error = self.error or error
            # A failed block is handed on without points: none need be kept.
            self.parts.clear()
        elif self.error is None and batch is not None and batch.num_rows:
            self.parts.append((segment.start_us, batch))

    def result(self) -> BlockResult:
        if self.error is not None:
            return BlockResult(self.block, None, self.error)

        if len(self.parts) == 1:
            return BlockResult(self.block, self.parts[0][1])

        if not self.parts:
            empty = pa.RecordBatch.from_pylist([], schema=POINT_SCHEMA)
            return BlockResult(self.block, empty)

        # In time order, as one query for the whole block would have listed them.
        batches = [batch for _, batch in sorted(self.parts, key=lambda part: part[0])]
        table = pa.Table.from_batches(batches, POINT_SCHEMA).combine_chunks()
        return BlockResult(self.block, table.to_batches()[0])


class Assembly:
    """Planned blocks waiting for the answers of their pieces; see the module
    docstring. One assembly serves one run."""

    def __init__(self) -> None:
        self._open: dict[int, _Partial] = {}

    def __repr__(self) -> str:
        return f"<Assembly of {len(self._open)} blocks waiting>"

    def open(self, serial: int, block: Block) -> None:
        """Expect the pieces of ``block``, the ``serial``-th of the plan."""
        self._open[serial] = _Partial(block)

    def answered(
        self, piece: Piece, answer: BlockResult, side: str | None
    ) -> list[BlockResult]:
        """The planned blocks that ``answer`` (to ``piece.query``) completes.

        ``side`` is the window edge the server labels points by: with ``"stop"`` a
        point on the boundary between two blocks is the last window of the first.
        """
        parts = _split(answer.batch, piece.segments, side)
        done = []
        for segment, batch in zip(piece.segments, parts, strict=True):
            partial = self._open[segment.serial]
            partial.add(segment, batch, answer.error)
            if partial.complete:
                del self._open[segment.serial]
                done.append(partial.result())

        return done

    def abandon(self) -> list[Block]:
        """The blocks still waiting, forgotten: the run ended without them."""
        blocks = [partial.block for partial in self._open.values()]
        self._open.clear()
        return blocks


def _split(
    batch: pa.RecordBatch | None, segments: tuple[Segment, ...], side: str | None
) -> list[pa.RecordBatch | None]:
    """``batch`` cut between ``segments`` by timestamp."""
    if batch is None or len(segments) == 1:
        return [batch] * len(segments)

    stamps = batch.column("timestamp").cast(pa.int64())
    after = pc.greater if side == "stop" else pc.greater_equal
    before = pc.less_equal if side == "stop" else pc.less
    parts: list[pa.RecordBatch | None] = []
    for number, segment in enumerate(segments):
        # The query's own edges were settled when it was decoded; only the inner
        # boundaries are drawn here.
        conditions = []
        if number > 0:
            conditions.append(after(stamps, segment.start_us))
        if number < len(segments) - 1:
            conditions.append(before(stamps, segment.end_us))

        keep = functools.reduce(pc.and_, conditions)
        parts.append(batch.filter(keep))

    return parts
