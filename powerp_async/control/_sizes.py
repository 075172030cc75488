"""Query sizes the server takes: what a 413 taught, applied to every later block.

A server that refuses a query as too large (413) will refuse every block as large, so
splitting each block only after its own refusal costs one wasted request per block and
halves blocks further than needed. :class:`SizeMemory` keeps, per (database,
aggregation), the smallest query refused and the largest accepted since, both in
points (signals times windows), and cuts later blocks into the fewest pieces that
fit before they are sent.

The limit lies between the two: while the accepted size is below half the refused one,
blocks are cut in halves of the refused size (a bisection); after that, to the
accepted size. Where the server refuses by holding a query until it times out rather
than by a 413, each step down costs a whole timeout, so blocks are cut in quarters
instead: the steps are half as many, and the bisection upward from the quarter that
fits costs one held request now and then rather than every block's time.

Pieces are cut by time first, so each keeps all the signals of its block: a server
that counts requests then gets the fewest requests for the points. Only a block
whose signals alone exceed the size is cut by signals too.

Now and then (every ``probe_every`` accepted pieces of a group) one block goes out in
one piece fewer than the memory says, so a limit that was raised is found again; a
refusal of the probe only lowers the refused size, and the probe's pieces are cut
again to what is known to fit.

Queries packed across planned blocks (:class:`~powerp_async.control.Packer`) need
not divide a block evenly, so they can try any size: while the accepted and refused
sizes lie far apart, one query in ``bisect_every`` tries the size halfway between
(:meth:`SizeMemory.probe_points`), which finds the limit in a few tries rather than
leaving queries at the half that halving reached.

A group has one try out at a time, and the count towards the next starts when it is
answered: a try the server holds until a timeout would otherwise be followed by more
of the same size while it waits, each holding its blocks' points. Where refusals are
timeouts, tries above a found limit are ``SLOW_PROBE_FACTOR`` times rarer. No try is
made once the plan's last block was taken (:attr:`SizeMemory.may_try`): then a
refused try could only delay the end. Runs may share one memory (the calls of one
client do); tries then stop once every one of them took its plan
(:meth:`SizeMemory.planning`).

A server may limit the signals of a query rather than, or as well as, its points:
then no cut in time helps, and a query of one window is refused too. Once such a
query (one window, many signals) was refused and one of fewer signals over one window
accepted, the most signals accepted so are the group's cap (raised by any larger
query accepted later): every block goes out in parts of at most that many signals,
and what was learnt of points before, which was learnt of signals, is forgotten, so
the parts are cut in time only if a points limit refuses them in turn.

Nothing is remembered before the first 413: blocks stay whole.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Final

from ..models import Block

PROBE_EVERY: Final = 100
"""Accepted pieces of a group between two tries of a larger piece."""

BORROW_EVERY: Final = 5
"""Accepted pieces of a group between two tries of a size another aggregation of the
database was answered at."""

BISECT_EVERY: Final = 20
"""Accepted pieces of a group between two tries halfway to the refused size: a refused
try costs one request, so the search costs at most one request in 20."""

SLOW_CUT: Final = 4
"""Pieces a block is cut in per refused size once refusals came as timeouts; 2 after
413s."""

SLOW_PROBE_FACTOR: Final = 16
"""Where refusals are timeouts, tries above a found limit wait this many times
longer: each refused one holds a request and its blocks for a whole timeout."""

FOUND_SHARE: Final = 64
"""The limit counts as found once the refused size is within 1/64 of the fitting one:
another halving would gain less than 1.6% per query."""

UPWARD_SHARE: Final = 4
"""Once the limit is found, a packed try asks for a quarter more than fits."""

GroupKey = tuple[int, str]


@dataclass(slots=True)
class _GroupSizes:
    refused_points: int
    """The smallest query of this group the server refused as too large."""
    fitting_points: int = 0
    """The largest query accepted since; 0 while none is known."""
    since_probe: int = 0
    upward_misses: int = 0
    """Tries above the refused size refused in a row; each doubles the wait."""
    slow: bool = False
    """Refusals came as timeouts: every step down costs a whole timeout."""
    refused_signals: int = 0
    """The fewest signals of a query of one window refused; 0 while none was."""
    signal_cap: int = 0
    """The most signals a query is known to take, below ``refused_signals``; 0
    while none is known."""


NO_POINTS_REFUSED: Final = sys.maxsize
"""The refused size of a group whose refusals were of signals, not of points."""


class SizeMemory:
    """Remembers refused and accepted query sizes; see the module docstring."""

    def __init__(
        self, probe_every: int = PROBE_EVERY, bisect_every: int = BISECT_EVERY
    ) -> None:
        if probe_every < 1:
            raise ValueError(f"probe_every must be at least 1, got {probe_every!r}")

        if bisect_every < 1:
            raise ValueError(f"bisect_every must be at least 1, got {bisect_every!r}")

        self._probe_every = probe_every
        self._bisect_every = bisect_every
        self._groups: dict[GroupKey, _GroupSizes] = {}
        self._probes: set[Block] = set()
        self.may_try = True
        """Whether tries of larger sizes are made; off once a plan's last block was
        taken, when a refused try could only delay the end."""
        self._planning_runs = 0

    def __repr__(self) -> str:
        known = ", ".join(
            f"{key[0]}/{key[1]}: fits {sizes.fitting_points}, "
            f"refused {sizes.refused_points}"
            for key, sizes in self._groups.items()
        )
        return f"<SizeMemory {known or 'empty'}>"

    @contextmanager
    def planning(self) -> Iterator[None]:
        """Around a run's taking of its plan: tries are made meanwhile, and runs
        sharing this memory keep them on until the last of them has taken its plan."""
        self._planning_runs += 1
        self.may_try = True
        try:
            yield
        finally:
            self._planning_runs -= 1
            self.may_try = self._planning_runs > 0

    def fitting_points(self, block: Block) -> int | None:
        """The largest query of this block's group accepted since a 413, if any."""
        sizes = self._groups.get(_key(block))
        return sizes.fitting_points if sizes and sizes.fitting_points else None

    def signal_cap(self, block: Block) -> int | None:
        """The most signals a query of this block's group takes, once a limit of
        signals was met; ``None`` before."""
        sizes = self._groups.get(_key(block))
        return sizes.signal_cap if sizes and sizes.signal_cap else None

    def pieces(self, block: Block) -> list[Block]:
        """``block`` cut into the fewest pieces that the server is known to take.

        Until a query of at least half the refused size was accepted, a block is cut
        in twice as many pieces as the refused size suggests: the halving a split
        does, so a size far below the first refusal is found in a few steps (four
        times as many and a quarter, where refusals are timeouts).
        """
        sizes = self._groups.get(_key(block))
        if sizes is None:
            return [block]

        if _over_cap(sizes, block):
            parts = cut_in_signals(block, sizes.signal_cap)
            return [piece for part in parts for piece in self.pieces(part)]

        if _cutting_down(sizes) or block.max_points <= sizes.fitting_points:
            return _cut_as_known(sizes, block)

        if self._upward_try_due(sizes, block):
            sizes.since_probe = 0
            count = _piece_count(block, sizes.fitting_points)
            probes = cut_in_count(block, count - 1)
            self._probes.update(probes)
            return probes

        return _cut_as_known(sizes, block)

    def _upward_try_due(self, sizes: _GroupSizes, block: Block) -> bool:
        """Whether ``block`` goes out in one piece fewer than known to fit, to find
        a raised limit. Not where one window of its signals is over the size that
        fits: its pieces are cut by signals, and one fewer would put every signal
        back in each, one window apiece, every one refused again."""
        if sizes.fitting_points < len(block.indexes) or not self._try_due(sizes):
            return False

        return sizes.since_probe >= self._upward_due(sizes)

    def packing_points(self, block: Block) -> int | None:
        """The points a query of this block's group is known to fit, for queries cut
        free of the planned blocks; ``None`` before a 413 and while cutting down,
        when blocks go whole and :meth:`pieces` cuts them."""
        sizes = self._groups.get(_key(block))
        if sizes is None or _cutting_down(sizes) or _over_cap(sizes, block):
            return None

        return sizes.fitting_points

    def probe_points(self, block: Block) -> int | None:
        """A larger query of this block's signals worth one try now, if one is due.

        While the limit is not found: a size another aggregation of the database
        was answered at, every ``BORROW_EVERY`` accepted queries, since the limit is
        likely one for the whole database and such a try is seldom refused; else,
        every ``bisect_every``, halfway to the smallest size refused. Once found, a
        quarter above it every ``probe_every``, so that a raised limit is found
        again (twice as long after each such try refused in a row). A try that
        would give this block's signals no more windows is not due; one returned
        is counted as made. A packer sending a try at or above the refused size
        marks it with :meth:`probing`.
        """
        key = _key(block)
        sizes = self._groups.get(key)
        if sizes is None or not sizes.fitting_points or not self._try_due(sizes):
            return None

        if _over_cap(sizes, block):
            return None

        fitting = sizes.fitting_points
        others = [
            other
            for (database_id, _), other in self._groups.items()
            if database_id == key[0] and other is not sizes
        ]
        borrowed = _borrowed(sizes, others)
        if _found(fitting, sizes.refused_points):
            due = self._upward_due(sizes)
            points = fitting + fitting // UPWARD_SHARE
        elif borrowed is not None:
            due, points = BORROW_EVERY, borrowed
        else:
            due, points = self._bisect_every, _halfway(sizes, others)

        signals = len(block.indexes)
        if sizes.since_probe < due or points // signals <= fitting // signals:
            return None

        sizes.since_probe = 0
        return points

    def probing(self, block: Block) -> None:
        """``block`` goes out to try a size: not cut, though as large as one refused."""
        self._probes.add(block)

    def on_failed(self, block: Block) -> None:
        """``block`` failed for a reason other than its size: no longer a try."""
        self._probes.discard(block)

    def too_large(self, block: Block) -> bool:
        """Whether ``block`` is larger than what is now known to be worth sending
        (probes aside): a block cut or taken before a refusal was learnt is cut
        again before it goes out.

        That is not only a block as large as one refused: the other half of a
        refused block is a hair smaller than it, and sent as it is, it would only be
        refused in turn (or, where the server holds such queries until they time
        out, hold a request for the whole timeout).
        """
        sizes = self._groups.get(_key(block))
        if sizes is None or block in self._probes:
            return False

        if _over_cap(sizes, block):
            return True

        points = block.max_points
        if _cutting_down(sizes):
            # A half of a refused block may be a window over half its size, and is
            # sent; the other half of a refused block, under it by a window, is not.
            worth_sending = 2 * _cut_share(sizes) * points <= 3 * sizes.refused_points
        else:
            worth_sending = points <= sizes.fitting_points

        # A block that cannot be cut goes out as it is, and a refusal ends it.
        return not worth_sending and len(_cut_as_known(sizes, block)) > 1

    def on_refused(self, block: Block, *, slow: bool = False) -> None:
        """The server refused ``block`` as too large: with a 413, or with
        ``slow=True`` by holding it until it timed out."""
        probe = block in self._probes
        self._probes.discard(block)
        key = _key(block)
        points = block.max_points
        sizes = self._groups.get(key)
        if sizes is None:
            sizes = self._groups[key] = _GroupSizes(points, slow=slow)
            _note_signals_refused(sizes, block)
            return

        _note_signals_refused(sizes, block)
        sizes.slow = sizes.slow or slow
        if probe and points >= sizes.refused_points:
            sizes.upward_misses += 1
        if probe or not _found(points, sizes.refused_points):
            # Tries wait for answers of the new size; a refusal no smaller than one
            # known (a query sent before that one was answered) changes nothing.
            sizes.since_probe = 0
        sizes.refused_points = min(sizes.refused_points, points)
        if sizes.fitting_points >= points:
            # The limit came down: what fitted before is no evidence any more.
            sizes.fitting_points = 0

    def on_accepted(self, block: Block) -> None:
        """The server answered ``block``; only groups with a refusal keep count."""
        probe = block in self._probes
        self._probes.discard(block)
        sizes = self._groups.get(_key(block))
        if sizes is None:
            return

        _note_signals_accepted(sizes, block)
        points = block.max_points
        sizes.since_probe = 0 if probe else sizes.since_probe + 1
        sizes.fitting_points = max(sizes.fitting_points, points)
        if points >= sizes.refused_points:
            # The limit went up: the old refusal no longer bounds anything.
            sizes.refused_points = points + 1
            sizes.upward_misses = 0

    def _try_due(self, sizes: _GroupSizes) -> bool:
        """Whether a try may go out now: the plan goes on, and none of the group is
        out."""
        if not self.may_try:
            return False

        return not any(self._groups.get(_key(probe)) is sizes for probe in self._probes)

    def _upward_due(self, sizes: _GroupSizes) -> int:
        """Accepted queries between two tries above a found limit."""
        every = self._probe_every * (SLOW_PROBE_FACTOR if sizes.slow else 1)
        return every << sizes.upward_misses


