"""A size limit met by the engine: learnt from one 413, applied to later blocks."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pyarrow as pa

from powerp_async import RunStats
from powerp_async.events import BlockSizeLearned, Event, RequestDone
from powerp_async.planning import TimeRange
from powerp_async.simulator import Scenario, Simulator, SizeLimit

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points, largest_group, one_at_a_time

START = ANCHOR - timedelta(hours=2)
WINDOW_US = 5_000_000


async def test_later_blocks_go_out_cut_in_time_to_the_size_learnt(settings) -> None:
    limited = replace(settings, scenario=Scenario(size=SizeLimit(max_points=2_000)))
    requests: Counter[tuple[int, int, int | None]] = Counter()
    learnt: list[int | None] = []

    def count(event: Event) -> None:
        if isinstance(event, BlockSizeLearned):
            learnt.append(event.max_points)
        if isinstance(event, RequestDone):
            block = event.block
            requests[len(block.indexes), block.window_count, event.status] += 1

    stats = RunStats()
    async with (
        Simulator(limited) as simulator,
        one_at_a_time(simulator, on_event=count) as client,
    ):
        signals = largest_group(await client.measurements())
        signals = signals[:20]
        batches: list[pa.RecordBatch] = []
        async with client.fetch(
            signals, START, ANCHOR, window="5s", stats=stats
        ) as results:
            async for result in results:
                assert result.batch is not None
                batches.append(result.batch)

    # Five slices of 20 signals x 288 windows (5,760 points): the first is refused,
    # then its first half; quarters (1,440 points) are taken. The second half was
    # cut before it left, and so was every later block: 20 quarters, all 20 signals.
    assert requests == {
        (20, 288, 413): 1,
        (20, 144, 413): 1,
        (20, 72, 200): 20,
    }
    assert (stats.splits, stats.presplit_blocks) == (2, 5)
    assert learnt == [None, None, 1_440]
    span = TimeRange.snap(START, ANCHOR, WINDOW_US)
    table = pa.Table.from_batches(batches)
    assert_exact(table, expected_points(simulator.tenant, signals, span))
