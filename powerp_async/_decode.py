"""Turn one ``POST /v1/Query`` answer into an Arrow batch of points.

This is the client's hot path: an answer holds up to 20 signals times some 1,800
windows, so every step works on whole columns (pyarrow and numpy) rather than on one
point at a time. Timestamps go through Arrow's parser first and through
``parse_wire`` only when Arrow refuses one; which column each value goes to is
decided in ``_values``.

Known shortcomings: an ``index`` sent as a number beyond 64 bits reaches us rounded by
orjson and counts as unrequested; a float ``index`` (``12.0`` as well as ``12.5``)
counts as unrequested too, since only strings and integers name a signal.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from ._redact import excerpt
from ._time import parse_wire
from ._values import ValueColumns, numeric_kinds, value_columns
from .errors import MalformedResponseError
from .models import POINT_SCHEMA, Block, DataType

__all__ = ["DecodedBlock", "decode_block"]

_LOGGER: Final = logging.getLogger("powerp_async.decode")

_TIMESTAMP_US: Final = pa.timestamp("us", tz="UTC")
_TIMESTAMP_NS: Final = pa.timestamp("ns", tz="UTC")
_TWO_TO_63: Final = 2.0**63
_TIME_EXPECTED: Final = (
    "expected each timestamp as an ISO-8601 string such as '2026-12-04T10:00:00Z'"
)

_JSON_KINDS: Final[dict[type, str]] = {
    dict: "a JSON object",
    list: "a JSON array",
    str: "a JSON string",
    int: "a JSON number",
    float: "a JSON number",
    bool: "a JSON boolean",
    type(None): "JSON null",
}

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

    def __post_init__(self) -> None:
        if not isinstance(self.batch, pa.RecordBatch):
            raise TypeError(f"batch must be a pyarrow RecordBatch, got {self.batch!r}")

        if not self.batch.schema.equals(POINT_SCHEMA):
            raise ValueError(f"batch must have POINT_SCHEMA, got {self.batch.schema}")

        for name in (
            "dropped_unrequested",
            "dropped_out_of_range",
            "dropped_duplicates",
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
    a point lacks ``index`` or ``timestamp``, or a timestamp cannot be parsed.
    """
    try:
        return _decode_body(body, block, data_types, url)
    except UnicodeEncodeError:
        # Only the stdlib parser lets an unpaired surrogate escape such as "\ud800"
        # through; it is no text that UTF-8, and so Arrow, can hold.
        message = (
            "expected JSON strings of valid text, got an unpaired surrogate escape"
        )
        raise _malformed(message, body, url) from None


def _decode_body(
    body: bytes, block: Block, data_types: Mapping[str, DataType | None], url: str
) -> DecodedBlock:
    points, exact = _load_points(body, url=url)
    decoded = _decode_points(points, block, data_types, body=body, url=url)
    if exact or not _holds_huge_floats(decoded.batch):
        return decoded

    # orjson turns an integer token beyond 64 bits into a float, losing digits, and
    # nothing in its result tells such a float from one sent as a float. Magnitudes
    # that large are rare, so only then is the body parsed again by the stdlib, which
    # keeps every integer exact.
    _LOGGER.debug("parsing %s again to keep integers beyond 64 bits exact", url)
    points = _ensure_array(_load_exactly(body, url=url), body=body, url=url)
    return _decode_points(points, block, data_types, body=body, url=url)


# Parsing ------------------------------------------------------------------------------


def _load_points(body: bytes, *, url: str) -> tuple[list[Any], bool]:
    """The top-level array, and whether its integers are surely exact."""
    if not body or body.isspace():
        raise _malformed(
            "expected a JSON array of points, got an empty body", body, url
        )

    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        # Bare NaN and Infinity tokens, which orjson rejects and the stdlib reads.
        return _ensure_array(_load_exactly(body, url=url), body=body, url=url), True

    return _ensure_array(document, body=body, url=url), False


