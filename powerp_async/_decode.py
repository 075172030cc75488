"""Turn one ``POST /v1/Query`` answer into an Arrow batch of points.

This is the client's hot path: an answer holds up to 20 signals times some 1,800
windows, so every step after reading the JSON works on whole columns (pyarrow and
numpy) rather than on one point at a time. The answer to a block of float signals,
in the compact shape servers send, is read from its bytes straight into columns
(``_compact_wire``); any other is read into lists first (``_wire``). Of those, an
answer grouped by signal, as servers send them, is looked up and parsed per run of
one signal (``_runs``); any other goes point by point. Timestamps go through
Arrow's parser first and through ``parse_wire`` only when Arrow refuses one; which
column each value goes to is decided in ``_values``. Each point's signal is carried
as its position among the block's indexes, and the index column is built from those
positions at the end.

Known shortcomings: an ``index`` sent as a number beyond 64 bits reaches us rounded by
orjson and counts as unrequested; a float ``index`` (``12.0`` as well as ``12.5``)
counts as unrequested too, since only strings and integers name a signal. A text
holding an unpaired surrogate escape (``"\\ud800"``), which no UTF-8 text can hold,
is kept with U+FFFD in place of the lone surrogate, and a warning says so.
"""

from __future__ import annotations

import itertools
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from ._compact_wire import read_compact
from ._runs import IndexRuns, index_runs, shared_texts
from ._time import parse_wire
from ._values import (
    ValueColumns,
    float_columns,
    float_signals_only,
    numeric_kinds,
    value_columns,
)
from ._wire import Fields, json_kind, malformed, read_exactly, read_fields
from .errors import MalformedResponseError
from .models import POINT_SCHEMA, Block, DataType

__all__ = ["DecodedBlock", "decode_block"]

_LOGGER: Final = logging.getLogger("powerp_async.decode")

_LONE_SURROGATE: Final = re.compile("[\ud800-\udfff]")
_TIMESTAMP_US: Final = pa.timestamp("us", tz="UTC")
_TIMESTAMP_NS: Final = pa.timestamp("ns", tz="UTC")
_TWO_TO_63: Final = 2.0**63
_TWO_TO_62: Final = 2**62
_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_TIME_EXPECTED: Final = (
    "expected each timestamp as an ISO-8601 string such as '2026-12-04T10:00:00Z'"
)

BoolArray = npt.NDArray[np.bool_]
Int64Array = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class DecodedBlock:
    """One decoded answer: the accepted points and how many were dropped, and why."""

    batch: pa.RecordBatch
    """``POINT_SCHEMA``, one row per accepted point, in the order the server sent."""
    dropped_unrequested: int
    """Points for signals the block did not ask for."""
    dropped_out_of_range: int
    """Points whose timestamp lies outside ``[start, end]``."""
    dropped_duplicates: int
    """Points repeating an (index, timestamp) already accepted; the first is kept."""
    dropped_off_grid: int = 0
    """Points whose timestamp labels no window: off the grid of windows aligned to
    the epoch, and not an edge of the range asked (the label of a partial window)."""
    dropped_unreadable: int = 0
    """Points whose timestamp is no time: a text no ISO-8601 parser reads, a number,
    null. Dropped while they are fewer than the points whose time reads; more, and
    the answer is taken for malformed."""

    def __post_init__(self) -> None:
        if not isinstance(self.batch, pa.RecordBatch):
            raise TypeError(f"batch must be a pyarrow RecordBatch, got {self.batch!r}")

        if not self.batch.schema.equals(POINT_SCHEMA):
            raise ValueError(f"batch must have POINT_SCHEMA, got {self.batch.schema}")

        for name in (
            "dropped_unrequested",
            "dropped_out_of_range",
            "dropped_duplicates",
            "dropped_off_grid",
            "dropped_unreadable",
        ):
            count = getattr(self, name)
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(
                    f"{name} must be a count of zero or more, got {count!r}"
                )


