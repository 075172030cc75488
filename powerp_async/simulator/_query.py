"""Validation of ``POST /v1/Query`` bodies: every rule the API states, one message each.

Each rejection names what was expected and what came, so a client's error report says
what to fix. The checks run in a fixed order (body, fields, database, indexes,
aggregation, window, times, span) and the first failure is answered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import orjson

from .._time import format_duration, parse_duration_us, parse_wire
from ..models import AGGREGATIONS, MAX_QUERY_SPAN_US, MAX_SIGNALS_PER_QUERY
from ._grid import format_timestamp
from ._tenant import SignalSpec, Tenant, check_aggregation

FIELDS: Final = (
    "databaseId",
    "measurementIndexes",
    "startTime",
    "endTime",
    "aggFunction",
    "windowPeriod",
)
MIN_WINDOW_US: Final = 1_000
"""Windows under a millisecond are refused; Flux would accept them but no client needs
them and they only make requests expensive."""
MAX_WINDOW_US: Final = 10_000 * 366 * 86_400 * 1_000_000
"""Longer than any range of the times the API takes (years 1 to 9999), and well within
the 64-bit microseconds the windows are computed in."""


class QueryError(ValueError):
    """A query the API refuses with 400; ``code`` is the ``error`` field of the body."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Query:
    """A valid query: ``signals`` pairs each distinct index as sent with its signal."""

    database_id: int
    signals: tuple[tuple[str, SignalSpec], ...]
    aggregation: str
    start_us: int
    end_us: int
    window_us: int

    @property
    def window_count(self) -> int:
        """The epoch-aligned windows the range touches, partial ones included."""
        return -(-self.end_us // self.window_us) - self.start_us // self.window_us

    @property
    def cost_points(self) -> int:
        """What the query asks for, signals times windows: the unit of size limits."""
        return len(self.signals) * self.window_count


def parse_query(
    body: bytes, tenant: Tenant, retired: frozenset[tuple[int, str]] = frozenset()
) -> Query:
    """Check a request body against the API's rules; raises :class:`QueryError`.

    ``retired`` signals, listed but no longer served, are refused as unknown ones are.
    """
    fields = _json_object(body)
    database_id = _database(fields["databaseId"], tenant)
    indexes = _indexes(fields["measurementIndexes"])
    for index in indexes:
        if (database_id, index) in retired:
            raise QueryError(
                "retired_index",
                f"index {_shown(index)} of database {database_id} is retired: it is "
                "listed, but no longer served",
            )
    signals = tuple((index, _signal(tenant, database_id, index)) for index in indexes)
    aggregation = _aggregation(fields["aggFunction"], [spec for _, spec in signals])
    window_us = _window(fields["windowPeriod"])
    start_us = _time("startTime", fields["startTime"])
    end_us = _time("endTime", fields["endTime"])
    _check_span(start_us, end_us)
    return Query(database_id, signals, aggregation, start_us, end_us, window_us)


def _shown(value: object) -> str:
    """A short rendering of a client's value for a message."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _json_object(body: bytes) -> dict[str, object]:
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise QueryError(
            "invalid_body",
            f"expected a JSON object as the request body, got {len(body)} bytes that "
            "are not JSON",
        ) from None

    if not isinstance(fields, dict):
        raise QueryError(
            "invalid_body",
            f"expected a JSON object as the request body, got a JSON "
            f"{type(fields).__name__}",
        )

    missing = [name for name in FIELDS if name not in fields]
    if missing:
        raise QueryError(
            "missing_field",
            f"missing field(s) {', '.join(missing)}: a query needs {', '.join(FIELDS)}",
        )

    return fields


def _database(value: object, tenant: Tenant) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)

    if isinstance(value, bool) or not isinstance(value, int):
        raise QueryError(
            "invalid_field", f"databaseId must be an integer, got {_shown(value)}"
        )

    if value not in tenant.databases:
        known = ", ".join(str(db) for db in sorted(tenant.databases))
        raise QueryError(
            "unknown_database",
            f"databaseId {value} does not exist: expected one of {known}",
        )

    return value


def _indexes(value: object) -> list[str]:
    """The indexes as sent, in order, each once."""
    if not isinstance(value, list) or not all(isinstance(i, str) for i in value):
        raise QueryError(
            "invalid_field",
            f"measurementIndexes must be a list of strings, got {_shown(value)}",
        )

    if not value:
        raise QueryError(
            "no_indexes",
            f"measurementIndexes is empty: expected 1 to {MAX_SIGNALS_PER_QUERY} "
            "indexes",
        )

    if len(value) > MAX_SIGNALS_PER_QUERY:
        raise QueryError(
            "too_many_indexes",
            f"measurementIndexes holds {len(value)} indexes: expected at most "
            f"{MAX_SIGNALS_PER_QUERY} per query",
        )

    return list(dict.fromkeys(value))


def _signal(tenant: Tenant, database_id: int, index: str) -> SignalSpec:
    try:
        return tenant.signal(database_id, index)
    except KeyError:
        raise QueryError(
            "unknown_index",
            f"index {_shown(index)} does not exist in database {database_id}",
        ) from None


def _aggregation(value: object, signals: list[SignalSpec]) -> str:
    if not isinstance(value, str) or value not in AGGREGATIONS:
        raise QueryError(
            "unknown_aggregation",
            f"aggFunction must be one of {', '.join(sorted(AGGREGATIONS))}, "
            f"got {_shown(value)}",
        )

    for spec in signals:
        try:
            check_aggregation(spec, value)
        except ValueError as error:
            raise QueryError("unsupported_aggregation", str(error)) from None

    return value


def _window(value: object) -> int:
    if not isinstance(value, str):
        raise QueryError(
            "invalid_window_period",
            f"windowPeriod must be a duration string such as '200ms' or '1s', "
            f"got {_shown(value)}",
        )

    try:
        window_us = parse_duration_us(value)
    except ValueError as error:
        raise QueryError("invalid_window_period", f"windowPeriod: {error}") from None

    if window_us < MIN_WINDOW_US:
        raise QueryError(
            "invalid_window_period",
            f"windowPeriod {_shown(value)} is shorter than the smallest supported "
            "window, 1ms",
        )

    if window_us > MAX_WINDOW_US:
        raise QueryError(
            "invalid_window_period",
            f"windowPeriod {_shown(value)} is longer than any range of times the API "
            "takes (years 1 to 9999)",
        )

    return window_us


def _time(name: str, value: object) -> int:
    if not isinstance(value, str):
        raise QueryError(
            "invalid_time",
            f"{name} must be an ISO-8601 string such as '2026-12-04T10:00:00Z', "
            f"got {_shown(value)}",
        )

    try:
        return parse_wire(value)
    except ValueError as error:
        raise QueryError("invalid_time", f"{name}: {error}") from None
    except OverflowError:
        raise QueryError(
            "invalid_time",
            f"{name}: {_shown(value)} is outside the years 1 to 9999 once in UTC",
        ) from None


def _check_span(start_us: int, end_us: int) -> None:
    if end_us <= start_us:
        raise QueryError(
            "empty_range",
            f"endTime must be after startTime, got startTime "
            f"{format_timestamp(start_us)} and endTime {format_timestamp(end_us)}",
        )

    if end_us - start_us >= MAX_QUERY_SPAN_US:
        raise QueryError(
            "span_too_long",
            f"the range spans {format_duration(end_us - start_us)}: expected less than "
            "30 minutes; split longer ranges into several queries",
        )
