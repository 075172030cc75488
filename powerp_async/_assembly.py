"""Answers of queries put back together into the blocks as planned.

A caller that records finished blocks (an export's journal) knows only the planned
ones, so the engine hands on one result per planned block, however its points were
asked for: in pieces after a 413, or in queries packed across two blocks
(``control.Packer``). :class:`Assembly` splits each answer between the blocks its
query covers, by timestamp, and keeps the parts until a block is covered whole; then
the block is handed on, once. If any query of a block failed, the whole block fails
with that error, and so does every other block that query covered.

But for signals the server refused on their own (see ``_signal_refusals``):
a block is then handed on with the points of its other signals, and its refused
signals as blocks of their own, failed (:attr:`BlockResult.refused`). A refused
signal's points are left out of the block even where a query of another time piece
returned them, so that a refused block, fetched again, brings each point once.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace

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
    refused: tuple[tuple[Block, PowerPError], ...] = ()
    """Signals of ``block`` the server refused, as blocks over its whole range, each
    with the refusal; their points are not in ``batch``. Always empty for a failed
    block."""
    left_out: int = 0
    """Points of refused signals that other queries of the block returned, left out
    of ``batch`` so that each comes once, when the refused block is fetched."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def kept_block(self) -> Block:
        """``block`` without its refused signals: what ``batch`` holds."""
        if not self.refused:
            return self.block

        gone = {index for part, _ in self.refused for index in part.indexes}
        kept = tuple(index for index in self.block.indexes if index not in gone)
        return replace(self.block, indexes=kept)


@dataclass(slots=True)
class _Partial:
    """The parts of one planned block answered so far."""

    block: Block
    covered_us: int = 0
    parts: list[tuple[int, pa.RecordBatch]] = field(default_factory=list)
    error: PowerPError | None = None
    refused: list[tuple[Block, PowerPError]] = field(default_factory=list)
    _claimed: set[str] = field(default_factory=set)

    @property
    def complete(self) -> bool:
        return self.covered_us == self.block.end_us - self.block.start_us

    def add(
        self, segment: Segment, answer: BlockResult, batch: pa.RecordBatch | None
    ) -> None:
        self.covered_us += segment.end_us - segment.start_us
        if answer.error is not None:
            self.error = self.error or answer.error
            # A failed block is handed on without points: none need be kept.
            self.parts.clear()
            return

        for part, refusal in answer.refused:
            self._refuse(part.indexes, refusal)
        if self.error is None and batch is not None and batch.num_rows:
            self.parts.append((segment.start_us, batch))

    def _refuse(self, indexes: tuple[str, ...], refusal: PowerPError) -> None:
        """Take ``indexes`` out of the block over its whole range; each index goes to
        one refused block only, so none is fetched twice."""
        new = tuple(
            i for i in self.block.indexes if i in indexes and i not in self._claimed
        )
        if new:
            self._claimed.update(new)
            self.refused.append((replace(self.block, indexes=new), refusal))

    def result(self) -> BlockResult:
        if self.error is not None:
            return BlockResult(self.block, None, self.error)

        fetched = self._points()
        batch = fetched
        if self._claimed and fetched.num_rows:
            gone = pa.array(sorted(self._claimed), pa.string())
            batch = fetched.filter(pc.invert(pc.is_in(fetched.column("index"), gone)))

        left_out = fetched.num_rows - batch.num_rows
        return BlockResult(
            self.block, batch, refused=tuple(self.refused), left_out=left_out
        )

    def _points(self) -> pa.RecordBatch:
        if len(self.parts) == 1:
            return self.parts[0][1]

        if not self.parts:
            return pa.RecordBatch.from_pylist([], schema=POINT_SCHEMA)

        # In time order, as one query for the whole block would have listed them.
        batches = [batch for _, batch in sorted(self.parts, key=lambda part: part[0])]
        table = pa.Table.from_batches(batches, POINT_SCHEMA).combine_chunks()
        return table.to_batches()[0]


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
            partial.add(segment, answer, batch)
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