def decode_block(
    body: bytes,
    block: Block,
    data_types: Mapping[str, DataType | None],
    *,
    url: str,
) -> DecodedBlock:
    """Decode the answer to ``block`` into one batch of ``POINT_SCHEMA``.

    ``data_types`` maps an index to its declared type; a missing or ``None`` type
    lets each JSON value decide. ``url`` must already be masked: errors carry it.
    Raises ``MalformedResponseError`` when the body is not a JSON array of objects,
    most points lack an ``index`` or a ``timestamp`` or have one that is no time, or
    a value is nested too deeply to be kept as JSON text.
    """
    try:
        return _decode_any_text(body, block, data_types, url)
    except RecursionError:
        # A value nested nearly as deep as the parser follows: read, but too deep
        # to be written again as the JSON text that value_text keeps of it.
        raise _too_deep(body, url) from None


def _decode_any_text(
    body: bytes, block: Block, data_types: Mapping[str, DataType | None], url: str
) -> DecodedBlock:
    try:
        return _decode_body(body, block, data_types, url)
    except UnicodeEncodeError:
        pass

    # An unpaired surrogate escape such as "\ud800" is valid JSON but no text that
    # UTF-8, and so Arrow, can hold. Refusing the answer would lose every point of
    # the block, on every try, for one odd text; so each such text is kept with
    # U+FFFD, the replacement character, in place of the lone surrogate.
    _warn_once(
        "%s: a text of the answer to %s holds an unpaired surrogate escape, which no "
        "UTF-8 text can hold; kept with U+FFFD in its place",
        url,
        block.describe(),
    )
    return _decode_body(body, block, data_types, url, clean=True)


def _too_deep(body: bytes, url: str) -> MalformedResponseError:
    message = "expected values nested a few hundred levels at most, got one nested "
    message += "too deeply to be kept as JSON text"
    return malformed(message, body, url)


def _decode_body(
    body: bytes,
    block: Block,
    data_types: Mapping[str, DataType | None],
    url: str,
    *,
    clean: bool = False,
) -> DecodedBlock:
    floats_only = float_signals_only(block, data_types)
    if floats_only and not clean:
        decoded = _decode_compact(body, block)
        if decoded is not None:
            return decoded

    fields = read_fields(body, block.indexes, floats_only=floats_only, url=url)
    if clean:
        fields = _without_lone_surrogates(fields)
    decoded = _decode_fields(fields, block, data_types, body=body, url=url)
    if fields.exact or not _may_hold_rounded_integers(decoded.batch):
        return decoded

    # orjson turns an integer token beyond 64 bits into a float, losing digits, and
    # nothing in its result tells such a float from one sent as a float. Magnitudes
    # that large are rare, so only then is the body parsed again by the stdlib, which
    # keeps every integer exact.
    _LOGGER.debug("parsing %s again to keep integers beyond 64 bits exact", url)
    fields = read_exactly(body, url=url)
    if clean:
        fields = _without_lone_surrogates(fields)
    return _decode_fields(fields, block, data_types, body=body, url=url)


_warned: set[str] = set()
"""The warnings given once already in this process, by their text."""


def _warn_once(message: str, *args: object) -> None:
    """A warning the first time, at debug level after: an odd answer usually comes
    again for every block of the same signals, and would bury every other line."""
    level = logging.DEBUG if message in _warned else logging.WARNING
    _warned.add(message)
    _LOGGER.log(level, message, *args)


def _without_lone_surrogates(fields: Fields) -> Fields:
    """``fields`` with each surrogate code point of a text replaced by U+FFFD: in a
    Python text a surrogate is always a lone one, a pair being one character."""

    def cleaned(values: list[Any]) -> list[Any]:
        return [
            _LONE_SURROGATE.sub("\ufffd", value) if type(value) is str else value
            for value in values
        ]

    return fields._replace(
        indexes=cleaned(fields.indexes),
        values=cleaned(fields.values),
        times=cleaned(fields.times),
    )


