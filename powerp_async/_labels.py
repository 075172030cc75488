"""Which edge of a window the server labels its points with, learnt from its answers.

A window is named by its start or by its stop (Flux uses the stop); the API does not
say which. A block ``[start, end)`` therefore accepts points at both ``start`` and
``end`` until the side is known. A server that sent both would give the window at each
edge twice across neighbouring blocks, so once either edge shows up, the other is
dropped for the rest of the run. When a block holds both edges at once, the stop is
taken, as Flux does.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from .models import Block

Side = Literal["start", "stop"]


class LabelSide:
    """Learns the label side from the first block that shows one, then enforces it."""

    def __init__(self) -> None:
        self.side: Side | None = None

    def keep_one_side(self, block: Block, batch: pa.RecordBatch) -> pa.RecordBatch:
        """``batch`` without points on the edge that is not the label side."""
        if batch.num_rows == 0:
            return batch

        stamps = batch.column("timestamp").cast(pa.int64())
        at_start = pc.equal(stamps, block.start_us)
        at_end = pc.equal(stamps, block.end_us)
        if self.side is None:
            self.side = _side_shown(pc.any(at_start).as_py(), pc.any(at_end).as_py())

        foreign = {"stop": at_start, "start": at_end, None: None}[self.side]
        if foreign is None or not pc.any(foreign).as_py():
            return batch
        return batch.filter(pc.invert(foreign))


def _side_shown(at_start: bool, at_end: bool) -> Side | None:
    if at_end:
        return "stop"
    return "start" if at_start else None
