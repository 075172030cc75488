"""Put the values of decoded points into the value columns of ``POINT_SCHEMA``.

Values of one JSON type are converted at once; a block that mixes types (a float
signal sending ``"NaN"`` as a string among its numbers, a flag next to a measurement)
is split by type, each part converted at once and the rows put back in order. Only
values no column holds as they are, integers beyond 64 bits and nested arrays or
objects, go down the per-point path, which states the rules in their plainest form
and gives the same columns, only later: those values alone while they are few, the
whole block when they are more than a quarter of it.

Where a value goes (``POINT_SCHEMA`` keeps one column per type, so nothing is
converted behind the caller's back):

- a number follows the signal's declared type, since JSON writers disagree on whether
  ``5.0`` prints as ``5``, whenever that type's column holds it exactly: a float
  signal's integer goes to ``value_float`` when a float64 holds it exactly (every
  float64 a server prints does); an int signal's float goes to ``value_int`` when it
  is whole, below 2**53 in magnitude and no ``-0.0``: a float64 holds every integer
  below 2**53, so none of those was rounded on its way from the text, while a float
  beyond may be another integer than the one sent (``12345678901234567.0`` reads as
  ...68). A number the declared column cannot hold
  exactly is never changed to fit: it stays in the column that holds it as sent (an
  integer a float64 would round, such as 2**53 + 1, in ``value_int``; an int
  signal's 5.5, 1e17 or ``-0.0`` in ``value_float``), so a value outside its
  declared column is a value that column would have changed. The aggregation
  ``count`` makes every signal an int signal, and ``mean`` and ``median`` make a
  numeric signal a float signal. Without a declared type an integer is
  an integer and a float is a float. The JSON token ``-0`` is an integer zero, which
  has no sign: a float signal gets ``0.0`` for it;
- a boolean goes to ``value_bool`` and a string to ``value_text``, whatever the
  declared type, except the spellings of NaN and the infinities on float signals
  (``"NaN"``, ``"Infinity"``, ``"-inf"`` and the like, in any ASCII case);
- an integer beyond 64 bits keeps its exact digits in ``value_text``;
- a nested array or object, which the API is not known to send, is kept as its
  compact JSON text in ``value_text`` rather than failing the whole block.

Known shortcoming: that text is the nested value written again as read, not the
bytes sent: spaces go, a repeated key keeps its last value, and numbers are spelled
as Python spells them (``1E5`` as ``100000.0``, ``-0`` as ``0``, ``1e400`` as
``Infinity``), integers beyond 64 bits in it read as floats where orjson read the
answer (rounded to 17 digits).
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import math
from collections.abc import Mapping
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from .models import Block, DataType

__all__ = [
    "ValueColumns",
    "float_columns",
    "float_signals_only",
    "numeric_kinds",
    "value_columns",
]

# The decoder's logger: choosing the per-point path is a step of decoding a block.
_LOGGER: Final = logging.getLogger("powerp_async.decode")

_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
_TWO_TO_63: Final = 2.0**63
_TWO_TO_53: Final = 2.0**53

_SPECIAL_FLOATS: Final[dict[str, float]] = {
    **dict.fromkeys(["nan", "+nan", "-nan"], math.nan),
    **dict.fromkeys(["inf", "+inf", "infinity", "+infinity"], math.inf),
    **dict.fromkeys(["-inf", "-infinity"], -math.inf),
}
"""Float spellings some servers send as strings, since JSON has no token for them."""
_SPECIAL_NUMBERS: Final = np.array(list(_SPECIAL_FLOATS.values()), np.float64)


@functools.cache
def _special_spellings() -> pa.Array:
    # Built on first use rather than on import: pyarrow imports pandas, when it is
    # installed, as it builds its first array, half a second that a process which never
    # decodes (the simulator, a command refused for its options) need not pay.
    return pa.array(list(_SPECIAL_FLOATS), type=pa.string())


_NONE_TYPE: Final = type(None)
_NESTED_TYPES: Final = (list, dict)
_MOST_ODD_SHARE: Final = 0.25
"""Up to this share of odd values, the others are still placed by whole columns."""
_KIND_CODES: Final[dict[type, int]] = {float: 0, int: 1, bool: 2, str: 3, _NONE_TYPE: 4}

# Column numbers of _place, in the order of the value columns of POINT_SCHEMA.
_FLOAT, _INT, _BOOL, _TEXT = range(4)
_NULL: Final = -1

BoolArray = npt.NDArray[np.bool_]


AVERAGES: Final = frozenset({"mean", "median"})
"""Aggregations whose value is a float whenever the signal is numeric: the mean of 1
and 2 is 1.5, and a mean that happens to be whole is no integer either."""


def result_type(aggregation: str, declared: DataType | None) -> DataType | None:
    """The type of an aggregate of a signal of the ``declared`` type: a count is an
    integer whatever it counts, an average of numbers a float, any other aggregate
    (first, last, min, max, sum) of the signal's own type."""
    kind = aggregation.lower()
    if kind == "count":
        return DataType.INT

    if kind in AVERAGES and declared in (DataType.INT, DataType.FLOAT):
        return DataType.FLOAT

    return declared


