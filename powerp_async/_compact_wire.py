"""Read an answer of the usual compact shape straight into columns.

Servers send an answer as one line of JSON, each point's keys in the order the API
documents and nothing between the tokens::

    [{"index":"101","value":0.5,"timestamp":"2026-12-04T10:00:00Z"},...]

In such a body the commas alone give the structure: one after each index, one after
each value and one between points, as long as no text holds a comma. So the commas
are found in one pass, every other byte is checked against that shape with numpy,
and Arrow parses the value and timestamp texts from the bytes: no Python object is
made per point, which is what a JSON parser costs most. Each byte lies either in a
fixed piece (``{"index":"``, ``","value":``...) that is compared, or in a text that
is judged whole: an index must be one of the block's, a value a JSON number or
``null``, and a timestamp is left to Arrow's parser, which reads no quote, comma or
backslash. A body that passes is therefore exactly such a line of JSON, and reads as
any JSON parser reads it.

Pieces and texts are compared as rows of 64-bit words read at each point's position,
a few whole-array steps for all points together.

This reader serves blocks of float signals only (``_values.float_signals_only``), and
only bodies holding no backslash, so that no text holds an escape. Anything else
returns ``None`` and the general readers of ``_wire`` take the body: spaces or line
breaks between tokens, another order of keys, extra keys, a value of another kind,
an index not asked for, a number that a float64 does not hold exactly. They give
the same columns, only later.
"""

from __future__ import annotations

from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["CompactColumns", "read_compact"]

_FIRST_POINT: Final = b'[{"index":"'
_VALUE_KEY: Final = b'","value":'
_TIMESTAMP_KEY: Final = b',"timestamp":"'
_BETWEEN_POINTS: Final = b'"},{"index":"'
_LAST_POINT_END: Final = b'"}]'
_INDEX_KEY_LENGTH: Final = len(b'{"index":"')
_NULL: Final = b"null"
_TWO_TO_53: Final = 2.0**53
_LARGEST_BODY: Final = 2**31 - 1
"""Bytes of the longest body read here: Arrow's strings count theirs in 32 bits."""
_WORD: Final = 8
_LONGEST_TEXT_ROW: Final = 64
"""Bytes of the longest timestamp compared as a row; longer ones are all parsed."""
_BYTE_MASKS: Final = np.array(
    [(1 << 8 * length) - 1 for length in range(_WORD + 1)], np.uint64
)
"""For each length up to a word, the mask that keeps that many bytes of a word."""
_HIGH_BYTE_MASKS: Final = ~np.array(
    [(1 << 8 * (_WORD - length)) - 1 for length in range(_WORD + 1)], np.uint64
)
"""For each length up to a word, the mask that keeps that many last bytes."""
_FORBIDDEN_IN_INDEX: Final = frozenset(b'",\\') | frozenset(range(0x20))
"""Bytes that an index's JSON text would escape, or that would be taken for a
separator: a block asking for such an index is read by the general readers."""

BoolArray = npt.NDArray[np.bool_]
ByteArray = npt.NDArray[np.uint8]
Int64Array = npt.NDArray[np.int64]
PositionArray = npt.NDArray[np.intp]
WordArray = npt.NDArray[np.uint64]


class CompactColumns(NamedTuple):
    """The points of a compact answer, in the order sent."""

    codes: Int64Array
    """Each point's signal, as the position of its index among the block's."""
    time_texts: pa.StringArray
    """The distinct timestamp texts worth parsing."""
    time_positions: PositionArray
    """Each point's timestamp, as a position in ``time_texts``."""
    floats: pa.Array
    """Each point's value as a float64, null where the server sent ``null``."""


class _Layout(NamedTuple):
    """Where each point's texts lie in the body: ``[start, end)`` of each."""

    index_starts: PositionArray
    index_ends: PositionArray
    value_starts: PositionArray
    value_ends: PositionArray
    time_starts: PositionArray
    time_ends: PositionArray


