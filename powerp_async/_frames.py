"""Points and signal metadata as Arrow tables and pandas DataFrames.

pandas is an optional extra (``pip install 'powerp-async[pandas]'``): it is imported
only when a DataFrame is asked for, and its absence is then one clear ``ImportError``.

In a DataFrame every column is Arrow-backed (``pandas.ArrowDtype``) except
``timestamp``, which is pandas' own ``datetime64[us, UTC]``. Arrow-backed columns keep
what numpy dtypes would lose: an integer column with nulls stays exact ``int64``
instead of turning into float64, and a float column keeps NaN apart from null.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from ._arguments import as_point_table, as_signals
from .models import POINT_SCHEMA, Measurement

if TYPE_CHECKING:
    import pandas as pd

JOINED_COLUMNS: Final = ("name", "unit", "data_type")
"""The metadata columns :func:`points_frame` adds to the points."""

MEASUREMENT_SCHEMA: Final = pa.schema(
    [
        pa.field("database_id", pa.int64(), nullable=False),
        pa.field("index", pa.string(), nullable=False),
        pa.field("aggregation", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("unit", pa.string()),
        pa.field("data_type", pa.string()),
        pa.field("default_agg", pa.string()),
        pa.field("first_data_point", pa.timestamp("us", tz="UTC")),
        pa.field("min_value", pa.float64()),
        pa.field("max_value", pa.float64()),
    ]
)
"""Columns of :func:`measurements_table`: one row per signal."""

PANDAS_MISSING: Final = (
    "pandas is needed for DataFrames but is not installed; install the extra with "
    "pip install 'powerp-async[pandas]'"
)


def measurements_table(signals: Iterable[Measurement]) -> pa.Table:
    """The signals' metadata as an Arrow table, one row per signal.

    ``aggregation`` is the one the signal's points are fetched with, so the table
    joins a table of points on ``database_id``, ``index`` and ``aggregation``.

    >>> from powerp_async import Measurement, measurements_table
    >>> table = measurements_table([Measurement(1, "7", name="Wind speed")])
    >>> table.select(["database_id", "index", "aggregation", "name"]).to_pylist()
    [{'database_id': 1, 'index': '7', 'aggregation': 'last', 'name': 'Wind speed'}]
    """
    rows = [_metadata_row(signal) for signal in as_signals(signals)]
    return pa.Table.from_pylist(rows, schema=MEASUREMENT_SCHEMA)


def measurements_frame(signals: Iterable[Measurement]) -> pd.DataFrame:
    """The signals' metadata as a pandas DataFrame (see :func:`measurements_table`).

    >>> from powerp_async import Measurement, measurements_frame
    >>> frame = measurements_frame([Measurement(1, "7", unit_symbol="m/s")])
    >>> frame[["index", "unit"]].to_dict("records")
    [{'index': '7', 'unit': 'm/s'}]
    """
    return to_frame(measurements_table(signals))


def points_frame(
    table: pa.Table | pa.RecordBatch, signals: Iterable[Measurement]
) -> pd.DataFrame:
    """A table of points as a DataFrame, with each signal's name, unit and data type.

    ``table`` has the columns of ``POINT_SCHEMA``: ``fetch_table``'s answer, or one
    batch that ``fetch`` gave.

    The metadata is joined on (``database_id``, ``index``, ``aggregation``); a point
    whose signal is not among ``signals`` keeps null metadata. Rows keep the table's
    order (by signal and time from ``fetch_table``). Values keep their types (see the
    module's notes on dtypes).

    >>> import pyarrow as pa
    >>> from datetime import UTC, datetime
    >>> from powerp_async import POINT_SCHEMA, Measurement, points_frame
    >>> points = pa.Table.from_pylist(
    ...     [{"database_id": 1, "index": "7", "aggregation": "last",
    ...       "timestamp": datetime(2026, 1, 1, tzinfo=UTC), "value_int": 2**62 + 1}],
    ...     schema=POINT_SCHEMA,
    ... )
    >>> frame = points_frame(points, [Measurement(1, "7", name="Counter")])
    >>> row = frame.iloc[0]
    >>> row["name"], row["value_int"], str(row["timestamp"])
    ('Counter', 4611686018427387905, '2026-01-01 00:00:00+00:00')
    """
    return to_frame(with_metadata(table, signals))


def with_metadata(
    table: pa.Table | pa.RecordBatch, signals: Iterable[Measurement]
) -> pa.Table:
    """``table`` with the signals' name, unit and data type, rows in their order."""
    table = as_point_table(table)
    metadata = measurements_table(_first_of_each(as_signals(signals)))
    # A lookup instead of a hash join: a join would reorder the rows, and sorting
    # them back costs several times the lookup (measured on 360,000 points).
    rows = pc.index_in(_join_key(table), value_set=_join_key(metadata))
    points = table.select(POINT_SCHEMA.names)
    for name in JOINED_COLUMNS:
        points = points.append_column(
            MEASUREMENT_SCHEMA.field(name), metadata[name].take(rows)
        )

    return points


def _join_key(table: pa.Table) -> pa.ChunkedArray:
    """One text per row that stands for its (database_id, index, aggregation)."""
    parts = [pc.cast(table["database_id"], pa.string()), table["index"]]
    return pc.binary_join_element_wise(*parts, table["aggregation"], "\x1f")


def to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas: Arrow-backed columns, timestamps ``datetime64[us, UTC]``."""
    pandas = import_pandas()

    def dtype_for(arrow_type: pa.DataType) -> Any:
        # None lets pyarrow choose: pandas' own tz-aware datetime64 for timestamps.
        return (
            None if pa.types.is_timestamp(arrow_type) else pandas.ArrowDtype(arrow_type)
        )

    return table.to_pandas(types_mapper=dtype_for)


def import_pandas() -> Any:
    """The pandas module, or an ImportError that names the extra to install."""
    try:
        import pandas
    except ImportError as error:
        raise ImportError(PANDAS_MISSING, name="pandas") from error

    return pandas


def _metadata_row(signal: Measurement) -> dict[str, Any]:
    return {
        "database_id": signal.database_id,
        "index": signal.index,
        "aggregation": signal.aggregation,
        "name": signal.name,
        "unit": signal.unit_symbol,
        "data_type": None if signal.data_type is None else signal.data_type.value,
        "default_agg": signal.default_agg,
        "first_data_point": signal.first_data_point,
        "min_value": signal.min_value,
        "max_value": signal.max_value,
    }


def _first_of_each(signals: Iterable[Measurement]) -> list[Measurement]:
    """One signal per join key, the first listed, so a signal listed twice never
    doubles the points it is joined to."""
    chosen: dict[tuple[int, str, str], Measurement] = {}
    for signal in signals:
        chosen.setdefault(
            (signal.database_id, signal.index, signal.aggregation), signal
        )

    return list(chosen.values())