def float_signals_only(block: Block, data_types: Mapping[str, DataType | None]) -> bool:
    """Whether every value of ``block`` is of a float type, so that its numbers all
    go to ``value_float`` when a float64 holds them exactly."""
    return all(
        result_type(block.aggregation, data_types.get(index)) is DataType.FLOAT
        for index in block.indexes
    )


def numeric_kinds(
    codes: npt.NDArray[np.int64],
    block: Block,
    data_types: Mapping[str, DataType | None],
) -> tuple[BoolArray, BoolArray]:
    """Per point, given as the position of its signal among ``block.indexes``: is its
    value of an int type, and is it of a float type (``result_type``)."""
    kinds = [
        result_type(block.aggregation, data_types.get(index)) for index in block.indexes
    ]
    is_int = np.array([kind is DataType.INT for kind in kinds], np.bool_)
    is_float = np.array([kind is DataType.FLOAT for kind in kinds], np.bool_)
    return is_int[codes], is_float[codes]


# Columns ------------------------------------------------------------------------------


class ValueColumns(NamedTuple):
    """The value columns of ``POINT_SCHEMA`` in its order, one row per point."""

    floats: pa.Array
    ints: pa.Array
    bools: pa.Array
    texts: pa.Array


def float_columns(floats: pa.Array) -> ValueColumns:
    """The columns of values of float signals, each a JSON number or null, as
    float64."""
    return _columns(len(floats), floats=floats)


def value_columns(
    values: list[Any], is_int: BoolArray, is_float: BoolArray, *, url: str
) -> ValueColumns:
    """The columns ``values`` go to; ``url`` names the answer in the log."""
    columns = _columns_quickly(values, is_int, is_float)
    if columns is not None:
        return columns

    odd = _odd_positions(values)
    if len(odd) <= len(values) * _MOST_ODD_SHARE:
        columns = _columns_patched(values, odd, is_int, is_float)
        if columns is not None:
            _LOGGER.debug("%d values of %s are placed one at a time", len(odd), url)
            return columns

    _LOGGER.debug("values of %s need the per-point path", url)
    return _columns_slowly(values, is_int, is_float)


def _odd_positions(values: list[Any]) -> list[int]:
    """Where the values are that no whole-column step takes: integers beyond 64 bits
    and nested arrays or objects."""
    return [
        position
        for position, value in enumerate(values)
        if type(value) in _NESTED_TYPES
        or (type(value) is int and not _INT64_MIN <= value <= _INT64_MAX)
    ]


def _columns_patched(
    values: list[Any], odd: list[int], is_int: BoolArray, is_float: BoolArray
) -> ValueColumns | None:
    """The columns of all but the odd values by whole columns, the odd ones placed
    one at a time and put in."""
    others = list(values)
    for position in odd:
        others[position] = None

    columns = _columns_quickly(others, is_int, is_float)
    if columns is None:
        return None

    placed = [
        _place(values[p], int_signal=bool(is_int[p]), float_signal=bool(is_float[p]))
        for p in odd
    ]
    return ValueColumns(
        *(_put_in(columns[number], number, odd, placed) for number in range(4))
    )


def _put_in(
    column: pa.Array, number: int, odd: list[int], placed: list[tuple[int, Any]]
) -> pa.Array:
    """``column`` with the odd values placed in it (column ``number``) put in."""
    chosen = [
        (p, value) for p, (to, value) in zip(odd, placed, strict=True) if to == number
    ]
    if not chosen:
        return column

    mask = np.zeros(len(column), np.bool_)
    mask[[position for position, _ in chosen]] = True
    replacements = pa.array([value for _, value in chosen], type=column.type)
    return pc.replace_with_mask(column, pa.array(mask), replacements)


