"""Queries packed across planned blocks against the simulator's size limit.

Five slices of 20 signals x 310 five-second windows (6,200 points) against a limit
of 2,000 points. The first block is refused, then its first half (155 windows);
quarters of 78 and 77 windows are taken, so 78 windows (1,560 points) are known to
fit. The second block left whole before that was known and is cut on its own. From
the third on, blocks are cut in queries of 78 windows, and the short rest of each is
carried onto the start of the next block of the same signals: 310 windows are
3 x 78 + 76, so the rest of 76 windows goes out with the first 2 of the next block.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pyarrow as pa
import pytest
from aiohttp import web

from powerp_async import RunStats
from powerp_async._assembly import BlockResult
from powerp_async.errors import ServerError
from powerp_async.events import BlockDone, BlockFailed, Event, RequestDone
from powerp_async.models import Block, Measurement
from powerp_async.planning import TimeRange, plan_blocks
from powerp_async.simulator import Scenario, Simulator, SizeLimit
from powerp_async.simulator._exchange import limited_query
from powerp_async.simulator._settings import Handler

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points, largest_group, one_at_a_time

WINDOW_US = 5_000_000
SLICE_WINDOWS = 310
START = ANCHOR - timedelta(microseconds=5 * SLICE_WINDOWS * WINDOW_US)
SPAN = TimeRange.snap(START, ANCHOR, WINDOW_US)


class Queries:
    """Counts every query the simulator is sent, by shape and status; answers 500
    to those that cross the start of ``failing`` (one block's), when set."""

    def __init__(self) -> None:
        self.seen: Counter[tuple[int, int, int]] = Counter()
        self.failing: Block | None = None

    async def __call__(self, request: web.Request, handler: Handler):
        query = await limited_query(request)
        if query is None:
            return await handler(request)

        boundary = self.failing.start_us if self.failing else None
        if boundary is not None and query.start_us < boundary < query.end_us:
            response: web.StreamResponse = web.json_response(
                {"error": "historian_error"}, status=500
            )
        else:
            response = await handler(request)

        shape = (len(query.signals), query.window_count, response.status)
        self.seen[shape] += 1
        return response


def twenty_signals(everything: list[Measurement]) -> list[Measurement]:
    """20 signals of the largest group, all with data before the range starts."""
    return [
        m
        for m in largest_group(everything)
        if m.first_data_point is None or m.first_data_point <= START
    ][:20]


async def fetch_all(
    settings, queries: Queries, *, label: str = "stop", failing: int | None = None
) -> tuple[list[BlockResult], list[Block], list[Measurement], Simulator, RunStats]:
    limited = replace(
        settings,
        label=label,
        scenario=Scenario(size=SizeLimit(max_points=2_000)),
        policies=(queries,),
    )
    stats = RunStats()
    sent: list[Block] = []
    finished: list[Event] = []

    def count(event: Event) -> None:
        if isinstance(event, RequestDone):
            sent.append(event.block)
        elif isinstance(event, BlockDone | BlockFailed):
            finished.append(event)

    async with (
        Simulator(limited) as simulator,
        one_at_a_time(simulator, max_attempts=2, on_event=count) as client,
    ):
        signals = twenty_signals(await client.measurements())
        plan = list(plan_blocks(signals, SPAN, block_size=20))
        if failing is not None:
            queries.failing = plan[failing]
        engine = client.engine(stats=stats)
        engine.learn_types(signals)
        async with engine.run(plan) as stream:
            results = [result async for result in stream]

    assert len(sent) == stats.requests
    # Blocks are counted and told as planned, once each, however many queries.
    assert [event.block for event in finished] == [r.block for r in results]
    assert [isinstance(e, BlockDone) for e in finished] == [r.ok for r in results]
    assert stats.blocks_done == sum(r.ok for r in results)
    assert stats.blocks_failed == sum(not r.ok for r in results)
    return results, plan, signals, simulator, stats


def table_of(results: list[BlockResult]) -> pa.Table:
    return pa.Table.from_batches([r.batch for r in results if r.batch is not None])


@pytest.mark.parametrize("label", ["stop", "start"])
async def test_packed_queries_bring_every_planned_block_once_whole_and_exact(
    settings, label
) -> None:
    queries = Queries()
    results, plan, signals, simulator, stats = await fetch_all(
        settings, queries, label=label
    )

    assert [len(p.indexes) for p in plan] == [20] * 5
    assert {p.window_count for p in plan} == {SLICE_WINDOWS}
    # Block 1: 413, 413, 78 + 77 + 78 + 77. Block 2: 78 + 78 + 77 + 77 as planned.
    # Blocks 3 to 5 packed: 930 windows in 11 queries of 78 and a last one of 72
    # (each block's rest joined to the next one's first windows), where cut one by
    # one they would take 12 of 78 and 77.
    assert queries.seen == {
        (20, 310, 413): 1,
        (20, 155, 413): 1,
        (20, 78, 200): 2 + 2 + 11,
        (20, 77, 200): 2 + 2,
        (20, 72, 200): 1,
    }
    assert stats.requests == queries.seen.total() == 22
    assert (stats.blocks_done, stats.blocks_failed) == (5, 0)
    assert (stats.splits, stats.presplit_blocks) == (2, 5)
    # Each planned block arrives once, and whole: exactly its own points.
    assert sorted(r.block.unit_id for r in results) == sorted(p.unit_id for p in plan)
    for result in results:
        assert result.ok
        block = result.block
        own = TimeRange(block.start_us, block.end_us, WINDOW_US)
        assert_exact(
            pa.Table.from_batches([result.batch]),
            expected_points(simulator.tenant, signals, own),
        )
    assert_exact(table_of(results), expected_points(simulator.tenant, signals, SPAN))


async def test_a_failed_query_across_two_blocks_fails_both(
    settings, monkeypatch
) -> None:
    monkeypatch.setattr("powerp_async._engine.backoff_s", lambda attempt: 0.01)
    queries = Queries()
    # The query joining the rest of the third block to the start of the fourth.
    results, plan, signals, simulator, stats = await fetch_all(
        settings, queries, failing=3
    )

    failed = {r.block.unit_id: r.error for r in results if not r.ok}
    assert set(failed) == {plan[2].unit_id, plan[3].unit_id}
    assert (stats.blocks_done, stats.blocks_failed) == (3, 2)
    assert all(isinstance(error, ServerError) for error in failed.values())
    assert all(r.batch is None for r in results if not r.ok)
    assert queries.seen[(20, 78, 500)] == 2  # tried twice, then given up
    # Every block once; the others whole and exact.
    assert sorted(r.block.unit_id for r in results) == sorted(p.unit_id for p in plan)
    kept = [plan[0], plan[1], plan[4]]
    expected: dict = {}
    for block in kept:
        own = TimeRange(block.start_us, block.end_us, WINDOW_US)
        expected |= expected_points(simulator.tenant, signals, own)
    assert_exact(table_of([r for r in results if r.ok]), expected)


async def test_with_room_for_one_block_rests_go_alone_and_the_run_ends(
    settings, monkeypatch
) -> None:
    # A block waiting for its rest keeps its points counted: with room for one
    # block only, each rest is sent alone before the next block may start.
    monkeypatch.setattr("powerp_async._engine.MAX_POINTS_IN_FLIGHT", 7_000)
    queries = Queries()
    results, plan, signals, simulator, stats = await fetch_all(settings, queries)

    # Block 1 as before; the others start once the one before is done, so all are
    # packed, each in three queries of 78 windows and its rest of 76.
    assert queries.seen == {
        (20, 310, 413): 1,
        (20, 155, 413): 1,
        (20, 78, 200): 2 + 4 * 3,
        (20, 77, 200): 2,
        (20, 76, 200): 4,
    }
    assert (stats.splits, stats.presplit_blocks) == (2, 5)
    assert sorted(r.block.unit_id for r in results) == sorted(p.unit_id for p in plan)
    assert_exact(table_of(results), expected_points(simulator.tenant, signals, SPAN))
