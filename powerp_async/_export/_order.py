"""A part's rows in signal and time order, as a stable sort would leave them, cheaply.

A flush holds consecutive answers for the same signals, each already in signal and
time order, so the whole is a few hundred sorted runs. Arrow's sort on a string and a
timestamp column compares texts at every step and does not use those runs; here each
row gets one 64-bit key instead, the rank of its index among the part's distinct
indexes above its time, and numpy's stable sort (a merge of runs for int64) orders
the keys. Ties (the same signal and time in two aggregations) keep their order, as
they do under ``Table.sort_by``, so a part's bytes do not depend on which is used.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

TIME_BITS: Final = 40
"""Microseconds of one part's time span that a key holds: some 12 days, where a part
spans one UTC day at most."""

_KEYS: Final = [("index", "ascending"), ("timestamp", "ascending")]


def by_signal_and_time(table: pa.Table) -> pa.Table:
    """``table`` ordered by index, then timestamp; rows equal in both keep their
    order."""
    if table.num_rows < 2:
        return table

    times = table.column("timestamp").cast(pa.int64()).to_numpy()
    first, last = int(times.min()), int(times.max())
    if last - first >= 1 << TIME_BITS:
        return table.sort_by(_KEYS)  # a span no part has; correct, only slower

    keys = _index_ranks(table.column("index")) << TIME_BITS
    keys |= times - first
    if np.all(keys[1:] >= keys[:-1]):
        return table

    order = np.argsort(keys, kind="stable")
    # A column of nulls alone (the value columns of other types) reads the same in
    # any order; taking it would cost as much as taking values.
    columns = [
        column if column.null_count == len(column) else column.take(order)
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


def _index_ranks(indexes: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    """Each row's index as its position among the distinct indexes in Arrow's
    (bytewise) order of texts."""
    distinct = pc.unique(indexes)
    ordered = distinct.take(pc.sort_indices(distinct))
    ranks = pc.index_in(indexes, value_set=ordered)
    if isinstance(ranks, pa.ChunkedArray):
        ranks = ranks.combine_chunks()
    ranked: npt.NDArray[np.int64] = ranks.to_numpy(zero_copy_only=False)
    return ranked.astype(np.int64)