def read_compact(body: bytes, indexes: tuple[str, ...]) -> CompactColumns | None:
    """The columns of ``body``, an answer to a query of ``indexes`` whose values are
    all floats; ``None`` when the body is not of the compact shape, or holds a point
    this reader does not take (see the module's docstring)."""
    body = body.rstrip()
    if len(body) > _LARGEST_BODY or b"\\" in body or not _indexes_readable(indexes):
        return None

    raw = np.frombuffer(body, np.uint8)
    layout = _layout(body, raw)
    if layout is None:
        return None

    codes = _index_codes(raw, layout, indexes)
    floats = _floats(raw, layout.value_starts, layout.value_ends)
    if codes is None or floats is None:
        return None

    time_texts, time_positions = _time_texts(raw, layout, codes)
    return CompactColumns(codes, time_texts, time_positions, floats)


def _indexes_readable(indexes: tuple[str, ...]) -> bool:
    """Whether every index asked for is sent as its own bytes, and holds no comma."""
    return all(not _FORBIDDEN_IN_INDEX & set(index.encode()) for index in indexes)


# The shape ----------------------------------------------------------------------------


def _layout(body: bytes, raw: ByteArray) -> _Layout | None:
    """The texts of each point, once every byte outside them is checked; ``None``
    for a body of any other shape."""
    if not body.startswith(_FIRST_POINT) or not body.endswith(_LAST_POINT_END):
        return None

    # Three commas a point, the last point's third being the closing bracket.
    commas = np.append(np.flatnonzero(raw == ord(",")), len(raw) - 1)
    if len(commas) % 3:
        return None

    after_index, after_value, after_point = commas.reshape(-1, 3).T
    layout = _Layout(
        index_starts=np.append(1, after_point[:-1] + 1) + _INDEX_KEY_LENGTH,
        index_ends=after_index - 1,
        value_starts=after_index - 1 + len(_VALUE_KEY),
        value_ends=after_value,
        time_starts=after_value + len(_TIMESTAMP_KEY),
        time_ends=after_point - 2,
    )
    if not _in_order(layout):
        return None

    return layout if _pieces_hold(raw, layout) else None


def _in_order(layout: _Layout) -> bool:
    """Whether every text has a place of its own, ahead of the next: only then do
    the fixed pieces around them not overlap."""
    return bool(
        (layout.index_ends >= layout.index_starts).all()
        and (layout.value_ends > layout.value_starts).all()
        and (layout.time_ends > layout.time_starts).all()
    )


def _pieces_hold(raw: ByteArray, layout: _Layout) -> bool:
    """Whether each fixed piece of JSON is where the layout puts it; the first
    point's start and the last one's end are checked by the caller."""
    return (
        _piece_at(raw, layout.index_ends, _VALUE_KEY)
        and _piece_at(raw, layout.value_ends, _TIMESTAMP_KEY)
        and _piece_at(raw, layout.time_ends[:-1], _BETWEEN_POINTS)
    )


def _piece_at(raw: ByteArray, positions: PositionArray, piece: bytes) -> bool:
    """Whether ``piece`` starts at each of ``positions``."""
    rows = _rows(raw, positions, len(piece))
    return bool(_rows_match(rows, _words_of(piece), _mask_of(len(piece))).all())


