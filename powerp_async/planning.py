"""Turning signals and a time range into queries the API accepts.

Signals are grouped by (database, aggregation), as the reference notebook does, and cut
into blocks of at most 20. The range is cut into slices shorter than 30 minutes whose
boundaries lie on the window grid, so no window is ever split between two requests.
Planning is lazy: blocks are produced slice by slice, so a year of a large tenant is
never held in memory as a list.
"""

from __future__ import annotations

import bisect
import itertools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from ._time import floor_to_grid, format_duration, to_epoch_us
from .errors import ConfigurationError
from .models import MAX_QUERY_SPAN_US, MAX_SIGNALS_PER_QUERY, Block, Measurement


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A half-open range ``[start_us, end_us)`` snapped to whole windows.

    The start is floored to the grid, so the window holding the requested start is
    included whole; the end is floored too, so a window still in progress at the
    requested end (for ``--since`` that is now) is left out rather than cut short.

    >>> from datetime import UTC, datetime
    >>> start = datetime(2026, 12, 4, 12, 0, 0, 300_000, tzinfo=UTC)
    >>> span = TimeRange.snap(start, start.replace(minute=1), 1_000_000)
    >>> span.window_count, span.start_us % 1_000_000
    (60, 0)
    """

    start_us: int
    end_us: int
    window_us: int

    @classmethod
    def snap(cls, start: datetime, end: datetime, window_us: int) -> TimeRange:
        start_us = floor_to_grid(to_epoch_us(start), window_us)
        end_us = floor_to_grid(to_epoch_us(end), window_us)
        if not to_epoch_us(end) > to_epoch_us(start):
            raise ConfigurationError(
                f"end must be after start, got start={start.isoformat()} "
                f"end={end.isoformat()}"
            )
        if end_us <= start_us:
            max_slice_us(window_us)  # a window no query can take says so first
            raise ConfigurationError(
                "the range holds no whole window of "
                f"{format_duration(window_us)}: widen it or use a shorter window"
            )
        return cls(start_us, end_us, window_us)

    @property
    def window_count(self) -> int:
        return (self.end_us - self.start_us) // self.window_us


def max_slice_us(window_us: int) -> int:
    """The longest slice on the grid that stays under the API's 30-minute limit."""
    windows = (MAX_QUERY_SPAN_US - 1) // window_us
    if windows < 1:
        raise ConfigurationError(
            f"window {format_duration(window_us)} is too long: a query must span less "
            "than 30 minutes, so the window must be shorter than that"
        )
    return windows * window_us


