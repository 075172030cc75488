"""Writing one table of points to one file, in Parquet, CSV or JSON Lines.

Every format holds the same columns as :data:`~powerp_async.models.POINT_SCHEMA`.

- Parquet keeps every type as it is (zstd-compressed).
- CSV is UTF-8 with a byte-order mark, so spreadsheets detect the encoding; strings
  are quoted where needed, timestamps are ISO 8601 in UTC (``...T10:00:01.000000Z``),
  null is an empty field and NaN is ``nan``.
- JSON Lines writes one object per point. JSON has no token for NaN or the infinities,
  so in ``value_float`` they are written as the strings ``"NaN"``, ``"Infinity"`` and
  ``"-Infinity"``; a string in that field can mean nothing else.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Final, Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

Format = Literal["parquet", "csv", "jsonl"]
FORMATS: Final[tuple[Format, ...]] = ("parquet", "csv", "jsonl")
SUFFIXES: Final[dict[str, str]] = {
    "parquet": ".parquet",
    "csv": ".csv",
    "jsonl": ".jsonl",
}

_BOM: Final = "\ufeff".encode()
_SPECIAL_FLOATS: Final = {math.inf: "Infinity", -math.inf: "-Infinity"}


def write_file(table: pa.Table, path: Path, fmt: Format) -> None:
    """Write ``table`` to ``path`` and flush it to disk before returning."""
    _WRITERS[fmt](table, path)
    _fsync(path)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(table, path, compression="zstd")


def _with_text_timestamps(table: pa.Table) -> pa.Table:
    stamps = pc.strftime(table["timestamp"], format="%Y-%m-%dT%H:%M:%SZ")
    position = table.schema.get_field_index("timestamp")
    return table.set_column(position, "timestamp", stamps)


def _write_csv(table: pa.Table, path: Path) -> None:
    with path.open("wb") as sink:
        sink.write(_BOM)
        pa_csv.write_csv(_with_text_timestamps(table), sink)


def _write_jsonl(table: pa.Table, path: Path) -> None:
    rows = _with_text_timestamps(table).to_pylist()
    with path.open("wb") as sink:
        for row in rows:
            value = row["value_float"]
            if value is not None and not math.isfinite(value):
                row["value_float"] = _SPECIAL_FLOATS.get(value, "NaN")
            sink.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))


_WRITERS: Final[dict[str, Callable[[pa.Table, Path], None]]] = {
    "parquet": _write_parquet,
    "csv": _write_csv,
    "jsonl": _write_jsonl,
}


def _fsync(path: Path) -> None:
    with path.open("rb") as handle:
        os.fsync(handle.fileno())