def cut_to_fit(block: Block, limit_points: int) -> list[Block]:
    """Pieces of ``block`` of at most ``limit_points`` each, by time where possible."""
    if block.max_points <= limit_points:
        return [block]

    signals = len(block.indexes)
    if signals <= limit_points:
        return cut_in_time(block, _piece_count(block, limit_points)) or [block]

    middle = signals // 2
    halves = (block.indexes[:middle], block.indexes[middle:])
    return [
        piece
        for indexes in halves
        for piece in cut_to_fit(_with(block, indexes=indexes), limit_points)
    ]


def cut_in_signals(block: Block, most: int) -> list[Block]:
    """``block`` in the fewest parts of at most ``most`` signals, as even as they
    can be, each over the block's whole range."""
    count = -(-len(block.indexes) // most)
    base, extra = divmod(len(block.indexes), count)
    parts = []
    start = 0
    for number in range(count):
        end = start + base + (1 if number < extra else 0)
        parts.append(_with(block, indexes=block.indexes[start:end]))
        start = end

    return parts


def _over_cap(sizes: _GroupSizes, block: Block) -> bool:
    return 0 < sizes.signal_cap < len(block.indexes)


def _note_signals_refused(sizes: _GroupSizes, block: Block) -> None:
    """A query of one window refused may be refused for its signals alone."""
    signals = len(block.indexes)
    if block.window_count == 1 and signals > 1:
        sizes.refused_signals = min(sizes.refused_signals or signals, signals)


def _note_signals_accepted(sizes: _GroupSizes, block: Block) -> None:
    """Fewer signals than a query of one window refused were taken: the limit is of
    signals. What the refusals taught of points was taught by signals, and is
    forgotten the first time, so parts of the cap go out over their whole range."""
    signals = len(block.indexes)
    if not signals < sizes.refused_signals or signals <= sizes.signal_cap:
        return

    if not sizes.signal_cap:
        sizes.refused_points, sizes.fitting_points = NO_POINTS_REFUSED, 0
        sizes.since_probe = sizes.upward_misses = 0
    sizes.signal_cap = signals


def cut_in_time(block: Block, count: int) -> list[Block] | None:
    """``block`` in ``count`` consecutive spans of nearly equal windows; ``None`` if
    it has fewer windows than that, or ``count`` is below 2.

    The cuts fall on the epoch-aligned window grid, whatever the block's own edges:
    a window cut in two would be answered twice, once per piece, each labelled by its
    clipped edge. The first and last pieces keep the block's edges, so an unaligned
    block's partial windows stay partial.
    """
    windows = block.window_count
    if count < 2 or windows < count:
        return None

    base, extra = divmod(windows, count)
    first_window = block.start_us // block.window_us
    pieces = []
    start_us = block.start_us
    taken = 0
    for number in range(count):
        taken += base + (1 if number < extra else 0)
        end_us = min((first_window + taken) * block.window_us, block.end_us)
        pieces.append(_with(block, start_us=start_us, end_us=end_us))
        start_us = end_us

    return pieces


def cut_in_count(block: Block, count: int) -> list[Block]:
    """``block`` in about ``count`` pieces: by time, and by signals too where it has
    fewer windows than that."""
    if count < 2:
        return [block]

    pieces = cut_in_time(block, count)
    if pieces is not None:
        return pieces

    signals = len(block.indexes)
    if signals < 2:
        return cut_in_time(block, block.window_count) or [block]

    middle = signals // 2
    halves = (block.indexes[:middle], block.indexes[middle:])
    return [
        piece
        for indexes in halves
        for piece in cut_in_count(_with(block, indexes=indexes), -(-count // 2))
    ]


def _cut_share(sizes: _GroupSizes) -> int:
    """In how many pieces a refused block is cut: halves after a 413, quarters after
    a timeout, which costs far more than one request."""
    return SLOW_CUT if sizes.slow else 2


def _cutting_down(sizes: _GroupSizes) -> bool:
    """Whether what fitted is so far below what was refused (a small block of the
    group, say) that it says little about the limit, so blocks are cut down as a
    split would cut them."""
    return _cut_share(sizes) * sizes.fitting_points < sizes.refused_points


def _cut_as_known(sizes: _GroupSizes, block: Block) -> list[Block]:
    """``block`` cut as what is known of its group says, with no try of a larger
    size: cut down towards a share of the refused size, or to the fitting one."""
    if _cutting_down(sizes):
        count = -(-_cut_share(sizes) * block.max_points // sizes.refused_points)
        return cut_in_count(block, count)

    return cut_to_fit(block, sizes.fitting_points)


def _borrowed(sizes: _GroupSizes, others: list[_GroupSizes]) -> int | None:
    """The largest size another group was answered at between this group's fitting
    and refused sizes, if any."""
    taken = [
        other.fitting_points
        for other in others
        if sizes.fitting_points < other.fitting_points < sizes.refused_points
    ]
    return max(taken, default=None)


def _halfway(sizes: _GroupSizes, others: list[_GroupSizes]) -> int:
    """Halfway from the fitting size to the smallest size any group was refused at
    above it, or to this group's own refused size once that is reached: another
    aggregation's limit may be lower, but it does not bound this one's."""
    fitting = sizes.fitting_points
    bounds = [
        other.refused_points for other in others if fitting < other.refused_points
    ]
    upper = min([sizes.refused_points, *bounds])
    if _found(fitting, upper):
        upper = sizes.refused_points

    return (fitting + upper) // 2


def _found(fitting_points: int, refused_points: int) -> bool:
    """Whether the limit lies so close above ``fitting_points`` that another try
    between the two would gain little."""
    return refused_points - fitting_points <= fitting_points // FOUND_SHARE


def _piece_count(block: Block, limit_points: int) -> int:
    windows_per_piece = max(1, limit_points // len(block.indexes))
    return -(-block.window_count // windows_per_piece)


def _key(block: Block) -> GroupKey:
    return block.database_id, block.aggregation


def _with(block: Block, **changes: object) -> Block:
    return dataclasses.replace(block, **changes)  # type: ignore[arg-type]