def time_slices(
    span: TimeRange, *, ending_after_us: int | None = None
) -> Iterator[tuple[int, int]]:
    """Equal-as-possible slices, each on the grid and under 30 minutes.

    The fewest slices the limit allows, with the windows spread evenly between them,
    so the last request is not a sliver. With ``ending_after_us``, the slices that end
    at or before it are skipped without being stepped through: a range from the year
    1 holds tens of millions of slices before any signal has data.
    """
    per_slice_max = max_slice_us(span.window_us) // span.window_us
    total = span.window_count
    count = -(-total // per_slice_max)
    base, extra = divmod(total, count)

    def windows_before(number: int) -> int:
        """Windows in the slices before slice ``number``."""
        return number * base + min(number, extra)

    first = 0
    if ending_after_us is not None:
        first = bisect.bisect_right(
            range(count),
            ending_after_us,
            key=lambda number: (
                span.start_us + windows_before(number + 1) * span.window_us
            ),
        )
    start = span.start_us + windows_before(first) * span.window_us
    for number in range(first, count):
        windows = base + (1 if number < extra else 0)
        end = start + windows * span.window_us
        yield start, end
        start = end


def group_signals(
    measurements: Iterable[Measurement],
) -> dict[tuple[int, str], list[Measurement]]:
    """Signals by (database, aggregation), each group in a stable order.

    A signal given twice with the same aggregation is planned once; with two, once in
    each group, since the points of each aggregation are points of their own.
    Within a group, signals of one data type are kept together so that most blocks are
    homogeneous, which lets the decoder take its fast path.
    """
    groups: dict[tuple[int, str], list[Measurement]] = defaultdict(list)
    seen: set[tuple[int, str, str]] = set()
    for measurement in measurements:
        key = (measurement.database_id, measurement.index, measurement.aggregation)
        if key in seen:
            continue
        seen.add(key)
        groups[(measurement.database_id, measurement.aggregation)].append(measurement)

    for members in groups.values():
        members.sort(key=_signal_order)
    return dict(sorted(groups.items()))


def _signal_order(measurement: Measurement) -> tuple[str, int, str]:
    index = measurement.index
    kind = measurement.data_type.value if measurement.data_type else ""
    return (kind, len(index), index)


def plan_blocks(
    measurements: Iterable[Measurement],
    span: TimeRange,
    *,
    block_size: int = MAX_SIGNALS_PER_QUERY,
    balanced: bool = True,
) -> Iterator[Block]:
    """Every block of the job, slice by slice, lazily.

    Signals whose ``firstDataPoint`` lies at or after a slice's end are left out of that
    slice: the server has no window there to give.

    A group's signals go into the fewest blocks of at most ``block_size`` (20 by
    default, the most a query takes, as the client sends them), as even in size as
    their count allows (41 signals in blocks of 20: 14, 14 and 13). A server
    that caps the points of a query then answers every block in slices of about the
    same length; blocks filled in order (20, 20 and 1) leave one of a few signals whose
    queries are short for the 30 minutes a query may span. ``balanced=False`` fills
    them in order, as exports planned before this choice existed do.

    >>> signals = [Measurement(1, str(n)) for n in range(25)]
    >>> hour = TimeRange(0, 3_600_000_000, 60_000_000)  # 29-minute slices: three
    >>> [len(block.indexes) for block in plan_blocks(signals, hour)]
    [13, 12, 13, 12, 13, 12]
    >>> plan = plan_blocks(signals, hour, block_size=20, balanced=False)
    >>> [len(block.indexes) for block in plan]
    [20, 5, 20, 5, 20, 5]
    """
    if not 1 <= block_size <= MAX_SIGNALS_PER_QUERY:
        raise ConfigurationError(
            f"block_size: expected 1 to {MAX_SIGNALS_PER_QUERY}, got {block_size}"
        )
    groups = [
        _LiveSignals(key, members)
        for key, members in group_signals(measurements).items()
    ]
    chunked = _balanced_chunks if balanced else _chunks
    for start_us, end_us in time_slices(span, ending_after_us=_earliest_us(groups)):
        for group in groups:
            database_id, aggregation = group.key
            for chunk in chunked(group.before(end_us), block_size):
                yield Block(
                    database_id=database_id,
                    aggregation=aggregation,
                    indexes=tuple(m.index for m in chunk),
                    start_us=start_us,
                    end_us=end_us,
                    window_us=span.window_us,
                )


def _chunks(items: Sequence[Measurement], size: int) -> Iterator[Sequence[Measurement]]:
    iterator = iter(items)
    while chunk := tuple(itertools.islice(iterator, size)):
        yield chunk


def _balanced_chunks(
    items: Sequence[Measurement], size: int
) -> Iterator[Sequence[Measurement]]:
    """The fewest chunks of at most ``size``, the first ones one item longer where
    the count does not divide evenly."""
    count = -(-len(items) // size)
    if not count:
        return

    base, extra = divmod(len(items), count)
    start = 0
    for number in range(count):
        end = start + base + (number < extra)
        yield items[start:end]
        start = end


def plan_totals(
    measurements: Iterable[Measurement],
    span: TimeRange,
    *,
    block_size: int = MAX_SIGNALS_PER_QUERY,
) -> tuple[int, int]:
    """How many blocks the plan holds and at most how many points, without building it.

    Counts per slice and group from sorted first-data times, so it stays fast for a
    long range of a large tenant.
    """
    starts_by_group = [
        sorted(_first_us(m) for m in members)
        for members in group_signals(measurements).values()
    ]
    blocks = points = 0
    earliest = min((starts[0] for starts in starts_by_group), default=None)
    for start_us, end_us in time_slices(span, ending_after_us=earliest):
        windows = (end_us - start_us) // span.window_us
        for starts in starts_by_group:
            live = bisect.bisect_left(starts, end_us)
            blocks += -(-live // block_size)
            points += live * windows
    return blocks, points


def _earliest_us(groups: Sequence[_LiveSignals]) -> int | None:
    """The earliest first point of any signal; a slice ending by then holds none."""
    return min((group.first_us for group in groups), default=None)


class _LiveSignals:
    """The signals of one group that have data before a given time, in plan order.

    The answer changes only when the time passes some signal's first point, so it is
    recomputed then and nowhere else: a range of years costs a bisection per slice,
    not a pass over every signal.
    """

    def __init__(self, key: tuple[int, str], members: list[Measurement]) -> None:
        self.key = key
        self._members = members
        self._firsts = sorted(_first_us(m) for m in members)
        self.first_us = self._firsts[0]
        """The earliest first point of the group's signals."""
        self._count = -1
        self._live: list[Measurement] = []

    def before(self, end_us: int) -> list[Measurement]:
        count = bisect.bisect_left(self._firsts, end_us)
        if count != self._count:
            self._count = count
            self._live = [m for m in self._members if _first_us(m) < end_us]
        return self._live


def _first_us(measurement: Measurement) -> int:
    first = measurement.first_data_point
    return to_epoch_us(first) if first is not None else -(2**62)


FUTURE_TOLERANCE_US: Final = 60_000_000
"""An end this close after now (or one window) is taken as now: clocks differ."""


def ends_after_now(span: TimeRange) -> bool:
    """Whether ``span`` ends after now by more than clocks differ: the server has no
    data there yet, so those windows come back empty."""
    now_us = to_epoch_us(datetime.now(UTC))
    return span.end_us > now_us + max(span.window_us, FUTURE_TOLERANCE_US)
