"""A size limit met by the engine: learnt from one 413, applied to later blocks."""

from __future__ import annotations

import logging
import re
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pyarrow as pa
import pytest
from aiohttp import web

from powerp_async import FetchFailedError, RunStats, ServerUnavailableError
from powerp_async._time import to_epoch_us
from powerp_async.events import BlockSizeLearned, Event, RequestDone
from powerp_async.planning import TimeRange
from powerp_async.simulator import Scenario, Simulator, SizeLimit
from powerp_async.simulator._app import QUERY_PATH
from powerp_async.simulator._exchange import limited_query, parsed_query
from powerp_async.simulator._settings import Handler

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points, largest_group, one_at_a_time

START = ANCHOR - timedelta(hours=2)
WINDOW_US = 5_000_000


async def test_later_blocks_go_out_cut_in_time_to_the_size_learnt(settings) -> None:
    size = SizeLimit(max_points=2_000)
    requests, stats, table, expected = await _fetch_twenty(settings, size)
    learnt = requests.learnt

    # Five slices of 20 signals x 288 windows (5,760 points): the first is refused,
    # then its first half; quarters (1,440 points) are taken. The second half was
    # cut before it left, and so was every later block: 20 quarters, all 20 signals.
    assert Counter(requests.sent) == {
        (20, 288, 413): 1,
        (20, 144, 413): 1,
        (20, 72, 200): 20,
    }
    assert (stats.splits, stats.presplit_blocks) == (2, 5)
    assert learnt == [None, None, 1_440]
    assert_exact(table, expected)


