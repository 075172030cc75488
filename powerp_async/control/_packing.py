"""Queries packed across planned blocks, once the size the server takes is known.

The plan cuts the range into slices of just under 30 minutes, and each planned block
is a unit that an export records as done. After a 413, :class:`SizeMemory` knows how
many points a query may ask for; cut one planned block at a time, 1,799 windows of 20
signals at 500 per query make three full queries and a short fourth one, or four of
450. A :class:`Packer` cuts full queries from the start of each block instead and
carries the short rest over onto the start of the next block of the same signals, so
that one query spans the boundary between the two blocks and every query but the last
is full: 3.6 queries per block instead of four.

The planned blocks stay the units: each query (a :class:`Piece`) names the parts of
the blocks it covers (its :class:`Segment` s), and the engine puts the answers back
together into the blocks as planned. A block is only done when all its parts are.

The plan gives blocks slice by slice, so the next block of the same signals comes
after the other groups' blocks of that slice, and a carried rest waits for it that
long. It is sent alone when it cannot wait: when a later slice shows that no block
continues it (:meth:`Packer.stale`), when the blocks waiting for their carried rests
hold so many points that the next block could not start (:meth:`Packer.make_room`),
and when the plan ends (:meth:`Packer.flush`). A tenant with more points per slice
than the engine keeps in flight therefore packs less: its rests are sent alone.

Queries never span more than two blocks, never reach 30 minutes (no query is longer
than the longest slice) and stay on the window grid. A block is only packed once the
window edge the server labels its points by is known (the caller says so), since a
point on the boundary between two blocks belongs to one or the other by that edge.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

from ..models import Block
from ..planning import max_slice_us
from ._sizes import SizeMemory

_Key = tuple[int, str, tuple[str, ...], int]


@dataclass(frozen=True, slots=True)
class Segment:
    """The part ``[start_us, end_us)`` of a planned block that one query covers.

    ``serial`` tells planned blocks apart (their place in the plan), so that the
    same block given twice is still two blocks.
    """

    serial: int
    block: Block
    start_us: int
    end_us: int

    def __post_init__(self) -> None:
        inside = self.block.start_us <= self.start_us < self.end_us <= self.block.end_us
        if not inside:
            raise ValueError(
                f"Segment: expected a part of {self.block.describe()}, got "
                f"{self.start_us}..{self.end_us}"
            )

    @property
    def whole(self) -> bool:
        return (self.start_us, self.end_us) == (self.block.start_us, self.block.end_us)

    @property
    def window_count(self) -> int:
        return (self.end_us - self.start_us) // self.block.window_us


@dataclass(frozen=True, slots=True)
class Piece:
    """One query to send, and the parts of planned blocks it covers, in time order.

    A piece that is a whole planned block goes out as planned (and is cut as
    :meth:`SizeMemory.pieces` says, if the server is known to refuse it); a packed
    one is cut to fit already.
    """

    query: Block
    segments: tuple[Segment, ...]

    @property
    def packed(self) -> bool:
        return not (len(self.segments) == 1 and self.segments[0].whole)


class Packer:
    """Cuts planned blocks into pieces of the size known to fit; see the module
    docstring. One packer serves one run: it holds the rests carried over."""

    def __init__(self, sizes: SizeMemory) -> None:
        self._sizes = sizes
        # In the order carried, which for a plan given slice by slice is time order.
        self._carried: dict[_Key, Segment] = {}
        self.carried_points = 0
        """Points of the planned blocks whose carried rest is not sent yet."""

    def __repr__(self) -> str:
        return (
            f"<Packer {len(self._carried)} rests carried, "
            f"{self.carried_points:,} points waiting>"
        )

    def take(self, serial: int, block: Block, *, may_span: bool) -> list[Piece]:
        """The pieces of ``block`` to send now, a rest carried before it included.

        ``may_span`` says whether a query may cover two blocks (the label edge is
        known); without it, and while no size is known, the block goes whole. So
        does a block off the window grid (a query sent as given): pieces are cut
        here a whole number of windows from its start, which would be off the grid
        too; the size memory cuts it on the grid instead.
        """
        whole = Segment(serial, block, block.start_us, block.end_us)
        rest = self._pop(_key(block))
        on_grid = (
            block.start_us % block.window_us == block.end_us % block.window_us == 0
        )
        windows = self._query_windows(block) if may_span and on_grid else None
        if windows is None or windows >= block.window_count:
            return [*_alone(rest), Piece(block, (whole,))]

        if rest is not None and rest.end_us == block.start_us:
            return self._cut([rest, whole], windows)

        return [*_alone(rest), *self._cut([whole], windows)]

    def stale(self, start_us: int) -> list[Piece]:
        """Rests that no block starting at ``start_us`` or later can continue.

        A plan goes slice by slice, so once a block starts after a rest's end, the
        slice that would have continued it is past.
        """
        pieces: list[Piece] = []
        while self._carried:
            key, rest = next(iter(self._carried.items()))
            if rest.end_us >= start_us:
                break

            pieces += _alone(self._pop(key))

        return pieces

    def make_room(self, points: int, capacity: int) -> list[Piece]:
        """Rests to send now so that a block of ``points`` can start once the points
        in flight are answered: waiting for room while the blocks that hold it wait
        for their rests would never end."""
        pieces: list[Piece] = []
        while self._carried and self.carried_points + points > capacity:
            pieces += _alone(self._pop(next(iter(self._carried))))

        return pieces

    def flush(self) -> list[Piece]:
        """Every rest still carried: the plan has ended."""
        rests = [self._pop(key) for key in list(self._carried)]
        return [piece for rest in rests for piece in _alone(rest)]

    def _query_windows(self, block: Block) -> int | None:
        fitting = self._sizes.packing_points(block)
        if fitting is None:
            return None

        windows = min(fitting // len(block.indexes), _longest(block))
        return windows if windows >= 1 else None

    def _cut(self, run: list[Segment], windows: int) -> list[Piece]:
        """Full pieces of ``windows`` along ``run`` (a carried rest and the block it
        continues, or the block alone), the first a try of a larger size if one is
        due; the short rest at the end is carried."""
        block = run[-1].block
        first = windows
        probe = self._sizes.probe_points(block)
        if probe is not None:
            first = min(probe // len(block.indexes), _longest(block))

        spans = list(_spans(run, first, windows))
        last = spans[-1]
        if len(last) == 1 and not last[0].whole and last[0].window_count < windows:
            spans.pop()
            self._carry(last[0])

        pieces = [_piece(segments) for segments in spans]
        if probe is not None:
            self._sizes.probing(pieces[0].query)

        return pieces

    def _carry(self, rest: Segment) -> None:
        self._carried[_key(rest.block)] = rest
        self.carried_points += rest.block.max_points

    def _pop(self, key: _Key) -> Segment | None:
        rest = self._carried.pop(key, None)
        if rest is not None:
            self.carried_points -= rest.block.max_points

        return rest


def _spans(run: list[Segment], first: int, windows: int) -> Iterator[list[Segment]]:
    """``run`` cut into consecutive spans, the first of ``first`` windows and the
    others of ``windows``; the last may be shorter. A span may cover parts of two
    segments, which lie back to back."""
    want = first
    index = 0
    start_us = run[0].start_us
    while index < len(run):
        parts = []
        while want and index < len(run):
            segment = run[index]
            window_us = segment.block.window_us
            take = min(want, (segment.end_us - start_us) // window_us)
            end_us = start_us + take * window_us
            parts.append(dataclasses.replace(segment, start_us=start_us, end_us=end_us))
            want -= take
            start_us = end_us
            if end_us == segment.end_us:
                index += 1

        yield parts
        want = windows


def _piece(segments: list[Segment]) -> Piece:
    first = segments[0]
    query = dataclasses.replace(
        first.block, start_us=first.start_us, end_us=segments[-1].end_us
    )
    return Piece(query, tuple(segments))


def _alone(rest: Segment | None) -> list[Piece]:
    return [] if rest is None else [_piece([rest])]


def _longest(block: Block) -> int:
    return max_slice_us(block.window_us) // block.window_us


def _key(block: Block) -> _Key:
    return block.database_id, block.aggregation, block.indexes, block.window_us
