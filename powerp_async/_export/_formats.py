"""Writing one table of points to one file, in Parquet, CSV or JSON Lines.

Every format holds the same columns as :data:`~powerp_async.models.POINT_SCHEMA`.

- Parquet keeps every type as it is, zstd-compressed (but for columns that are all
  null). The columns that repeat one label on many rows (``database_id``, ``index``,
  ``aggregation``) are dictionary-encoded, timestamps are delta-encoded (they rise by
  one window within a signal), and statistics are written for the timestamp and value
  columns only: statistics of the label columns would cost a fifth of the write and
  tell little that the dictionary and the folder names do not.
- CSV is UTF-8 with a byte-order mark, so spreadsheets detect the encoding; strings
  are quoted, timestamps are ISO 8601 in UTC (``...T10:00:01.000000Z``), null is an
  empty field, floats are the shortest text that reads back to the same number, with a
  decimal point kept in whole ones (``0.0``, so a reader that guesses types from the
  text reads a float column as floats), and NaN and the infinities are ``NaN``,
  ``Infinity`` and ``-Infinity``, as in JSON Lines.
  pandas and DuckDB read those three as float NaN and infinities. pyarrow reads the
  infinities, but counts ``NaN`` among its default null markers: pass
  ``ConvertOptions(null_values=[""], strings_can_be_null=True,
  quoted_strings_can_be_null=False)`` to keep NaN apart from null, and a null text
  (an empty field) apart from an empty one (``""``).
- JSON Lines writes one object per point. JSON has no token for NaN or the infinities,
  so in ``value_float`` they are written as the strings ``"NaN"``, ``"Infinity"`` and
  ``"-Infinity"``; a string in that field can mean nothing else.

CSV stays exact by default: a text starting with ``=`` is written as it is. For files
meant to be opened in a spreadsheet, ``neutralise_formulas`` prefixes every text cell
that a spreadsheet could run as a formula (one starting with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return, the triggers OWASP lists for CSV injection) with a
single quote, so it shows as text. Only text columns are touched, never a number (nor
a text that is one, such as an integer too large for 64 bits), and
the quote is then part of the value: such a file no longer reads back exactly.

The CSV text is built column by column with Arrow compute rather than by pyarrow's CSV
writer, which spells the special floats ``nan``, ``inf`` and ``-inf`` and writes whole
floats without a decimal point, with no option to change either. Every other field is
the same text that writer produces, byte for byte.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import IO, Final, Literal

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ._checks import PartCheck, sync_and_check

Format = Literal["parquet", "csv", "jsonl"]
FORMATS: Final[tuple[Format, ...]] = ("parquet", "csv", "jsonl")
SUFFIXES: Final[dict[str, str]] = {
    "parquet": ".parquet",
    "csv": ".csv",
    "jsonl": ".jsonl",
}

_LABEL_COLUMNS: Final = ["database_id", "index", "aggregation"]
_STATISTICS_COLUMNS: Final = [
    "timestamp",
    "value_float",
    "value_int",
    "value_bool",
    "value_text",
]
_BOM: Final = "\ufeff".encode()
_CSV_BATCH_ROWS: Final = 65_536
_JSONL_BATCH_ROWS: Final = 16_384
_NAN_TEXT: Final = "NaN"
_INFINITY_TEXTS: Final = {math.inf: "Infinity", -math.inf: "-Infinity"}
_FORMULA_START: Final = r"^[=+\-@\t\r]"
"""Text a spreadsheet may take as a formula, per OWASP's CSV injection advice."""
_FORMULA_GUARD: Final = "'"
_WHOLE_NUMBER: Final = r"^-?[0-9]+$"
_NUMBER: Final = r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$"
"""A number written as text, such as an integer too large for 64 bits: never guarded,
since a spreadsheet reads it as the number it is and a quote would change it."""


def write_file(
    table: pa.Table, path: Path, fmt: Format, *, neutralise_formulas: bool = False
) -> PartCheck:
    """Write ``table`` to ``path`` and flush it to disk; returns its size and digest.

    ``neutralise_formulas`` applies to CSV only; see the module docstring.
    """
    if fmt == "csv":
        _write_csv(table, path, neutralise_formulas=neutralise_formulas)
    else:
        _WRITERS[fmt](table, path)

    return sync_and_check(path)