def _columns_quickly(
    values: list[Any], is_int: BoolArray, is_float: BoolArray
) -> ValueColumns | None:
    """The columns by whole-column steps; ``None`` where only the per-point path can."""
    kinds = set(map(type, values))
    if len(kinds - {_NONE_TYPE}) <= 1:
        kind = next(iter(kinds - {_NONE_TYPE}), _NONE_TYPE)
        return _group_columns(kind, values, is_int, is_float)

    if kinds == {int, float} and (is_int | is_float).all():
        # Writers that print 5.0 as 5 mix the two; where the declared type decides
        # the column, the token's own type does not matter.
        columns = _numbers_quickly(values, is_int)
        if columns is not None:
            return columns

    return _columns_by_kind(values, kinds, is_int, is_float)


def _columns_by_kind(
    values: list[Any], kinds: set[type], is_int: BoolArray, is_float: BoolArray
) -> ValueColumns | None:
    """Decode each JSON type apart, then put the rows back in their order."""
    if not kinds <= _KIND_CODES.keys():
        return None

    codes = np.fromiter(map(_KIND_CODES.__getitem__, map(type, values)), np.int8)
    parts: list[tuple[npt.NDArray[np.intp], ValueColumns]] = []
    for kind in kinds:
        chosen = codes == _KIND_CODES[kind]
        group = list(itertools.compress(values, chosen))
        columns = _group_columns(kind, group, is_int[chosen], is_float[chosen])
        if columns is None:
            return None

        parts.append((np.flatnonzero(chosen), columns))

    return _interleave(parts, len(values))


def _group_columns(
    kind: type, values: list[Any], is_int: BoolArray, is_float: BoolArray
) -> ValueColumns | None:
    """The columns of values of one JSON type (and nulls)."""
    if kind is float:
        return _floats_quickly(pa.array(values, type=pa.float64()), is_int)

    if kind is int:
        return _ints_quickly(values, is_float)

    if kind is bool:
        return _columns(len(values), bools=pa.array(values, type=pa.bool_()))

    if kind is str:
        return _texts_quickly(pa.array(values, type=pa.string()), is_float)

    if kind is _NONE_TYPE:
        return _columns(len(values))

    return None  # nested arrays and objects


def _interleave(
    parts: list[tuple[npt.NDArray[np.intp], ValueColumns]], count: int
) -> ValueColumns:
    """Columns of the whole block from the columns of its groups and their positions."""
    order = np.concatenate([positions for positions, _ in parts])
    source_row = np.empty(count, np.int64)
    source_row[order] = np.arange(count)
    take = pa.array(source_row)
    return ValueColumns(
        *(
            pa.concat_arrays([columns[field] for _, columns in parts]).take(take)
            for field in range(4)
        )
    )


def _floats_quickly(floats: pa.Array, is_int: BoolArray) -> ValueColumns:
    if not is_int.any():
        return _columns(len(floats), floats=floats)

    valid = floats.is_valid().to_numpy(zero_copy_only=False)
    numbers = floats.to_numpy(zero_copy_only=False)
    whole = is_int & valid & np.isfinite(numbers) & (np.trunc(numbers) == numbers)
    whole &= np.abs(numbers) < _TWO_TO_53
    whole &= ~((numbers == 0) & np.signbit(numbers))  # -0.0: no integer holds its sign
    return _columns(
        len(floats),
        floats=pa.array(numbers, mask=~(valid & ~whole)),
        ints=pa.array(np.where(whole, numbers, 0).astype(np.int64), mask=~whole),
    )


def _numbers_quickly(values: list[Any], is_int: BoolArray) -> ValueColumns | None:
    try:
        floats = pa.array(values, type=pa.float64())
    except pa.ArrowInvalid:
        return None  # an integer that a float64 cannot hold exactly

    return _floats_quickly(floats, is_int)