class Requests:
    """Queries as sent, by signals, windows and the answer's status (``None`` for
    none in time), in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, int, int | None]] = []
        self.learnt: list[int | None] = []

    def __call__(self, event: Event) -> None:
        if isinstance(event, BlockSizeLearned):
            self.learnt.append(event.max_points)
        if isinstance(event, RequestDone):
            block = event.block
            self.sent.append((len(block.indexes), block.window_count, event.status))


async def _fetch_twenty(
    settings, size: SizeLimit, **options
) -> tuple[Requests, RunStats, pa.Table, dict]:
    limited = replace(settings, scenario=Scenario(size=size))
    requests = Requests()
    stats = RunStats()
    async with (
        Simulator(limited) as simulator,
        one_at_a_time(simulator, on_event=requests, **options) as client,
    ):
        signals = largest_group(await client.measurements())[:20]
        batches: list[pa.RecordBatch] = []
        async with client.fetch(
            signals, START, ANCHOR, window="5s", stats=stats
        ) as results:
            async for result in results:
                assert result.batch is not None
                batches.append(result.batch)

    span = TimeRange.snap(START, ANCHOR, WINDOW_US)
    expected = expected_points(simulator.tenant, signals, span)
    return requests, stats, pa.Table.from_batches(batches), expected


@pytest.mark.parametrize(
    ("hold_s", "timeout_s", "status"),
    [
        # A quarter query is answered within a second on a loaded machine; a 504 counts
        # as a gateway giving up after 2 s, or a quarter of the client's timeout.
        pytest.param(1.5, 1.0, None, id="client timeout"),
        pytest.param(0.5, 1.5, 504, id="gateway timeout"),
        pytest.param(2.0, 60.0, 504, id="gateway timeout long before the client's"),
    ],
)
async def test_heavy_queries_left_unanswered_teach_the_size_as_a_413_does(
    settings, caplog, hold_s: float, timeout_s: float, status: int | None
) -> None:
    size = SizeLimit(max_points=2_000, answer="timeout", hold_s=hold_s)
    with caplog.at_level(logging.WARNING, "powerp_async.engine.sizes"):
        requests, stats, table, expected = await _fetch_twenty(
            settings, size, timeout_s=timeout_s
        )

    # Told once, without -v on the command line: the wait shows no progress.
    told = [r.getMessage() for r in caplog.records if r.name.endswith(".sizes")]
    what = (
        "was answered 504 by a gateway that gave up waiting for it"
        if status == 504
        else f"got no answer within {timeout_s:g} s"
    )
    assert told == [
        f"database 1 last: a query of 5,760 points {what} and is taken as too large "
        "for the server; queries of this group are cut in quarters until they are "
        "answered (a shorter timeout_s finds the size sooner)"
    ]

    # As with 413 (above), but that the first slice goes out twice, since one query
    # unanswered with nothing to compare it with is bad luck. Then it is cut in
    # quarters, not halves, as each step down costs a whole timeout: every later
    # query is a quarter slice, found with one timeout less; nothing is lost.
    assert Counter(requests.sent) == {(20, 288, status): 2, (20, 72, 200): 20}
    assert (stats.splits, stats.retries, stats.blocks_failed) == (1, 1, 0)
    failures = (0, 1) if status == 504 else (1, 0)
    assert (stats.transport_errors, stats.server_errors) == failures
    assert requests.learnt == [None, 1_440]
    assert_exact(table, expected)


async def test_a_server_silent_to_small_queries_too_is_down(
    settings, monkeypatch
) -> None:
    monkeypatch.setattr("powerp_async._engine.backoff_s", lambda attempt: 0.0)
    size = SizeLimit(max_points=1, answer="timeout", hold_s=0.3)
    limited = replace(settings, scenario=Scenario(size=size))
    requests = Requests()
    stats = RunStats()
    async with (
        Simulator(limited) as simulator,
        one_at_a_time(
            simulator,
            on_event=requests,
            timeout_s=0.1,
            max_attempts=2,
            max_outage_s=0.5,
        ) as client,
    ):
        signals = largest_group(await client.measurements())[:1]
        start = ANCHOR - timedelta(seconds=320)
        with pytest.raises(ServerUnavailableError) as caught:
            await _drain(client.fetch(signals, start, ANCHOR, window="5s", stats=stats))

    # Every failure was a timeout, so the error says what such a server may be doing.
    assert re.fullmatch(
        r"the server failed every request for \d+ s, each request left unanswered "
        r"until the client's timeout of 0\.1 s; stopped after 0 blocks \(0 points\) "
        r"were fetched\. A server that holds queries too large for it until they "
        r"time out looks like this: fewer signals per query \(block_size, "
        r"--block-size\) or a coarser window makes each query smaller\. Ask again "
        r"once the server is back",
        str(caught.value),
    ), str(caught.value)

    # 64 windows of one signal sent twice, then cut in quarters below an eighth (to
    # 4 points) with nothing answered: those fail as on a server that is down, and
    # the outage, counted from the first failure not put down to size, ends the
    # run. How many tries of 4 points fit before it ends is a matter of timing.
    cutting = [(1, 64, None)] * 2 + [(1, 16, None)]
    floor = requests.sent[len(cutting) :]
    assert requests.sent[: len(cutting)] == cutting
    assert floor
    assert set(floor) == {(1, 4, None)}
    # The first query of 64, and every one of 4: the failures not put down to size.
    assert (stats.splits, stats.transport_errors) == (2, 1 + len(floor))
    assert requests.learnt == [None, None]


async def test_a_group_refused_at_one_signal_over_one_window_is_sent_no_more(
    settings,
) -> None:
    async def refuse_every_query(request: web.Request, handler: Handler):
        if await limited_query(request) is None:
            return await handler(request)
        return web.json_response({"error": "request_too_large"}, status=413)

    refusing = replace(settings, policies=(refuse_every_query,))
    requests = Requests()
    stats = RunStats()
    async with (
        Simulator(refusing) as simulator,
        one_at_a_time(simulator, on_event=requests) as client,
    ):
        signals = largest_group(await client.measurements())[:2]
        start = ANCHOR - timedelta(hours=1)
        with pytest.raises(FetchFailedError) as caught:
            await _drain(client.fetch(signals, start, ANCHOR, window="5s", stats=stats))

    # Three slices of 2 signals x 240 windows: the first is halved down to one
    # signal over one window, each half refused; then nothing more is sent, where
    # each of the 1,440 signal-windows of the hour used to be asked for alone.
    assert requests.sent == [
        (2, 240, 413),
        (2, 120, 413),
        (2, 60, 413),
        (2, 30, 413),
        (2, 15, 413),
        (2, 8, 413),
        (2, 4, 413),
        (2, 2, 413),
        (2, 1, 413),
        (1, 1, 413),
    ]
    assert stats.blocks_failed == 3
    first = caught.value.failures[0][1]
    assert str(first).startswith(
        f"database {signals[0].database_id} {signals[0].aggregation}: the server "
        "refused even one signal over one window as too large ("
    )
    assert str(first).endswith(
        "so no query of this database and aggregation was sent after it"
    )


async def _drain(fetch) -> None:
    async with fetch as results:
        async for result in results:
            assert result.batch is None


@pytest.mark.parametrize("label", ["stop", "start"])
async def test_an_unaligned_query_cut_to_fit_is_cut_on_the_window_grid(
    settings, label: str
) -> None:
    # 2 signals from 0.3 s past a window's start to 0.6 s past a later one's: 181
    # windows of 5 s touched, a partial one at each end, 362 points, refused above
    # 100. Pieces must meet on window edges, or a window cut in two gives two
    # points, and the last must reach the end, or the final partial window is lost.
    size = SizeLimit(max_points=100)
    limited = replace(settings, scenario=Scenario(size=size), label=label)
    requests = Requests()
    start = START + timedelta(milliseconds=300)
    end = start + timedelta(minutes=15, milliseconds=300)
    async with (
        Simulator(limited) as simulator,
        one_at_a_time(simulator, on_event=requests) as client,
    ):
        signals = largest_group(await client.measurements())[:2]
        indexes = [m.index for m in signals]
        database, aggregation = signals[0].database_id, signals[0].aggregation
        table = await client.query(
            database, indexes, start, end, aggregation=aggregation, window="5s"
        )

    expected = {
        (database, index, aggregation, stamp): value
        for index in indexes
        for stamp, value in simulator.tenant.points(
            database,
            index,
            aggregation,
            to_epoch_us(start),
            to_epoch_us(end),
            WINDOW_US,
        )
    }
    assert len(expected) == 2 * 181
    assert_exact(table, expected)
    assert all(status in (200, 413) for _, _, status in requests.sent)
    accepted = [windows for _, windows, status in requests.sent if status == 200]
    assert sum(accepted) == 181


async def test_points_of_a_split_block_that_failed_are_not_counted(settings) -> None:
    # The last quarter of the first slice is refused as a bad request, which is not
    # retried: its block fails although its other three quarters were answered.
    first_slice_us = to_epoch_us(START)
    last_quarter_us = first_slice_us + 3 * 72 * WINDOW_US

    async def refuse_one_quarter(request: web.Request, handler: Handler):
        if request.path.lower() != QUERY_PATH.lower():
            return await handler(request)

        query = await parsed_query(request)
        if (query.start_us, query.window_count) == (last_quarter_us, 72):
            return web.json_response({"error": "bad_request"}, status=400)
        return await handler(request)

    size = SizeLimit(max_points=2_000)
    limited = replace(
        settings, scenario=Scenario(size=size), policies=(refuse_one_quarter,)
    )
    stats = RunStats()
    delivered: list[int] = []

    async def count(fetch) -> None:
        async with fetch as results:
            delivered.extend([result.batch.num_rows async for result in results])

    async with (
        Simulator(limited) as simulator,
        one_at_a_time(simulator) as client,
    ):
        signals = largest_group(await client.measurements())[:20]
        fetch = client.fetch(signals, START, ANCHOR, window="5s", stats=stats)
        with pytest.raises(FetchFailedError):
            await count(fetch)

    # The four later slices came; the first did not, though three of its quarters
    # were decoded.
    later = TimeRange.snap(START + timedelta(minutes=24), ANCHOR, WINDOW_US)
    assert (stats.blocks_done, stats.blocks_failed) == (4, 1)
    assert (
        stats.points
        == sum(delivered)
        == len(expected_points(simulator.tenant, signals, later))
    )


async def test_a_size_learnt_holds_for_the_clients_later_calls(settings) -> None:
    limited = replace(settings, scenario=Scenario(size=SizeLimit(max_points=2_000)))
    requests = Requests()
    hour = timedelta(hours=1)
    async with (
        Simulator(limited) as simulator,
        one_at_a_time(simulator, on_event=requests) as client,
    ):
        signals = largest_group(await client.measurements())[:20]
        first = await client.fetch_table(signals, START, START + hour, window="5s")
        learnt = list(requests.sent)
        requests.sent.clear()
        later = await client.fetch_table(signals, START + hour, ANCHOR, window="5s")
        database_id, aggregation = signals[0].database_id, signals[0].aggregation
        one = await client.query(
            database_id,
            [m.index for m in signals],
            START,
            START + timedelta(minutes=10),
            aggregation=aggregation,
            window="5s",
        )

    # The first call learns as a lone call does: slices of 20 minutes (240
    # windows) are refused, then their halves, and quarters are taken. The later
    # calls, the next hour and one query of 10 minutes, go out cut to that size at
    # once and meet no 413.
    assert Counter(learnt) == {(20, 240, 413): 1, (20, 120, 413): 1, (20, 60, 200): 12}
    assert Counter(requests.sent) == {(20, 60, 200): 12 + 2}
    for table, start in ((first, START), (later, START + hour)):
        span = TimeRange.snap(start, start + hour, WINDOW_US)
        assert_exact(table, expected_points(simulator.tenant, signals, span))
    ten_minutes = TimeRange.snap(START, START + timedelta(minutes=10), WINDOW_US)
    assert_exact(one, expected_points(simulator.tenant, signals, ten_minutes))


async def test_a_limit_of_signals_is_met_with_parts_over_the_whole_range(
    settings,
) -> None:
    limit = SizeLimit(max_points=10**9, max_signals=10)
    limited = replace(settings, scenario=Scenario(size=limit))
    requests = Requests()
    span = (START, START + timedelta(minutes=10))
    async with (
        Simulator(limited) as simulator,
        one_at_a_time(simulator, on_event=requests) as client,
    ):
        signals = largest_group(await client.measurements())[:20]
        first = await client.fetch_table(signals, *span, window="5s")
        learnt = Counter(requests.sent)
        requests.sent.clear()
        later = await client.fetch_table(signals, *span, window="5s")

    # No cut in time helps: the first call halves down to one window, and ten
    # signals of one window are taken. Parts of ten signals then go out over
    # their whole range, growing back as they are answered; the next call sends two.
    assert learnt[(20, 1, 413)] == 1
    assert sum(n for (s, _, status), n in learnt.items() if status == 413) == 8
    assert {s for (s, _, status) in learnt if status == 200} == {10}
    assert Counter(requests.sent) == {(10, 120, 200): 2}
    expected = expected_points(
        simulator.tenant, signals, TimeRange.snap(*span, WINDOW_US)
    )
    assert_exact(first, expected)
    assert_exact(later, expected)