def _decode_compact(body: bytes, block: Block) -> DecodedBlock | None:
    """The answer of a block of float signals in the compact shape servers send,
    read straight into columns; ``None`` for any other (``_compact_wire``)."""
    columns = read_compact(body, block.indexes)
    if columns is None:
        return None

    times_us = _cast_times(columns.time_texts)
    if times_us is None:
        return None  # the general path says what it makes of such a time

    codes, floats = columns.codes, columns.floats
    times_us = times_us[columns.time_positions]
    selection = _select(codes, times_us, block)
    if not selection.keep.all():
        codes, times_us = codes[selection.keep], times_us[selection.keep]
        floats = floats.filter(pa.array(selection.keep))

    return _decoded(block, codes, times_us, float_columns(floats), selection)


def _decode_fields(
    fields: Fields,
    block: Block,
    data_types: Mapping[str, DataType | None],
    *,
    body: bytes,
    url: str,
) -> DecodedBlock:
    codes, times_us, readable = _codes_and_times(fields, block, body=body, url=url)
    unreadable = 0
    if readable is not None:
        unreadable = len(readable) - int(readable.sum())
        codes, times_us = codes[readable], times_us[readable]
        fields = _kept_values(fields, readable)

    selection = _select(codes, times_us, block)
    if not selection.keep.all():
        codes = codes[selection.keep]
        times_us = times_us[selection.keep]
        fields = _kept_values(fields, selection.keep)

    if fields.floats is not None:
        columns = float_columns(fields.floats)
    else:
        is_int, is_float = numeric_kinds(codes, block, data_types)
        columns = value_columns(fields.values, is_int, is_float, url=url)

    return _decoded(block, codes, times_us, columns, selection, unreadable)


def _decoded(
    block: Block,
    codes: Int64Array,
    times_us: Int64Array,
    columns: ValueColumns,
    selection: _Selection,
    unreadable: int = 0,
) -> DecodedBlock:
    return DecodedBlock(
        batch=_batch(block, codes, times_us, columns),
        dropped_unrequested=selection.unrequested,
        dropped_out_of_range=selection.out_of_range,
        dropped_duplicates=selection.duplicates,
        dropped_off_grid=selection.off_grid,
        dropped_unreadable=unreadable,
    )


def _kept_values(fields: Fields, keep: BoolArray) -> Fields:
    """``fields`` with the values of the points kept only."""
    floats = None if fields.floats is None else fields.floats.filter(pa.array(keep))
    return fields._replace(
        values=list(itertools.compress(fields.values, keep)), floats=floats
    )


# Indexes and timestamps ---------------------------------------------------------------


def _codes_and_times(
    fields: Fields, block: Block, *, body: bytes, url: str
) -> tuple[Int64Array, Int64Array, BoolArray | None]:
    """Per point: the position of its signal among the block's indexes (-1 for one
    not asked for), its time in epoch microseconds, and whether that time could be
    read (``None``: every one could)."""
    by_run = _codes_and_times_by_run(fields, block)
    if by_run is not None:
        return (*by_run, None)

    codes = _index_codes(_index_strings(fields.indexes), block)
    times_us, readable = _parse_times(fields.times, block, body=body, url=url)
    return codes, times_us, readable


def _codes_and_times_by_run(
    fields: Fields, block: Block
) -> tuple[Int64Array, Int64Array] | None:
    """The same, run by run of one signal; ``None`` for an answer not grouped so, or
    with an index not asked for or a timestamp that Arrow's parser refuses (the
    general path says what it makes of them)."""
    runs = index_runs(fields.indexes, len(block.indexes))
    if runs is None:
        return None

    codes = _run_codes(runs, block)
    if codes is None:
        return None

    times_us = _times_by_run(fields.times, runs.lengths)
    return None if times_us is None else (codes, times_us)


def _run_codes(runs: IndexRuns, block: Block) -> Int64Array | None:
    """Each point's position among the block's indexes, looked up once per run."""
    positions_of = _positions_of(block)
    run_codes = [positions_of.get(key) for key in runs.keys]
    if None in run_codes:
        return None

    return np.repeat(np.array(run_codes, np.int64), runs.lengths)


def _times_by_run(raw_times: list[Any], lengths: list[int]) -> Int64Array | None:
    """Each point's time, the texts of runs that repeat another's parsed once."""
    shared = shared_texts(raw_times, lengths)
    if shared is None:
        return None

    texts, positions = shared
    times_us = _parse_times_quietly(texts)
    return None if times_us is None else times_us[positions]


