"""Typed records of the API: signals, query blocks and the schema of points."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, NoReturn

import pyarrow as pa

from ._time import (
    format_duration,
    format_wire,
    from_epoch_us,
    parse_wire_zoned,
)
from ._words import printable
from .errors import ConfigurationError

MAX_SIGNALS_PER_QUERY: Final = 20
"""Hard API limit on ``measurementIndexes`` per query."""

MAX_QUERY_SPAN_US: Final = 30 * 60 * 1_000_000
"""A query must span strictly less than this (30 minutes)."""

DEFAULT_AGGREGATION: Final = "last"
"""Used where a signal has no ``defaultAgg``, as the reference notebook does."""

AGGREGATIONS: Final = frozenset(
    {"mean", "last", "first", "min", "max", "sum", "count", "median"}
)


class DataType(StrEnum):
    """The kind of value a signal carries, from the metadata's ``dataType``.

    >>> DataType.parse("Double"), DataType.parse("int64"), DataType.parse("blob")
    (<DataType.FLOAT: 'float'>, <DataType.INT: 'int'>, None)
    """

    FLOAT = "float"
    INT = "int"
    BOOL = "bool"
    STRING = "string"

    @classmethod
    def parse(cls, raw: object) -> DataType | None:
        """Map the many spellings servers use to one kind; ``None`` if unknown."""
        if not isinstance(raw, str):
            return None
        return _DATA_TYPE_SPELLINGS.get(raw.strip().lower())


_DATA_TYPE_SPELLINGS: Final[dict[str, DataType]] = {
    **dict.fromkeys(["float", "double", "real", "number", "decimal"], DataType.FLOAT),
    **dict.fromkeys(["int", "integer", "long", "int32", "int64"], DataType.INT),
    **dict.fromkeys(["bool", "boolean"], DataType.BOOL),
    **dict.fromkeys(["string", "str", "text"], DataType.STRING),
}


def _bad_field(name: str, expected: str, got: object) -> NoReturn:
    # A ValueError too, as ``from_api`` reports a bad listing row.
    raise ConfigurationError(f"Measurement.{name}: expected {expected}, got {got!r}")


@dataclass(frozen=True, slots=True)
class Measurement:
    """One signal as listed by ``GET /v1/measurements``.

    ``index`` is always a string, whatever the server sent, since queries take strings.
    ``aggregation`` is the ``defaultAgg`` or ``last`` where that is missing or empty.

    >>> signal = Measurement.from_api(
    ...     {"databaseId": 1, "index": 7, "dataType": "double", "unitSymbol": "kW"}
    ... )
    >>> signal.index, signal.data_type, signal.unit_symbol, signal.aggregation
    ('7', <DataType.FLOAT: 'float'>, 'kW', 'last')
    """

    database_id: int
    index: str
    name: str | None = None
    default_agg: str | None = None
    data_type: DataType | None = None
    unit_symbol: str | None = None
    first_data_point: datetime | None = None
    min_value: float | None = None
    max_value: float | None = None

    def __post_init__(self) -> None:
        # Built by hand too (a notebook's own list of signals): a wrong type would
        # otherwise surface far from here, from inside a plan or a request body.
        database_id = self.database_id
        if isinstance(database_id, bool) or not isinstance(database_id, int):
            _bad_field("database_id", "an integer", database_id)
        if not -(2**63) <= database_id < 2**63:
            _bad_field("database_id", "an integer of 64 bits", database_id)
        if not isinstance(self.index, str) or not self.index:
            _bad_field("index", "a non-empty string", self.index)
        if self.default_agg is not None and not isinstance(self.default_agg, str):
            _bad_field("default_agg", "a string or None", self.default_agg)
        if self.data_type is not None and not isinstance(self.data_type, DataType):
            _bad_field("data_type", "a DataType or None", self.data_type)
        if self.first_data_point is not None and not isinstance(
            self.first_data_point, datetime
        ):
            _bad_field("first_data_point", "a datetime or None", self.first_data_point)

    @property
    def aggregation(self) -> str:
        return self.default_agg or DEFAULT_AGGREGATION

    @classmethod
    def from_api(cls, row: Mapping[str, Any]) -> Measurement:
        """Build from one metadata object; ``ValueError`` names a bad field."""
        database_id = row.get("databaseId")
        index = row.get("index")
        if isinstance(database_id, bool) or not isinstance(database_id, int | str):
            raise ValueError(f"databaseId must be an integer, got {database_id!r}")
        if index is None or isinstance(index, bool) or index == "":
            raise ValueError(f"index must be a string or a number, got {index!r}")
        first = row.get("firstDataPoint")
        # Optional fields the client cannot read are left unknown, as the min and
        # max values are: one odd signal must not cost the whole listing.
        return cls(
            database_id=int(database_id),
            index=str(index),
            name=_optional_str(row.get("name")),
            default_agg=_optional_str(row.get("defaultAgg")) or None,
            data_type=DataType.parse(row.get("dataType")),
            unit_symbol=_optional_str(row.get("unitSymbol")),
            first_data_point=_optional_time(first),
            min_value=_optional_float(row.get("minValue")),
            max_value=_optional_float(row.get("maxValue")),
        )


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


LOCAL_TIME_LEAD_US: Final = 14 * 3600 * 1_000_000
"""How far ahead of UTC a local clock can run (UTC+14). A first data point given
without an offset may be such a local time: read as UTC and then moved this much
earlier, it is the earliest instant it can mean, so no slice that holds data is
skipped for it, whatever the zone the server meant."""


def _optional_time(value: object) -> datetime | None:
    """A first data point of the wire format, or ``None`` where there is none that
    can be read: a signal then counts as holding data from the start of any range.
    One without an offset is read as the earliest instant it can mean
    (``LOCAL_TIME_LEAD_US``)."""
    if not value or not isinstance(value, str):
        return None
    try:
        us, zoned = parse_wire_zoned(value)
        return from_epoch_us(us if zoned else us - LOCAL_TIME_LEAD_US)
    except (ValueError, OverflowError):  # out of range at year 1 or 9999 with offset
        return None


def _optional_float(value: object) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Block:
    """One query: up to 20 signals of one (database, aggregation) over one time slice.

    Times are epoch microseconds; the range is half-open. A planned block lies on the
    epoch-aligned window grid; one that ``PowerPClient.query`` sends as given may
    start or end inside a window, and is then only ever cut on the grid.
    ``unit_id`` is stable across runs, so an export can tell which blocks it finished.

    >>> block = Block(1, "mean", ("1", "2"), 0, 600_000_000, 1_000_000)
    >>> block.window_count, block.max_points, block.payload()["windowPeriod"]
    (600, 1200, '1s')
    """

    database_id: int
    aggregation: str
    indexes: tuple[str, ...]
    start_us: int
    end_us: int
    window_us: int

    @property
    def unit_id(self) -> str:
        key = "\x1f".join(
            [
                str(self.database_id),
                self.aggregation,
                "\x1e".join(self.indexes),
                str(self.start_us),
                str(self.end_us),
                str(self.window_us),
            ]
        )
        return hashlib.blake2b(key.encode(), digest_size=12).hexdigest()

    @property
    def window_count(self) -> int:
        """The epoch-aligned windows the range touches, a partial one at an unaligned
        edge included (each gives a point, labelled by its clipped edge)."""
        return -(-self.end_us // self.window_us) - self.start_us // self.window_us

    @property
    def max_points(self) -> int:
        """The most points the block can return: signals times windows."""
        return len(self.indexes) * self.window_count

    def payload(self) -> dict[str, Any]:
        """The JSON body of ``POST /v1/Query`` for this block."""
        return {
            "databaseId": self.database_id,
            "measurementIndexes": list(self.indexes),
            "startTime": format_wire(self.start_us),
            "endTime": format_wire(self.end_us),
            "aggFunction": self.aggregation,
            "windowPeriod": format_duration(self.window_us),
        }

    def describe(self) -> str:
        """A short human description for logs and errors."""
        first, last = printable(self.indexes[0]), printable(self.indexes[-1])
        count = len(self.indexes)
        signals = (
            f"1 signal {first}" if count == 1 else f"{count} signals {first}..{last}"
        )
        return (
            f"database {self.database_id} {printable(self.aggregation)} [{signals}] "
            f"{format_wire(self.start_us)}..{format_wire(self.end_us)}"
        )

    def describe_failure(self, error: BaseException) -> str:
        """What ended the block: ``error``, after the block unless the error names it.

        Most errors of a block name it already; naming it twice reads as two blocks.
        """
        reason = str(error)
        described = self.describe()
        return reason if described in reason else f"{described}: {reason}"


POINT_SCHEMA: Final = pa.schema(
    [
        pa.field("database_id", pa.int64(), nullable=False),
        pa.field("index", pa.string(), nullable=False),
        pa.field("aggregation", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("value_float", pa.float64()),
        pa.field("value_int", pa.int64()),
        pa.field("value_bool", pa.bool_()),
        pa.field("value_text", pa.string()),
    ]
)
"""Columns of every table of points this package produces.

A point's value sits in the column of its type and the other three are null, so no
value is ever converted: floats (NaN and infinities included) stay float64, integers
stay exact int64, booleans stay booleans and strings stay strings. An integer too large
for 64 bits keeps its digits in ``value_text``. A null value leaves all four null.
"""