def _ints_quickly(values: list[Any], is_float: BoolArray) -> ValueColumns | None:
    try:
        ints = pa.array(values, type=pa.int64())
    except OverflowError:
        return None  # beyond 64 bits: the slow path keeps the digits as text

    if not is_float.any():
        return _columns(len(values), ints=ints)

    valid = ints.is_valid().to_numpy(zero_copy_only=False)
    numbers = ints.fill_null(0).to_numpy()
    as_floats = numbers.astype(np.float64)
    in_range = as_floats < _TWO_TO_63
    exact = in_range & (np.where(in_range, as_floats, 0).astype(np.int64) == numbers)
    to_float = is_float & valid & exact
    return _columns(
        len(values),
        floats=pa.array(as_floats, mask=~to_float),
        ints=pa.array(numbers, mask=~(valid & ~to_float)),
    )


def _texts_quickly(texts: pa.Array, is_float: BoolArray) -> ValueColumns:
    if not is_float.any():
        return _columns(len(texts), texts=texts)

    spelled = pc.index_in(pc.ascii_lower(texts), value_set=_special_spellings())
    special = is_float & spelled.is_valid().to_numpy(zero_copy_only=False)
    numbers = _SPECIAL_NUMBERS[spelled.fill_null(0).to_numpy()]
    return _columns(
        len(texts),
        floats=pa.array(numbers, mask=~special),
        texts=pc.if_else(pa.array(special), pa.scalar(None, pa.string()), texts),
    )


def _columns_slowly(
    values: list[Any], is_int: BoolArray, is_float: BoolArray
) -> ValueColumns:
    """The reference rules, one point at a time, for blocks of mixed values."""
    columns: list[list[Any]] = [[None] * len(values) for _ in range(4)]
    for position, (value, int_signal, float_signal) in enumerate(
        zip(values, is_int.tolist(), is_float.tolist(), strict=True)
    ):
        column, placed = _place(value, int_signal=int_signal, float_signal=float_signal)
        if column != _NULL:
            columns[column][position] = placed

    return ValueColumns(
        floats=pa.array(columns[_FLOAT], type=pa.float64()),
        ints=pa.array(columns[_INT], type=pa.int64()),
        bools=pa.array(columns[_BOOL], type=pa.bool_()),
        texts=pa.array(columns[_TEXT], type=pa.string()),
    )


def _place(value: Any, *, int_signal: bool, float_signal: bool) -> tuple[int, Any]:
    """The column a value goes to and the value to store there."""
    if value is None:
        return _NULL, None

    if isinstance(value, bool):  # before int: a bool is an int to Python
        return _BOOL, value

    if isinstance(value, int):
        return _place_int(value, float_signal=float_signal)

    if isinstance(value, float):
        return _place_float(value, int_signal=int_signal)

    if isinstance(value, str):
        return _place_text(value, float_signal=float_signal)

    nested = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return _TEXT, nested


def _place_int(value: int, *, float_signal: bool) -> tuple[int, Any]:
    if float_signal and _float_holds(value):
        return _FLOAT, float(value)

    if _INT64_MIN <= value <= _INT64_MAX:
        return _INT, value

    return _TEXT, str(value)


def _float_holds(value: int) -> bool:
    try:
        return float(value) == value  # an exact comparison between int and float
    except OverflowError:
        return False


def _place_float(value: float, *, int_signal: bool) -> tuple[int, Any]:
    if int_signal and _int_holds(value):
        return _INT, int(value)

    return _FLOAT, value


def _int_holds(value: float) -> bool:
    """Whether ``value`` is an integer as sent, which an int64 holds: whole, below
    2**53 in magnitude (where no integer was rounded to reach it), and no -0.0."""
    if not value.is_integer() or not abs(value) < _TWO_TO_53:
        return False

    return value != 0 or math.copysign(1.0, value) > 0


def _place_text(value: str, *, float_signal: bool) -> tuple[int, Any]:
    if float_signal:
        # ASCII case only, as on the whole-column path.
        special = _SPECIAL_FLOATS.get(value.lower()) if value.isascii() else None
        if special is not None:
            return _FLOAT, special

    return _TEXT, value


def _columns(
    count: int,
    *,
    floats: pa.Array | None = None,
    ints: pa.Array | None = None,
    bools: pa.Array | None = None,
    texts: pa.Array | None = None,
) -> ValueColumns:
    """Value columns where every column not given is all null."""
    return ValueColumns(
        floats=pa.nulls(count, pa.float64()) if floats is None else floats,
        ints=pa.nulls(count, pa.int64()) if ints is None else ints,
        bools=pa.nulls(count, pa.bool_()) if bools is None else bools,
        texts=pa.nulls(count, pa.string()) if texts is None else texts,
    )