def _load_exactly(body: bytes, *, url: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:
        message = (
            f"expected a JSON array of points, got a body that is not JSON ({error})"
        )
        raise _malformed(message, body, url) from None


def _ensure_array(document: Any, *, body: bytes, url: str) -> list[Any]:
    if isinstance(document, list):
        return document

    kind = _json_kind(document)
    raise _malformed(f"expected a JSON array of points, got {kind}", body, url)


def _decode_points(
    points: list[Any],
    block: Block,
    data_types: Mapping[str, DataType | None],
    *,
    body: bytes,
    url: str,
) -> DecodedBlock:
    raw_indexes, values, raw_times = _split_fields(points, body=body, url=url)
    indexes = _index_strings(raw_indexes)
    times_us = _parse_times(raw_times, body=body, url=url)
    selection = _select(indexes, times_us, block)

    if not selection.keep.all():
        indexes = indexes.filter(pa.array(selection.keep))
        times_us = times_us[selection.keep]
        values = list(itertools.compress(values, selection.keep))

    is_int, is_float = numeric_kinds(indexes, block, data_types)
    columns = value_columns(values, is_int, is_float, url=url)
    return DecodedBlock(
        batch=_batch(block, indexes, times_us, columns),
        dropped_unrequested=selection.unrequested,
        dropped_out_of_range=selection.out_of_range,
        dropped_duplicates=selection.duplicates,
    )


def _split_fields(
    points: list[Any], *, body: bytes, url: str
) -> tuple[list[Any], list[Any], list[Any]]:
    """The index, value and timestamp of every point, as three lists."""
    try:
        raw_indexes = list(map(itemgetter("index"), points))
        raw_times = list(map(itemgetter("timestamp"), points))
    except (KeyError, TypeError):
        raise _point_shape_error(points, body, url) from None

    try:
        values = list(map(itemgetter("value"), points))
    except KeyError:
        # A point without a value is taken as a null value, not as malformed.
        values = [point.get("value") for point in points]

    return raw_indexes, values, raw_times


def _point_shape_error(
    points: list[Any], body: bytes, url: str
) -> MalformedResponseError:
    for position, point in enumerate(points):
        if not isinstance(point, dict):
            kind = _json_kind(point)
            message = f"expected each point to be a JSON object, got {kind}"
            return _malformed(f"{message} at position {position}", body, url)

        missing = [key for key in ("index", "timestamp") if key not in point]
        if missing:
            keys = ", ".join(repr(key[:40]) for key in sorted(point)[:6]) or "none"
            expected = f"expected each point to have {missing[0]!r}"
            message = f"{expected}, got one with keys {keys}"
            return _malformed(f"{message} at position {position}", body, url)

    message = "expected each point to be a JSON object with 'index' and 'timestamp'"
    return _malformed(message, body, url)


# Indexes and timestamps ---------------------------------------------------------------


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


def _parse_times(raw_times: list[Any], *, body: bytes, url: str) -> Int64Array:
    """Epoch microseconds of every timestamp; malformed unless all are ISO-8601 text."""
    try:
        texts = pa.array(raw_times, type=pa.string())
    except (pa.ArrowTypeError, pa.ArrowInvalid):
        texts = None

    if texts is None or texts.null_count:
        raise _time_type_error(raw_times, body, url)

    parsed = _cast_times(texts)
    if parsed is not None:
        return parsed

    _LOGGER.debug("timestamps of %s need the per-value parser", url)
    return _parse_times_slowly(raw_times, body=body, url=url)


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


def _parse_times_slowly(raw_times: list[str], *, body: bytes, url: str) -> Int64Array:
    # The signals of a block share their window labels, so most texts repeat.
    parsed: dict[str, int] = {}
    for position, text in enumerate(raw_times):
        if text in parsed:
            continue

        try:
            parsed[text] = parse_wire(text)
        except (ValueError, OverflowError):
            got = f"got {text[:40]!r} at position {position}"
            raise _malformed(f"{_TIME_EXPECTED}, {got}", body, url) from None

    return np.fromiter(map(parsed.__getitem__, raw_times), np.int64, len(raw_times))


def _time_type_error(
    raw_times: list[Any], body: bytes, url: str
) -> MalformedResponseError:
    for position, raw in enumerate(raw_times):
        if not isinstance(raw, str):
            got = f"got {_json_kind(raw)} at position {position}"
            return _malformed(f"{_TIME_EXPECTED}, {got}", body, url)

    return _malformed(_TIME_EXPECTED, body, url)


# Selection ----------------------------------------------------------------------------


class _Selection(NamedTuple):
    keep: BoolArray
    unrequested: int
    out_of_range: int
    duplicates: int


def _select(indexes: pa.Array, times_us: Int64Array, block: Block) -> _Selection:
    """Which points to keep; each dropped point is counted for its first reason."""
    codes = pc.index_in(indexes, value_set=pa.array(block.indexes, type=pa.string()))
    requested = codes.is_valid().to_numpy(zero_copy_only=False)

    # Both ends count: a window may be labelled by its start or by its stop.
    in_range = (times_us >= block.start_us) & (times_us <= block.end_us)
    candidates = requested & in_range
    keep = _first_occurrences(codes.fill_null(0), times_us, candidates)

    requested_count = int(requested.sum())
    candidate_count = int(candidates.sum())
    return _Selection(
        keep=keep,
        unrequested=len(indexes) - requested_count,
        out_of_range=requested_count - candidate_count,
        duplicates=candidate_count - int(keep.sum()),
    )


def _first_occurrences(
    codes: pa.Array, times_us: Int64Array, candidates: BoolArray
) -> BoolArray:
    """``candidates`` without the repeats of an (index, timestamp) seen before."""
    positions = np.flatnonzero(candidates)
    times = pa.array(times_us[positions])

    # Ranking the distinct times keeps the combined key small, so it cannot overflow
    # whatever the span of the block.
    distinct_times = pc.unique(times)
    time_ranks = pc.index_in(times, value_set=distinct_times).to_numpy()
    index_codes = codes.to_numpy()[positions].astype(np.int64)
    keys = index_codes * len(distinct_times) + time_ranks
    sorted_keys = np.sort(keys)
    if not (sorted_keys[1:] == sorted_keys[:-1]).any():
        return candidates  # nothing repeats, as in almost every answer

    _, first_positions = np.unique(keys, return_index=True)
    keep = np.zeros_like(candidates)
    keep[positions[first_positions]] = True
    return keep


# Output -------------------------------------------------------------------------------


def _batch(
    block: Block, indexes: pa.Array, times_us: Int64Array, columns: ValueColumns
) -> pa.RecordBatch:
    count = len(indexes)
    return pa.RecordBatch.from_arrays(
        [
            pa.repeat(pa.scalar(block.database_id, pa.int64()), count),
            indexes,
            pa.repeat(pa.scalar(block.aggregation, pa.string()), count),
            pa.array(times_us, type=_TIMESTAMP_US),
            *columns,
        ],
        schema=POINT_SCHEMA,
    )


def _holds_huge_floats(batch: pa.RecordBatch) -> bool:
    """Whether ``value_float`` holds a finite magnitude of 2**63 or more."""
    floats = batch.column("value_float")
    if floats.null_count == len(floats):
        return False

    numbers = np.abs(floats.to_numpy(zero_copy_only=False))
    return bool((np.isfinite(numbers) & (numbers >= _TWO_TO_63)).any())


def _json_kind(value: Any) -> str:
    """How a parsed JSON value is named in messages."""
    return _JSON_KINDS.get(type(value), f"a {type(value).__name__}")


def _malformed(message: str, body: bytes, url: str) -> MalformedResponseError:
    return MalformedResponseError(message, url=url, excerpt=excerpt(body))
