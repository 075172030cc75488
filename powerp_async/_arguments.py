"""Checks of the arguments a caller passes, made before anything is sent.

A wrong argument is named with what was expected, as typed, rather than failing deep
inside with an error about something else (a text iterated letter by letter into
indexes, say, which would query the wrong signals without a word).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa

from .config import ClientConfig
from .errors import ConfigurationError
from .models import MAX_SIGNALS_PER_QUERY, POINT_SCHEMA, Measurement

__all__ = [
    "as_block_size",
    "as_config",
    "as_database_id",
    "as_databases",
    "as_indexes",
    "as_moment",
    "as_point_table",
    "as_signals",
    "as_tuple",
]


def as_config(value: object) -> ClientConfig:
    """A client's settings. Only the type is named when refused: a text passed by
    mistake could be the secret."""
    if not isinstance(value, ClientConfig):
        raise ConfigurationError(
            "config: expected a ClientConfig, such as ClientConfig.from_env(), got "
            f"{type(value).__name__}; PowerPClient also takes the settings as "
            "keywords, client_id=... and client_secret=..."
        )
    return value


def as_databases(databases: object) -> tuple[int, ...]:
    """The database ids as a tuple of ints; a bare value is refused, not iterated."""
    if isinstance(databases, int | str | bytes):
        raise ConfigurationError(
            "databases: expected a sequence of integer database ids, such as (1, 2), "
            f"got the bare value {databases!r:.60}"
        )

    ids = as_tuple("databases", databases)
    for value in ids:
        if not isinstance(value, int) or isinstance(value, bool):
            raise ConfigurationError(
                f"databases: expected integer database ids, got {value!r:.60}"
            )
    return ids


def as_indexes(indexes: object) -> tuple[str, ...]:
    """The signal indexes as a tuple of texts, as the API names them; a whole number
    is taken as its digits, a bare text is refused rather than split into letters."""
    if isinstance(indexes, str | bytes | int):
        raise ConfigurationError(
            "indexes: expected a sequence of signal indexes, such as "
            f"({str(indexes)!r:.20},) for one, got the bare value {indexes!r:.60}"
        )

    texts = []
    for value in as_tuple("indexes", indexes):
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ConfigurationError(
                f"indexes: expected signal indexes (texts), got {value!r:.60}"
            )
        texts.append(str(value))
    return tuple(texts)


def as_tuple(name: str, values: object) -> tuple[Any, ...]:
    # A text or bytes is iterable, character by character: never what is meant.
    if not isinstance(values, Iterable) or isinstance(values, str | bytes):
        raise ConfigurationError(
            f"{name}: expected a sequence, got {type(values).__name__} {values!r:.60}"
        )

    return tuple(values)


def as_database_id(value: object) -> int:
    """One database id: an integer of 64 bits, as the API's JSON reader takes (a
    bool is none)."""
    if isinstance(value, int) and not isinstance(value, bool) and _fits_64_bits(value):
        return value

    raise ConfigurationError(
        f"database_id: expected an integer database id, got {value!r:.60}"
    )


def _fits_64_bits(value: int) -> bool:
    return -(2**63) <= value < 2**63


def as_moment(name: str, value: object) -> datetime:
    """A point in time: a datetime (a naive one is taken as UTC)."""
    if not isinstance(value, datetime):
        raise ConfigurationError(
            f"{name}: expected a datetime, got {type(value).__name__} {value!r:.60}"
        )
    return value


def as_signals(signals: object) -> list[Measurement]:
    """The signals to fetch: Measurements, as ``measurements()`` lists them."""
    if isinstance(signals, Measurement):
        raise ConfigurationError(
            "signals: expected a sequence of Measurement, got a single one; pass "
            "[signal] for one"
        )

    listed = list(as_tuple("signals", signals))
    for value in listed:
        if not isinstance(value, Measurement):
            raise ConfigurationError(
                "signals: expected Measurement objects, as measurements() lists "
                f"them, got {type(value).__name__} {value!r:.60}"
            )
    return listed


def as_point_table(value: object) -> pa.Table:
    """A table of points with the columns of ``POINT_SCHEMA``; a record batch is
    taken as a table of one batch."""
    if isinstance(value, pa.RecordBatch):
        value = pa.Table.from_batches([value])
    if not isinstance(value, pa.Table):
        raise ConfigurationError(
            "table: expected a pyarrow Table of points, as fetch_table() gives, got "
            f"{type(value).__name__} {value!r:.60}"
        )

    missing = [name for name in POINT_SCHEMA.names if name not in value.column_names]
    if missing:
        raise ConfigurationError(
            "table: expected the columns of POINT_SCHEMA, as fetch_table() gives, "
            f"got a table without {', '.join(missing)}"
        )
    return value


def as_block_size(value: object) -> int | None:
    """Signals per query, or ``None`` for the client's setting."""
    if value is None:
        return None

    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 1 <= value <= MAX_SIGNALS_PER_QUERY
    ):
        raise ConfigurationError(
            f"block_size: expected an integer from 1 to {MAX_SIGNALS_PER_QUERY}, "
            f"got {value!r:.60}"
        )
    return value