def _positions_of(block: Block) -> dict[str, int]:
    """Each index of ``block`` and its first position, as Arrow's ``index_in`` finds."""
    positions: dict[str, int] = {}
    for position, index in enumerate(block.indexes):
        positions.setdefault(index, position)

    return positions


def _index_codes(indexes: pa.Array, block: Block) -> Int64Array:
    found = pc.index_in(indexes, value_set=pa.array(block.indexes, type=pa.string()))
    codes: Int64Array = found.fill_null(-1).to_numpy().astype(np.int64)
    return codes


def _index_strings(raw_indexes: list[Any]) -> pa.Array:
    """Indexes as strings; null where the server sent something that names no signal."""
    try:
        return pa.array(raw_indexes, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        pass

    # Some servers echo the index as a number although a string was sent.
    if set(map(type, raw_indexes)) == {int}:
        try:
            return pa.array(raw_indexes, type=pa.int64()).cast(pa.string())
        except OverflowError:
            pass

    return pa.array([_index_text(raw) for raw in raw_indexes], type=pa.string())


def _index_text(raw: Any) -> str | None:
    if isinstance(raw, str):
        return raw

    if isinstance(raw, int) and not isinstance(raw, bool):
        return str(raw)

    return None


def _parse_times(
    raw_times: list[Any], block: Block, *, body: bytes, url: str
) -> tuple[Int64Array, BoolArray | None]:
    """Epoch microseconds of every timestamp, and which could be read (``None``:
    all). A time that is no ISO-8601 text costs its point, not the whole answer on
    every try; an answer whose times mostly read as none is malformed."""
    try:
        texts = pa.array(raw_times, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        texts = None

    if texts is not None and not texts.null_count:
        parsed = _cast_times(texts)
        if parsed is not None:
            return parsed, None

    _LOGGER.debug("timestamps of %s need the per-value parser", url)
    times_us, readable = _parse_times_slowly(raw_times)
    if readable.all():
        return times_us, None

    first = int(np.argmin(readable))
    if 2 * int(readable.sum()) <= len(readable):
        raise _unreadable_time(raw_times[first], first, body, url)

    _warn_once(
        "%s: points whose timestamp is no time are dropped (the first: %s)",
        block.describe(),
        _what_time(raw_times[first], first),
    )
    return times_us, readable


def _parse_times_quietly(texts: list[str]) -> Int64Array | None:
    """Epoch microseconds by Arrow's parser, or ``None`` where ``_parse_times`` has
    more to do: a text that is none, or one that Arrow refuses."""
    try:
        array = pa.array(texts, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid, UnicodeEncodeError):
        return None

    return None if array.null_count else _cast_times(array)


def _cast_times(texts: pa.Array) -> Int64Array | None:
    """Arrow's parser: ``Z`` or an offset, up to 9 digits; ``None`` if it refuses."""
    try:
        microseconds: Int64Array = texts.cast(_TIMESTAMP_US).view(pa.int64()).to_numpy()
        return microseconds
    except pa.ArrowInvalid:
        pass

    # Nanosecond digits do not fit microseconds exactly; the floor division
    # truncates them, as parse_wire does, also before 1970.
    try:
        nanoseconds: Int64Array = texts.cast(_TIMESTAMP_NS).view(pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        return None

    return nanoseconds // 1_000


def _parse_times_slowly(raw_times: list[Any]) -> tuple[Int64Array, BoolArray]:
    """Each time by the per-value parser, and whether it read as one."""
    # The signals of a block share their window labels, so most texts repeat.
    parsed: dict[str, int | None] = {}
    every_text = True
    for raw in raw_times:
        if type(raw) is not str:
            every_text = False
        elif raw not in parsed:
            parsed[raw] = _wire_time_or_none(raw)

    count = len(raw_times)
    if every_text and None not in parsed.values():
        times = np.fromiter(map(parsed.__getitem__, raw_times), np.int64, count)
        return times, np.ones(count, np.bool_)

    moments = [parsed.get(raw) if type(raw) is str else None for raw in raw_times]
    readable = np.fromiter((m is not None for m in moments), np.bool_, count)
    return np.fromiter((m or 0 for m in moments), np.int64, count), readable


def _wire_time_or_none(text: str) -> int | None:
    """The time ``text`` names, or ``None``: the caller raises its own error, apart
    from the parser's, which quotes the whole text."""
    try:
        return parse_wire(text)
    except (ValueError, OverflowError):
        return None


def _unreadable_time(
    raw: Any, position: int, body: bytes, url: str
) -> MalformedResponseError:
    return malformed(f"{_TIME_EXPECTED}, got {_what_time(raw, position)}", body, url)


def _what_time(raw: Any, position: int) -> str:
    """A timestamp that is no time, and where: its text cut short, or its kind."""
    shown = repr(raw[:40]) if isinstance(raw, str) else json_kind(raw)
    return f"{shown} at position {position}"


# Selection ----------------------------------------------------------------------------


class _Selection(NamedTuple):
    keep: BoolArray
    unrequested: int
    out_of_range: int
    off_grid: int
    duplicates: int


def _select(codes: Int64Array, times_us: Int64Array, block: Block) -> _Selection:
    """Which points to keep; each dropped point is counted for its first reason."""
    requested = codes >= 0

    # Both ends count: a window may be labelled by its start or by its stop.
    in_range = requested & (times_us >= block.start_us) & (times_us <= block.end_us)
    labels = _labels_a_window(times_us, block)
    if labels is None:
        labels = _one_per_window(codes, times_us, in_range, block)
    candidates = in_range & labels
    keep = _first_occurrences(codes, times_us, candidates, block)

    requested_count = int(requested.sum())
    in_range_count = int(in_range.sum())
    candidate_count = int(candidates.sum())
    return _Selection(
        keep=keep,
        unrequested=len(codes) - requested_count,
        out_of_range=requested_count - in_range_count,
        off_grid=in_range_count - candidate_count,
        duplicates=candidate_count - int(keep.sum()),
    )


def _labels_a_window(times_us: Int64Array, block: Block) -> BoolArray | None:
    """Whether each time may label a window: windows are aligned to the epoch (the
    API's Flux semantics, inferred), and a query not aligned to them (``query()``
    sends one as given) has partial windows at its ends, labelled by the range's own
    edges. A stray point at any other time would be a second point of some window.

    An answer most of whose points lie off that grid is not strays but a server that
    labels otherwise (with an offset, or by the times of raw samples): ``None`` then,
    with a warning, and :func:`_one_per_window` keeps its points as labelled, one
    per window of each signal, rather than dropping them wholesale.
    """
    if block.window_us > _INT64_MAX:
        return np.ones(len(times_us), np.bool_)  # longer than any time: edges only

    on_grid: BoolArray = times_us % block.window_us == 0
    if on_grid.all():
        return on_grid  # as in every answer of a well-behaved server

    edges: BoolArray = (times_us == block.start_us) | (times_us == block.end_us)
    labels: BoolArray = on_grid | edges
    if 2 * int(labels.sum()) >= len(labels):
        return labels

    _warn_once(
        "%s: most points of an answer are off the grid of windows aligned to the "
        "epoch; the server labels windows otherwise, and its points are kept as "
        "labelled, the first of each signal in each window",
        block.describe(),
    )
    return None


def _one_per_window(
    codes: Int64Array, times_us: Int64Array, among: BoolArray, block: Block
) -> BoolArray:
    """Of the points ``among``, one of each signal in each window, so that an answer
    never holds two points of one window of a signal, however the server labels
    them. Windows are cut at the offset most times share (the epoch's grid where
    none has more): an offset grid keeps all its labels. Of the points of one
    window, the first at that offset is kept, else the first: a server sending raw
    samples around its labels keeps the labels."""
    positions = np.flatnonzero(among)
    times = times_us[positions]
    offsets = times % block.window_us
    phases, counts = np.unique(offsets, return_counts=True)
    phase = phases[np.argmax(counts)] if len(phases) else 0
    first_on_phase = np.argsort(offsets != phase, kind="stable")
    positions, times = positions[first_on_phase], times[first_on_phase]
    windows = (times - phase) // block.window_us

    # Ranked as in _first_occurrences, so that the combined key cannot overflow.
    distinct_windows, window_ranks = np.unique(windows, return_inverse=True)
    keys = codes[positions] * len(distinct_windows) + window_ranks
    _, first_positions = np.unique(keys, return_index=True)
    keep = np.zeros(len(times_us), np.bool_)
    keep[positions[first_positions]] = True
    return keep


def _first_occurrences(
    index_codes: Int64Array, times_us: Int64Array, candidates: BoolArray, block: Block
) -> BoolArray:
    """``candidates`` without the repeats of an (index, timestamp) seen before."""
    every_point = candidates.all()  # then the columns need no copy
    codes = index_codes if every_point else index_codes[candidates]
    times = times_us if every_point else times_us[candidates]
    if _signal_by_signal(codes, times) or _window_by_window(
        codes, times - block.start_us, block
    ):
        return candidates  # nothing can repeat, as in almost every answer

    # Ranking the distinct times keeps the combined key small, so it cannot overflow
    # whatever the span of the block.
    distinct_times, time_ranks = np.unique(times, return_inverse=True)
    keys = codes * len(distinct_times) + time_ranks
    _, first_positions = np.unique(keys, return_index=True)
    keep = np.zeros_like(candidates)
    keep[np.flatnonzero(candidates)[first_positions]] = True
    return keep


def _signal_by_signal(codes: Int64Array, times_us: Int64Array) -> bool:
    """Whether each signal's points come in one stretch, each after the one before:
    then no pair of signal and time can repeat, and one pass over the points shows
    it, where finding repeats in any order takes a sort."""
    if len(codes) < 2:
        return True

    same_signal = codes[1:] == codes[:-1]
    if not ((times_us[1:] > times_us[:-1]) | ~same_signal).all():
        return False

    last_of_stretch = np.append(~same_signal, True)
    stretch_codes = codes[last_of_stretch]
    return len(np.unique(stretch_codes)) == len(stretch_codes)


def _window_by_window(codes: Int64Array, offsets_us: Int64Array, block: Block) -> bool:
    """Whether the points come window by window, each pair of time and signal after
    the one before (in the order of the block's indexes)."""
    span_us = block.end_us - block.start_us + 1
    signals = len(block.indexes)
    if span_us * signals >= _TWO_TO_62:
        return False  # the keys below could overflow

    by_window = offsets_us * signals + codes
    return bool((np.diff(by_window) > 0).all())


# Output -------------------------------------------------------------------------------


def _batch(
    block: Block, codes: Int64Array, times_us: Int64Array, columns: ValueColumns
) -> pa.RecordBatch:
    count = len(codes)
    return pa.RecordBatch.from_arrays(
        [
            pa.array(np.full(count, block.database_id, np.int64)),
            pa.array(block.indexes, type=pa.string()).take(codes),
            _repeated_text(block.aggregation, count),
            pa.array(times_us, type=_TIMESTAMP_US),
            *columns,
        ],
        schema=POINT_SCHEMA,
    )


def _repeated_text(text: str, count: int) -> pa.Array:
    """``text`` on ``count`` rows, built from its bytes at once (``pa.repeat`` takes
    ten times as long)."""
    encoded = text.encode()
    offsets = np.arange(count + 1, dtype=np.int32) * np.int32(len(encoded))
    return pa.StringArray.from_buffers(
        count, pa.py_buffer(offsets), pa.py_buffer(encoded * count)
    )


def _may_hold_rounded_integers(batch: pa.RecordBatch) -> bool:
    """Whether a value may be an integer beyond 64 bits that orjson rounded: a finite
    float of magnitude 2**63 or more, or the least int64, which is what an int
    signal's integer just below it becomes once rounded to a float."""
    floats = batch.column("value_float")
    ints = batch.column("value_int")
    if pc.any(pc.equal(ints, _INT64_MIN)).as_py():
        return True

    if floats.null_count == len(floats):
        return False

    numbers = np.abs(floats.to_numpy(zero_copy_only=False))
    return bool((np.isfinite(numbers) & (numbers >= _TWO_TO_63)).any())
