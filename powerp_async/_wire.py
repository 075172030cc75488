"""Read one ``POST /v1/Query`` answer into three lists: index, value and timestamp.

Two readers give the same lists. The quick one decodes with msgspec straight into
small records that the garbage collector never tracks, some three times faster than
orjson builds dicts. It takes only the shape servers send: an array of objects whose
``index`` and ``timestamp`` are strings and whose ``value`` is a JSON scalar or
absent; it keeps every integer exact. Whatever it refuses (bare ``NaN`` tokens,
numbers beyond a float64, an ``index`` sent as a number, nested values, a body that is
no such array) goes to the general reader, orjson into dicts with the stdlib behind it,
which takes every JSON document and says what is wrong with a malformed one. Neither
reader judges a value: both hand on the Python objects JSON gives, and the same code
places them afterwards.
"""

from __future__ import annotations

import functools
import json
from operator import itemgetter
from typing import Any, Final, Literal, NamedTuple

import msgspec
import orjson

from ._redact import excerpt
from .errors import MalformedResponseError

__all__ = ["Fields", "json_kind", "malformed", "read_exactly", "read_fields"]

_DECODERS_KEPT: Final = 256
"""Quick decoders kept, one per set of signals asked for together."""

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


def read_fields(body: bytes, indexes: tuple[str, ...], *, url: str) -> Fields:
    """The fields of every point; malformed unless the body is an array of objects
    that all have an ``index`` and a ``timestamp``.

    ``indexes`` are the signals asked for: the quick reader takes only those, so that
    each point's index is one shared string rather than a new one.
    """
    if not body or body.isspace():
        raise malformed("expected a JSON array of points, got an empty body", body, url)

    fields = _read_quickly(body, indexes)
    if fields is not None:
        return fields

    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # Bare NaN and Infinity tokens, which orjson rejects and the stdlib reads.
        return read_exactly(body, url=url)

    return _split_fields(_ensure_array(document, body, url), body, url, exact=False)


def read_exactly(body: bytes, *, url: str) -> Fields:
    """The fields by the stdlib parser, which keeps every integer exact."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError) as error:
        message = (
            f"expected a JSON array of points, got a body that is not JSON ({error})"
        )
        raise malformed(message, body, url) from None

    return _split_fields(_ensure_array(document, body, url), body, url, exact=True)


def _read_quickly(body: bytes, indexes: tuple[str, ...]) -> Fields | None:
    """The fields by msgspec, or ``None`` for any body not of the common shape."""
    try:
        points = _quick_decoder(indexes).decode(body)
    except msgspec.DecodeError:  # ValidationError included: the shape is not ours
        return None

    return Fields(
        indexes=[point.index for point in points],
        values=[point.value for point in points],
        times=[point.timestamp for point in points],
        exact=True,
    )


@functools.lru_cache(maxsize=_DECODERS_KEPT)
def _quick_decoder(indexes: tuple[str, ...]) -> msgspec.json.Decoder[list[Any]]:
    """A decoder of points of these signals; other keys are ignored, as by dicts."""
    point = msgspec.defstruct(
        "WirePoint",
        [
            ("index", Literal.__getitem__(indexes)),
            ("timestamp", str),
            ("value", bool | int | float | str | None, None),
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
    except (KeyError, TypeError):
        raise _point_shape_error(points, body, url) from None

    try:
        values = list(map(itemgetter("value"), points))
    except KeyError:
        # A point without a value is taken as a null value, not as malformed.
        values = [point.get("value") for point in points]

    return Fields(indexes, values, times, exact)


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
