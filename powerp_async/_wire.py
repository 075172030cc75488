"""Read one ``POST /v1/Query`` answer into three lists: index, value and timestamp.

These readers take every answer that ``_compact_wire`` leaves: any other shape, and
any block holding a signal of another type than float.

Two readers give the same lists. The quick one decodes with msgspec straight into
small records that the garbage collector never tracks, some three times faster than
orjson builds dicts. It takes only the shape servers send: an array of objects whose
``index`` is a signal asked for, whose ``timestamp`` is a string and whose ``value``
is a JSON scalar or absent; it keeps every integer exact. Whatever it refuses (bare
``NaN`` tokens, numbers beyond a float64, an ``index`` sent as a number or naming
another signal, nested values, a body that is no such array) goes to the general
reader, orjson into dicts with the stdlib behind it, which takes every JSON document
and says what is wrong with a malformed one. Neither reader judges a value: both hand
on the Python objects JSON gives, and the same code places them afterwards. The one
shortcut: when every signal is a float signal, the quick reader first reads each value
as a float, which places every number as the rules do while a float64 holds it
exactly, and hands on the float64 column at once.
"""

from __future__ import annotations

import functools
import json
from operator import itemgetter
from typing import Any, Final, Literal, NamedTuple

import msgspec
import numpy as np
import orjson
import pyarrow as pa

from ._redact import excerpt
from .errors import MalformedResponseError

__all__ = ["Fields", "json_kind", "malformed", "read_exactly", "read_fields"]

_DECODERS_KEPT: Final = 256
"""Quick decoders kept, two per set of signals asked for together."""
_ANY_VALUE: Final[Any] = bool | int | float | str | None
_FLOAT_VALUE: Final[Any] = float | None
"""msgspec reads a JSON integer as a float here, exactly below 2**53."""
_NOT_READ: Final = object()
"""Stands for a document orjson could not read."""
_TWO_TO_53: Final = 2.0**53

_JSON_KINDS: Final[dict[type, str]] = {
    dict: "a JSON object",
    list: "a JSON array",
    str: "a JSON string",
    int: "a JSON number",
    float: "a JSON number",
    bool: "a JSON boolean",
    type(None): "JSON null",
}


class Fields(NamedTuple):
    """The fields of every point, in the order the server sent them."""

    indexes: list[Any]
    values: list[Any]
    times: list[Any]
    exact: bool
    """Whether every integer is surely as sent; orjson rounds those beyond 64 bits."""
    floats: pa.Array | None = None
    """The values as float64, when ``floats_only`` was asked and every value was a
    JSON number that a float64 holds exactly, or null."""


def read_fields(
    body: bytes, indexes: tuple[str, ...], *, floats_only: bool, url: str
) -> Fields:
    """The fields of every point; malformed unless the body is an array of objects
    that all have an ``index`` and a ``timestamp``.

    ``indexes`` are the signals asked for: the quick reader takes only those, so that
    each point's index is one shared string rather than a new one. ``floats_only``
    says that every signal is a float signal, where a whole number is placed as a
    float; then the quick reader tries reading every value as a float first.
    """
    if not body or body.isspace():
        raise malformed("expected a JSON array of points, got an empty body", body, url)

    fields = _read_quickly(body, indexes, floats_only=floats_only)
    if fields is not None:
        return fields

    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _NOT_READ
    if document is _NOT_READ:
        # Bare NaN and Infinity tokens, which orjson rejects and the stdlib reads.
        # Read apart from orjson's error, which holds the whole body: an error of
        # the stdlib's would carry it as its context.
        return read_exactly(body, url=url)

    return _split_fields(_ensure_array(document, body, url), body, url, exact=False)