def _write_parquet(table: pa.Table, path: Path) -> None:
    pq.write_table(
        table,
        path,
        compression=_codecs(table),
        use_dictionary=_LABEL_COLUMNS,
        write_statistics=_STATISTICS_COLUMNS,
        column_encoding={"timestamp": "DELTA_BINARY_PACKED"},
    )


def _codecs(table: pa.Table) -> dict[str, str]:
    """zstd for every column holding a value: an all-null column is a few bytes of
    levels, which compressing only costs the set-up of a zstd context."""
    return {
        name: "zstd" if column.null_count < len(column) else "none"
        for name, column in zip(table.column_names, table.columns, strict=True)
    }


def _with_text_timestamps(table: pa.Table) -> pa.Table:
    stamps = pc.strftime(table["timestamp"], format="%Y-%m-%dT%H:%M:%SZ")
    position = table.schema.get_field_index("timestamp")
    return table.set_column(position, "timestamp", stamps)


def _write_csv(
    table: pa.Table, path: Path, *, neutralise_formulas: bool = False
) -> None:
    text = _with_text_timestamps(table)
    with path.open("wb") as sink:
        sink.write(_BOM)
        names = pa.array(text.column_names, pa.string())
        _write_line(sink, _csv_field(names), ",")
        for batch in text.to_batches(max_chunksize=_CSV_BATCH_ROWS):
            if batch.num_rows:
                fields = [
                    _csv_field(column, neutralise_formulas) for column in batch.columns
                ]
                lines = pc.binary_join_element_wise(*fields, ",")
                _write_line(sink, lines, "\n")


def _write_line(sink: IO[bytes], values: pa.Array, separator: str) -> None:
    """Write ``values`` joined by ``separator``, then a newline."""
    as_one_list = pa.ListArray.from_arrays(
        pa.array([0, len(values)], pa.int32()), values
    )
    sink.write(pc.binary_join(as_one_list, separator)[0].as_buffer())
    sink.write(b"\n")


def _csv_field(column: pa.Array, neutralise_formulas: bool = False) -> pa.Array:
    """A column's CSV text: strings quoted, null empty, special floats spelled out."""
    if pa.types.is_string(column.type):
        if neutralise_formulas:
            column = _neutralised(column)
        escaped = pc.replace_substring(column, '"', '""')
        text = pc.binary_join_element_wise('"', escaped, '"', "")
    else:
        text = pc.cast(column, pa.string())

    if pa.types.is_floating(column.type):
        # A float keeps a decimal point ("0.0", not "0"): a reader that guesses a
        # column's type from its text would take a column of whole numbers for an
        # integer one, and no longer read a folder whose files it guessed apart.
        whole = pc.match_substring_regex(text, _WHOLE_NUMBER)
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
        text = pc.if_else(pc.is_nan(column), _NAN_TEXT, text)
        for infinity, spelled in _INFINITY_TEXTS.items():
            text = pc.if_else(pc.equal(column, infinity), spelled, text)

    return pc.fill_null(text, "")


def _neutralised(column: pa.Array) -> pa.Array:
    """``column`` with a quote before each text a spreadsheet could run."""
    risky = pc.and_(
        pc.match_substring_regex(column, _FORMULA_START),
        pc.invert(pc.match_substring_regex(column, _NUMBER)),
    )
    guarded = pc.binary_join_element_wise(_FORMULA_GUARD, column, "")
    return pc.if_else(risky, guarded, column)


def _write_jsonl(table: pa.Table, path: Path) -> None:
    # A batch of rows at a time: Python dicts of a whole flush would take several
    # times the memory of its columns.
    text = _with_text_timestamps(table)
    with path.open("wb") as sink:
        for batch in text.to_batches(max_chunksize=_JSONL_BATCH_ROWS):
            for row in batch.to_pylist():
                value = row["value_float"]
                if value is not None:
                    row["value_float"] = json_float(value)
                sink.write(orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE))


def json_float(value: float) -> float | str:
    """``value`` for JSON, which has no token for NaN or the infinities: those are
    spelled ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (a JSON writer would make
    them null, which they are not)."""
    if math.isfinite(value):
        return value

    return _INFINITY_TEXTS.get(value, _NAN_TEXT)


_WRITERS: Final[dict[str, Callable[[pa.Table, Path], None]]] = {
    "parquet": _write_parquet,
    "csv": _write_csv,
    "jsonl": _write_jsonl,
}
