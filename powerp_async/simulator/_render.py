"""JSON rendering of query answers, built from bytes rather than from dicts.

An answer can hold a few hundred thousand points, so each point is assembled from three
pre-rendered parts: ``{"index":"<index>","value":`` (once per signal), the value (one
orjson call per signal turns a whole numpy array into text) and
``,"timestamp":"...Z"},`` (once per window, shared by every signal of the request). One
``bytes.join`` over all parts then writes the body in a single copy.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import orjson

from ._grid import RequestGrid
from ._tenant import Series, SignalSpec, Tenant

_BOOL_JSON: Final = (b"false", b"true")


def render_points(
    tenant: Tenant,
    signals: tuple[tuple[str, SignalSpec], ...],
    aggregation: str,
    grid: RequestGrid,
) -> tuple[bytes, int]:
    """The JSON array answering a query, and how many points it holds.

    ``signals`` pairs each index as the client sent it with its signal; the answer
    echoes the index as sent, always as a string, series after series.
    """
    parts = [b"["]
    for index, spec in signals:
        series = tenant.series(spec, aggregation, grid)
        if len(series.windows):
            _add_series(parts, orjson.dumps(index), series, grid)

    count = (len(parts) - 1) // 3
    if count:
        parts[-1] = parts[-1][:-1]  # the comma after the last point

    parts.append(b"]")
    return b"".join(parts), count


def _add_series(
    parts: list[bytes], index_json: bytes, series: Series, grid: RequestGrid
) -> None:
    """Append head, value and tail of each point: one join renders them all at once."""
    tails = grid.timestamp_tails()
    if len(series.windows) != len(tails):
        tails = [tails[position] for position in series.windows.tolist()]

    values = _json_values(series)
    start = len(parts)
    parts.extend([b'{"index":' + index_json + b',"value":'] * (3 * len(values)))
    parts[start + 1 :: 3] = values
    parts[start + 2 :: 3] = tails


def _json_values(series: Series) -> list[bytes]:
    """Each value as JSON text, in window order."""
    if series.vocabulary:
        words = [orjson.dumps(word) for word in series.vocabulary]
        return [words[rank] for rank in series.values.tolist()]

    if series.values.dtype == np.bool_:
        return [_BOOL_JSON[flag] for flag in series.values.tolist()]

    numbers = np.ascontiguousarray(series.values)
    return orjson.dumps(numbers, option=orjson.OPT_SERIALIZE_NUMPY)[1:-1].split(b",")