def read_exactly(body: bytes, *, url: str) -> Fields:
    """The fields by the stdlib parser, which keeps every integer exact."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        not_json: str | None = str(error)
    else:
        not_json = None
    if not_json is not None:
        # Raised apart from the parser's error, which holds the whole body.
        message = (
            f"expected a JSON array of points, got a body that is not JSON ({not_json})"
        )
        raise malformed(message, body, url)

    return _split_fields(_ensure_array(document, body, url), body, url, exact=True)


def _read_quickly(
    body: bytes, indexes: tuple[str, ...], *, floats_only: bool
) -> Fields | None:
    """The fields by msgspec, or ``None`` for any body not of the common shape."""
    if floats_only:
        fields = _read_records(body, _decoder(indexes, _FLOAT_VALUE))
        if fields is not None:
            floats = pa.array(fields.values, pa.float64())
            if _all_exact(floats):
                return fields._replace(floats=floats)

    return _read_records(body, _decoder(indexes, _ANY_VALUE))


def _read_records(body: bytes, decoder: msgspec.json.Decoder[Any]) -> Fields | None:
    try:
        points = decoder.decode(body)
    except msgspec.DecodeError:  # ValidationError included: the shape is not ours
        return None
    except RecursionError:  # arrays nested deeper than msgspec follows, in a key
        return None  # no point needs; the general reader says what it makes of them

    return Fields(
        indexes=[point.index for point in points],
        values=[point.value for point in points],
        times=[point.timestamp for point in points],
        exact=True,
    )


def _all_exact(floats: pa.Array) -> bool:
    """Whether no value can be an integer that msgspec rounded on its way to a float.

    Every integer below 2**53 in magnitude is a float64 exactly; one beyond rounds
    to 2**53 or more, and so does every float that large: a body holding one is read
    again keeping each JSON type. NaN and the infinities cannot be here: msgspec
    refuses their tokens, the strings that spell them, and numbers too large for a
    float64.
    """
    # Nulls come out as NaN, which no comparison counts.
    numbers = floats.to_numpy(zero_copy_only=False)
    return not (np.abs(numbers) >= _TWO_TO_53).any()


@functools.lru_cache(maxsize=_DECODERS_KEPT)
def _decoder(indexes: tuple[str, ...], value: Any) -> msgspec.json.Decoder[Any]:
    """A decoder of points of these signals; other keys are ignored, as by dicts."""
    point = msgspec.defstruct(
        "WirePoint",
        [
            ("index", Literal.__getitem__(indexes)),
            ("timestamp", str),
            ("value", value, None),
        ],
        gc=False,  # nothing here refers back: the collector need not track them
    )
    return msgspec.json.Decoder(list[point])  # type: ignore[valid-type]


def _ensure_array(document: Any, body: bytes, url: str) -> list[Any]:
    if isinstance(document, list):
        return document

    kind = json_kind(document)
    raise malformed(f"expected a JSON array of points, got {kind}", body, url)


def _split_fields(points: list[Any], body: bytes, url: str, *, exact: bool) -> Fields:
    try:
        indexes = list(map(itemgetter("index"), points))
        times = list(map(itemgetter("timestamp"), points))
    except TypeError:
        raise _point_shape_error(points, body, url) from None
    except KeyError:
        indexes, times = _fields_where_present(points, body, url)

    try:
        values = list(map(itemgetter("value"), points))
    except KeyError:
        # A point without a value is taken as a null value, not as malformed.
        values = [point.get("value") for point in points]

    return Fields(indexes, values, times, exact)


def _fields_where_present(
    points: list[Any], body: bytes, url: str
) -> tuple[list[Any], list[Any]]:
    """Each point's index and timestamp, ``None`` where it has none: a point without
    one is dropped as one whose is null is, rather than costing the whole answer;
    but an answer most of whose points lack one is not of the API's shape."""
    if not all(isinstance(point, dict) for point in points):
        raise _point_shape_error(points, body, url)

    lacking = sum("index" not in point or "timestamp" not in point for point in points)
    if 2 * lacking >= len(points):
        raise _point_shape_error(points, body, url)

    indexes = [point.get("index") for point in points]
    times = [point.get("timestamp") for point in points]
    return indexes, times


def _point_shape_error(
    points: list[Any], body: bytes, url: str
) -> MalformedResponseError:
    for position, point in enumerate(points):
        if not isinstance(point, dict):
            kind = json_kind(point)
            message = f"expected each point to be a JSON object, got {kind}"
            return malformed(f"{message} at position {position}", body, url)

        missing = [key for key in ("index", "timestamp") if key not in point]
        if missing:
            keys = ", ".join(repr(key[:40]) for key in sorted(point)[:6]) or "none"
            expected = f"expected each point to have {missing[0]!r}"
            message = f"{expected}, got one with keys {keys}"
            return malformed(f"{message} at position {position}", body, url)

    message = "expected each point to be a JSON object with 'index' and 'timestamp'"
    return malformed(message, body, url)


def json_kind(value: Any) -> str:
    """How a parsed JSON value is named in messages."""
    return _JSON_KINDS.get(type(value), f"a {type(value).__name__}")


def malformed(message: str, body: bytes, url: str) -> MalformedResponseError:
    """The error for an answer that is not what the API sends; ``url`` is masked."""
    return MalformedResponseError(message, url=url, excerpt=excerpt(body))
