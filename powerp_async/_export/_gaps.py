"""Where a block came back without data: the gaps an export's report lists.

A gap is a run of whole windows ``[start, end)`` in which one signal returned no
point, at the resolution of the export's window. The journal records each block's
gaps as the block is committed, so the report covers every run into the folder.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ..models import Block


def block_gaps(
    block: Block, batch: pa.RecordBatch, side: str | None
) -> list[dict[str, Any]]:
    """Every run of windows with no point, per signal of ``block``.

    ``side`` is the edge the server labels windows by (``"start"`` or ``"stop"``);
    unknown, it is taken as the stop, as Flux does.
    """
    windows = block.window_count
    starts = batch.column("timestamp").cast(pa.int64()).to_numpy(zero_copy_only=False)
    if side != "start":
        starts = starts - block.window_us
    numbers = (starts - block.start_us) // block.window_us
    indexes = batch.column("index")
    gaps: list[dict[str, Any]] = []
    for index in block.indexes:
        mine = numbers[pc.equal(indexes, index).to_numpy(zero_copy_only=False)]
        present = np.zeros(windows, dtype=bool)
        present[mine[(mine >= 0) & (mine < windows)]] = True
        for first, last in _missing_runs(present):
            gaps.append(
                {
                    "database_id": block.database_id,
                    "index": index,
                    "aggregation": block.aggregation,
                    "start": block.start_us + first * block.window_us,
                    "end": block.start_us + last * block.window_us,
                }
            )
    return gaps


def _missing_runs(
    present: np.ndarray[Any, np.dtype[np.bool_]],
) -> list[tuple[int, int]]:
    """The ``[first, last)`` runs of False in ``present``."""
    edges = np.diff(np.concatenate(([1], present.astype(np.int8), [1])))
    firsts = np.flatnonzero(edges == -1)
    lasts = np.flatnonzero(edges == 1)
    return list(zip(firsts.tolist(), lasts.tolist(), strict=True))