def _rows(raw: ByteArray, starts: PositionArray, length: int) -> WordArray:
    """The ``length`` bytes from each of ``starts``, and as many after as fill the
    last 64-bit word, as one row of words each. Every row must lie in the body."""
    width = _width(length)
    every_row = np.ndarray(
        (len(raw) - width + 1,), np.dtype(f"V{width}"), raw.data, strides=(1,)
    )
    rows: WordArray = every_row[starts].view("<u8").reshape(-1, width // _WORD)
    return rows


def _rows_match(rows: WordArray, expected: WordArray, mask: WordArray) -> BoolArray:
    """Whether each row, masked, is ``expected``; column by column, which numpy
    does many times faster than whole rows."""
    match = np.ones(len(rows), np.bool_)
    for column, (word, kept) in enumerate(zip(expected, mask, strict=True)):
        match &= (rows[:, column] & kept) == word

    return match


def _width(length: int) -> int:
    return -(-length // _WORD) * _WORD


def _words_of(text: bytes) -> WordArray:
    """``text`` as a row of little-endian words, zeros after its end."""
    return np.frombuffer(text.ljust(_width(len(text)), b"\0"), np.dtype("<u8"))


def _mask_of(length: int, *, skipped: int = 0) -> WordArray:
    """The row of words that keeps ``length`` bytes of a row, after ``skipped``."""
    return _words_of(b"\0" * skipped + b"\xff" * length)


# Texts --------------------------------------------------------------------------------


def _gather(
    raw: ByteArray, starts: PositionArray, ends: PositionArray
) -> tuple[ByteArray, Int64Array]:
    """The texts ``[start, end)`` of the body side by side, and where each begins
    among them (one offset more, the end of the last)."""
    lengths = ends - starts
    offsets = np.zeros(len(starts) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1])
    return raw[positions], offsets


def _strings(gathered: ByteArray, offsets: Int64Array) -> pa.StringArray:
    """Texts gathered side by side, as an Arrow array; their bytes are known to be
    UTF-8 where they are compared or parsed, never before."""
    return pa.StringArray.from_buffers(
        len(offsets) - 1,
        pa.py_buffer(offsets.astype(np.int32)),
        pa.py_buffer(gathered),
    )


def _index_codes(
    raw: ByteArray, layout: _Layout, indexes: tuple[str, ...]
) -> Int64Array | None:
    """Each point's position among ``indexes``, its first as ``index_in`` finds;
    ``None`` if a point names any other."""
    if max(len(index.encode()) for index in indexes) > _WORD:
        return _index_codes_by_text(raw, layout, indexes)

    lengths = layout.index_ends - layout.index_starts
    if (lengths > _WORD).any():
        return None

    # An index of a word or less is known by its bytes and its length.
    words = _rows(raw, layout.index_starts, _WORD)[:, 0] & _BYTE_MASKS[lengths]
    keys, key_lengths, positions = _index_keys(indexes)
    found = np.minimum(np.searchsorted(keys, words), len(keys) - 1)
    if not ((keys[found] == words) & (key_lengths[found] == lengths)).all():
        return None

    codes: Int64Array = positions[found]
    return codes


def _index_codes_by_text(
    raw: ByteArray, layout: _Layout, indexes: tuple[str, ...]
) -> Int64Array | None:
    """The same, for indexes longer than a word: by Arrow's lookup of the texts."""
    texts = _strings(*_gather(raw, layout.index_starts, layout.index_ends))
    found = pc.index_in(texts, value_set=pa.array(indexes, pa.string()))
    if found.null_count:
        return None

    codes: Int64Array = found.to_numpy().astype(np.int64)
    return codes


def _index_keys(indexes: tuple[str, ...]) -> tuple[WordArray, Int64Array, Int64Array]:
    """The distinct indexes, each of a word or less, as words in order, with the
    length of each and its first position among ``indexes``."""
    first: dict[bytes, int] = {}
    for position, index in enumerate(indexes):
        first.setdefault(index.encode(), position)

    # A text's bytes read as one little-endian word, zeros after its end.
    by_key = sorted(first, key=lambda text: int.from_bytes(text, "little"))
    keys = np.array([int.from_bytes(text, "little") for text in by_key], np.uint64)
    lengths = np.array([len(text) for text in by_key], np.int64)
    positions = np.array([first[text] for text in by_key], np.int64)
    return keys, lengths, positions


# Values -------------------------------------------------------------------------------


def _floats(
    raw: ByteArray, starts: PositionArray, ends: PositionArray
) -> pa.Array | None:
    """Each value as a float64, null for ``null``; ``None`` if one is anything
    else, or a number that a float64 does not hold exactly."""
    nulls = _nulls(raw, starts, ends)
    numbers = ~nulls
    gathered, offsets = _gather(raw, starts[numbers], ends[numbers])
    if not _json_numbers(gathered, offsets):
        return None

    try:
        parsed = _strings(gathered, offsets).cast(pa.float64()).to_numpy()
    except pa.ArrowInvalid:
        return None

    # The token -0 is an integer zero, which has no sign (as _values places it).
    minus_zero = _minus_zero(gathered, offsets)
    if minus_zero.any():
        parsed = np.where(minus_zero, 0.0, parsed)

    # Overflow reads as an infinity, and NaN as no number; from 2**53 on, an
    # integer may have been rounded, which the general readers see and this one
    # cannot.
    if not (np.abs(parsed) < _TWO_TO_53).all():
        return None

    if not nulls.any():
        return pa.array(parsed)

    values = np.zeros(len(starts), np.float64)
    values[numbers] = parsed
    return pa.array(values, mask=nulls)


def _nulls(raw: ByteArray, starts: PositionArray, ends: PositionArray) -> BoolArray:
    """Which values are the token ``null``."""
    nulls: BoolArray = (ends - starts == len(_NULL)) & (raw[starts] == _NULL[0])
    for offset, byte in enumerate(_NULL[1:], start=1):
        if not nulls.any():
            break

        nulls &= raw[np.where(nulls, starts + offset, 0)] == byte

    return nulls


def _json_numbers(gathered: ByteArray, offsets: Int64Array) -> bool:
    """Whether each text is a JSON number, for the texts Arrow's parser reads.

    Made of other bytes than digits, signs, points and exponents, Arrow reads only
    the spellings of NaN and the infinities, which the caller refuses. What else it
    reads beyond JSON's numbers is refused here: a leading ``+``, a point without a
    digit of its own number on either side (``1.``, ``.5``, ``-.5``), and an integer
    part with a leading zero (``01``).
    """
    starts, ends = offsets[:-1], offsets[1:]
    if not len(starts):
        return True

    # Every text holds a byte at least: the layout sees to it.
    if (gathered[starts] == ord("+")).any():
        return False

    digits = _digits(gathered)
    return _points_between_digits(gathered, starts, digits) and _no_leading_zero(
        gathered, starts, ends, digits
    )


def _digits(texts: ByteArray) -> BoolArray:
    """Which bytes are ASCII digits."""
    digits: BoolArray = (texts - np.uint8(ord("0"))) < 10
    return digits


def _points_between_digits(
    gathered: ByteArray, starts: Int64Array, digits: BoolArray
) -> bool:
    """Whether each decimal point has a digit of its own number on either side."""
    points = gathered == ord(".")
    if points[0] or points[-1]:
        return False

    first_bytes = np.zeros(len(gathered) + 1, np.bool_)
    first_bytes[starts] = True
    inner = points[1:-1]
    between_digits = digits[:-2] & digits[2:] & ~first_bytes[1:-2] & ~first_bytes[2:-1]
    return not (inner & ~between_digits).any()


def _no_leading_zero(
    gathered: ByteArray, starts: Int64Array, ends: Int64Array, digits: BoolArray
) -> bool:
    """Whether no integer part starts with a zero followed by another digit."""
    first_digits = starts + (gathered[starts] == ord("-"))
    longer = first_digits + 1 < ends
    zeros = longer & (gathered[np.where(longer, first_digits, 0)] == ord("0"))
    return not (zeros & digits[np.where(zeros, first_digits + 1, 0)]).any()


def _minus_zero(gathered: ByteArray, offsets: Int64Array) -> BoolArray:
    """Which texts are the integer token ``-0``."""
    starts = offsets[:-1]
    two_long = offsets[1:] - starts == 2
    minus = two_long & (gathered[starts] == ord("-"))
    zeros = gathered[np.where(minus, starts + 1, 0)] == ord("0")
    minus_zero: BoolArray = minus & zeros
    return minus_zero


# Timestamps ---------------------------------------------------------------------------


def _time_texts(
    raw: ByteArray, layout: _Layout, codes: Int64Array
) -> tuple[pa.StringArray, PositionArray]:
    """The timestamp texts worth parsing, and where each point's text is among them.

    A server sends every signal of a block over the same windows: one signal after
    the other, each run of one signal repeating the texts of the longest run or
    their beginning; or window after window, each text repeating the one before.
    So each point's text is compared, as a row of words, with the one at its place
    in the longest run and with the one before it, and only the texts that are
    neither are parsed apart.
    """
    starts, ends = layout.time_starts, layout.time_ends
    texts = _TimeTexts.of(raw, starts, ends)
    if texts is None:
        every_text = _strings(*_gather(raw, starts, ends))
        return every_text, np.arange(len(starts), dtype=np.intp)

    template, in_run = _longest_run(codes)
    as_template = texts.same_as(template[in_run])
    if as_template.all():  # as in answers sent signal after signal
        parsed = _strings(*_gather(raw, starts[template], ends[template]))
        return parsed, in_run.astype(np.intp, copy=False)

    # A point that repeats the text before it takes that text's place; the
    # others take their place in the longest run, or a place of their own.
    as_previous = texts.same_as_previous()
    own = ~as_template & ~as_previous
    places = np.where(as_template, in_run, len(template) + np.cumsum(own) - 1)
    anchors = np.flatnonzero(~as_previous | as_template)
    anchor_of = np.repeat(anchors, np.diff(anchors, append=len(codes)))
    worth = np.concatenate([template, np.flatnonzero(own)])
    parsed = _strings(*_gather(raw, starts[worth], ends[worth]))
    return parsed, places[anchor_of].astype(np.intp, copy=False)


def _longest_run(codes: Int64Array) -> tuple[Int64Array, Int64Array]:
    """The points of the longest run of one signal, and each point's place in its
    own run."""
    run_starts = np.flatnonzero(np.diff(codes, prepend=-1))
    run_lengths = np.diff(run_starts, append=len(codes))
    longest = int(np.argmax(run_lengths))
    template = run_starts[longest] + np.arange(run_lengths[longest])
    in_run = np.arange(len(codes)) - np.repeat(run_starts, run_lengths)
    return template, in_run


class _TimeTexts(NamedTuple):
    """The timestamp texts as rows of words, each text at the end of its row and
    the bytes before it masked, so that two texts are the same when their lengths
    and their words are."""

    lengths: Int64Array
    columns: list[WordArray]

    @classmethod
    def of(
        cls, raw: ByteArray, starts: PositionArray, ends: PositionArray
    ) -> _TimeTexts | None:
        """The rows, ending where the texts do, since the last text lies too near
        the body's end for a row to start there; ``None`` for texts longer than a
        row, or a row that would start before the body."""
        lengths = ends - starts
        width = _width(int(lengths.max()))
        if width > _LONGEST_TEXT_ROW or ends[0] < width:
            return None

        rows = _rows(raw, ends - width, width)
        skipped = width - lengths
        if (skipped == skipped[0]).all():
            skipped = skipped[:1]  # one mask fits every row

        columns = []
        for column in range(width // _WORD):
            kept = np.clip(_WORD * (column + 1) - skipped, 0, _WORD)
            masks = _HIGH_BYTE_MASKS[kept]
            columns.append(rows[:, column] & (masks if len(masks) > 1 else masks[0]))

        return cls(lengths, columns)

    def same_as(self, others: Int64Array) -> BoolArray:
        """Whether each point's text is the one of the point at its place in
        ``others``."""
        same: BoolArray = self.lengths == self.lengths[others]
        for words in self.columns:
            same &= words == words[others]

        return same

    def same_as_previous(self) -> BoolArray:
        """Whether each point's text is the one of the point before it."""
        same = np.zeros(len(self.lengths), np.bool_)
        same[1:] = self.lengths[1:] == self.lengths[:-1]
        for words in self.columns:
            same[1:] &= words[1:] == words[:-1]

        return same
