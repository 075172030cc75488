"""A signal the server refuses (400) costs only its own points, never its block's.

The simulator here lists every signal but refuses any query that holds a "retired"
one, as a server does for an index it no longer serves: the whole query of twenty
fails, whatever the other nineteen.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import orjson
import pyarrow as pa
import pytest
from aiohttp import web

from powerp_async import (
    BlockResult,
    ExportReport,
    ExportSpec,
    PowerPClient,
    export,
    plan_export,
)
from powerp_async._export._manifest import MANIFEST_NAME, read_manifest
from powerp_async._time import to_epoch_us
from powerp_async.errors import (
    BadRequestError,
    ConfigurationError,
    FetchFailedError,
    PermissionDeniedError,
)
from powerp_async.models import POINT_SCHEMA
from powerp_async.planning import TimeRange, plan_blocks, plan_totals, time_slices
from powerp_async.simulator import Scenario, Simulator, SimulatorSettings, SizeLimit

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, expected_points, one_at_a_time
from .test_engine_packing import SPAN as PACKED_SPAN
from .test_engine_packing import START as PACKED_START
from .test_engine_packing import WINDOW_US as PACKED_WINDOW_US
from .test_engine_packing import twenty_signals
from .test_export import read_dataset

START = ANCHOR - timedelta(minutes=100)
END = ANCHOR - timedelta(minutes=10)
DATABASE = 1


class Retired:
    """A policy refusing, with 400, every query that holds one of ``indexes``; it
    records the signals of every query it sees, refused or not."""

    def __init__(self, *indexes: str) -> None:
        self.indexes = set(indexes)
        self.queries: list[tuple[str, ...]] = []
        self.all_from: datetime | None = None
        """If set, every query starting then or later is refused, whatever it holds."""
        self.status = 400
        self.retired_after: datetime | None = None
        """If set, the retired indexes are refused only by queries ending after it."""

    async def __call__(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.endswith("/Query"):
            return await handler(request)

        body = orjson.loads(await request.read())
        asked = tuple(body["measurementIndexes"])
        self.queries.append(asked)
        retired = sorted(self.indexes.intersection(asked))
        end = datetime.fromisoformat(body["endTime"])
        if self.retired_after is not None and end <= self.retired_after:
            retired = []
        start = datetime.fromisoformat(body["startTime"])
        if self.all_from is not None and start >= self.all_from:
            retired = list(asked)
        if body["databaseId"] == DATABASE and retired:
            return web.json_response(
                {"error": "unknown_index", "message": f"index {retired[0]} is retired"},
                status=self.status,
            )
        return await handler(request)

    def asked_alone(self, index: str) -> int:
        return self.queries.count((index,))


@pytest.fixture
def retired() -> Retired:
    return Retired()


@pytest.fixture
def settings(retired: Retired) -> SimulatorSettings:
    return SimulatorSettings(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        anchor_us=to_epoch_us(ANCHOR),
        policies=(retired,),
    )


async def first_signals(client: PowerPClient, count: int = 20):
    """The first ``count`` signals of the database's largest aggregation group, so
    that their queries hold twenty signals where they can."""
    listed = [m for m in await client.measurements() if m.database_id == DATABASE]
    largest, _ = Counter(m.aggregation for m in listed).most_common(1)[0]
    return [m for m in listed if m.aggregation == largest][:count]


def spec_for(out, signals, **changes: Any) -> ExportSpec:
    return ExportSpec(
        out=out,
        start=START,
        end=END,
        window="1m",
        databases=(DATABASE,),
        indexes=tuple(m.index for m in signals),
        **changes,
    )


def slices() -> list[tuple[int, int]]:
    span = TimeRange.snap(START, END, 60_000_000)
    return list(time_slices(span))


async def test_a_fetch_delivers_every_signal_but_the_refused_one(
    simulator, retired
) -> None:
    async with one_at_a_time(simulator) as client:
        signals = await first_signals(client)
        victim = signals[6].index
        retired.indexes.add(victim)
        batches: list[pa.RecordBatch] = []
        arrived: list[tuple[str, ...]] = []

        async def take_all() -> None:
            async with client.fetch(signals, START, END, window="1m") as results:
                async for result in results:
                    batches.append(result.batch)
                    arrived.extend(part.indexes for part, _ in result.refused)

        with pytest.raises(FetchFailedError) as caught:
            await take_all()

    failed = sorted((b.indexes, b.start_us, b.end_us) for b, _ in caught.value.failures)
    assert failed == [((victim,), start, end) for start, end in slices()]
    assert arrived == [(victim,)] * len(slices())
    assert all(isinstance(e, BadRequestError) for _, e in caught.value.failures)
    kept = [m for m in signals if m.index != victim]
    span = TimeRange.snap(START, END, 60_000_000)
    table = pa.Table.from_batches(batches, POINT_SCHEMA)
    assert_exact(table, expected_points(simulator.tenant, kept, span))

    # The first slice searched for it; the next two sent it alone from the start;
    # after three refusals alone it was not asked for again.
    assert retired.asked_alone(victim) == 3
    asked = [q for q in retired.queries if victim in q]
    assert [len(q) for q in asked][:6] == [20, 10, 5, 3, 2, 1]
    assert len(asked) == 8


async def test_a_query_sent_as_given_is_refused_once(simulator, retired) -> None:
    async with one_at_a_time(simulator) as client:
        signals = await first_signals(client, count=4)
        retired.indexes.add(signals[0].index)

        with pytest.raises(BadRequestError, match="is retired"):
            await client.query(
                DATABASE,
                [m.index for m in signals],
                START,
                START + timedelta(hours=0.1),
            )

    assert len(retired.queries) == 1


async def test_a_server_refusing_everything_stops_the_run_without_a_search(
    simulator, retired
) -> None:
    async with one_at_a_time(simulator) as client:
        signals = await first_signals(client, count=4)
        retired.all_from = START - timedelta(hours=2)
        with pytest.raises(BadRequestError, match="every one was refused as a bad"):
            async with client.fetch(
                signals, START - timedelta(hours=2), END, window="1m"
            ) as results:
                assert [r async for r in results] == []

    # Each query's halves and quarters, all refused before anything was answered,
    # tell of the query, not of a signal: no deeper search, and three blocks given
    # up so (each weighing as two queries of many) stop the run.
    assert [len(q) for q in retired.queries] == [4, 2, 2, 1, 1, 1, 1] * 3


async def test_a_refusal_of_every_signal_alone_is_not_searched_again(
    simulator, retired, caplog
) -> None:
    async with one_at_a_time(simulator) as client:
        signals = await first_signals(client, count=4)
        first_end = datetime.fromtimestamp(slices()[0][1] / 1e6, UTC)
        retired.all_from = first_end
        with pytest.raises(FetchFailedError) as caught:
            async with client.fetch(signals, START, END, window="1m") as results:
                assert len([r async for r in results]) == 1

    # The second slice searched down to every signal alone, all refused: it fails
    # whole, and the others, refused whole, are not searched.
    assert [len(q) for q in retired.queries] == [4, 4, 2, 2, 1, 1, 1, 1, 4, 4]
    assert "the server refuses the query, not its signals" in caplog.text
    failed = [(len(b.indexes), b.start_us) for b, _ in caught.value.failures]
    assert failed == [(4, start) for start, _ in slices()[1:]]


async def test_an_export_owes_the_refused_signal_and_a_resume_fetches_it(
    client, simulator, retired, tmp_path
) -> None:
    signals = await first_signals(client, count=30)
    victim = signals[11].index
    retired.indexes.add(victim)
    spec = spec_for(tmp_path / "out", signals)

    with pytest.raises(FetchFailedError) as caught:
        await export(client, spec)

    owed = sorted((b.indexes, b.start_us) for b, _ in caught.value.failures)
    assert owed == [((victim,), start) for start, _ in slices()]
    report = ExportReport.read(spec.out)
    planned, _ = plan_totals(signals, spec.time_range(), block_size=20)
    owing = planned + len(slices())
    assert (report.blocks_total, report.blocks_committed) == (owing, planned)
    assert (report.blocks_failed, report.complete) == (len(slices()), False)
    assert all("is retired" in reason for reason in report.failures)
    assert not [gap for gap in report.gaps if gap.index == victim]
    kept = [m for m in signals if m.index != victim]
    span = spec.time_range()
    assert_exact(read_dataset(spec.out), expected_points(simulator.tenant, kept, span))
    kinds = Counter(
        orjson.loads(line)["kind"]
        for line in (spec.out / MANIFEST_NAME).read_bytes().splitlines()
    )
    assert kinds["partial"] >= 1

    plan = (await plan_export(client, spec, resume=True)).describe().splitlines()
    assert plan[2].startswith(
        f"Queries: {owing} ({len(slices())} time slices; {len(slices())} of them for "
        "signals refused before), at most"
    )
    assert plan[3] == (
        f"Already exported: {planned} of {owing} blocks; a resume sends the other "
        f"{len(slices())} queries"
    )

    # Refused again, it is asked for again, alone, and owed still.
    retired.queries.clear()
    with pytest.raises(FetchFailedError):
        await export(client, spec, resume=True)
    assert retired.queries == [(victim,)] * len(slices())

    # Served again: the resume fetches exactly the owed blocks, and the export is
    # complete, every point once.
    retired.indexes.clear()
    retired.queries.clear()
    report = await export(client, spec, resume=True)

    assert retired.queries == [(victim,)] * len(slices())
    assert report.complete
    assert report.blocks_failed == 0
    assert report.blocks_committed == report.blocks_total == owing
    assert_exact(
        read_dataset(spec.out), expected_points(simulator.tenant, signals, span)
    )
    assert read_manifest(spec.out).failed == {}


class InProcessBatches:
    """An executor running the Dask worker's function here, one batch at a time."""

    stages_parts = True
    label_side = None

    @asynccontextmanager
    async def run(self, client, job, blocks, stats):
        yield self._outcomes(client, job, blocks)

    async def _outcomes(self, client, job, blocks):
        from powerp_async.dask_executor import WorkerSettings, run_batch
        from powerp_async.dask_executor._executor import _tasks as batch_tasks

        settings = WorkerSettings.from_config(client.config)
        for task in batch_tasks(job, settings, blocks):
            yield await anyio.to_thread.run_sync(run_batch, task)


async def test_batches_of_other_processes_owe_the_refused_signal_too(
    client, simulator, retired, tmp_path, monkeypatch
) -> None:
    pytest.importorskip("distributed")
    monkeypatch.setenv("POWERP_CLIENT_ID", "tester")
    monkeypatch.setenv("POWERP_CLIENT_SECRET", CLIENT_SECRET)
    signals = await first_signals(client, count=20)
    victim = signals[3].index
    retired.indexes.add(victim)
    spec = spec_for(tmp_path / "out", signals)

    with pytest.raises(FetchFailedError) as caught:
        await export(client, spec, executor=InProcessBatches())

    failed = [b.indexes for b, _ in caught.value.failures]
    assert failed == [(victim,)] * len(slices())
    retired.indexes.clear()
    report = await export(client, spec, resume=True, executor=InProcessBatches())

    assert report.complete
    span = spec.time_range()
    assert_exact(
        read_dataset(spec.out), expected_points(simulator.tenant, signals, span)
    )


async def test_a_damaged_owed_block_names_the_journal(
    client, retired, tmp_path
) -> None:
    signals = await first_signals(client, count=5)
    retired.indexes.add(signals[0].index)
    spec = spec_for(tmp_path / "out", signals)
    with pytest.raises(FetchFailedError):
        await export(client, spec)

    journal = spec.out / MANIFEST_NAME
    lines = journal.read_bytes().splitlines()
    number, partial = next(
        (n, orjson.loads(line))
        for n, line in enumerate(lines, start=1)
        if orjson.loads(line)["kind"] == "partial"
    )
    partial["owed"][0]["indexes"] = []
    lines[number - 1] = orjson.dumps(partial)
    journal.write_bytes(b"\n".join(lines) + b"\n")

    with pytest.raises(ConfigurationError, match=f"line {number}, is unreadable"):
        await export(client, spec, resume=True)


async def test_one_signal_refused_again_and_again_does_not_stop_the_run(
    simulator, retired, monkeypatch
) -> None:
    monkeypatch.setattr(
        "powerp_async._signal_refusals.REFUSED_ALONE_BEFORE_GIVING_UP", 10
    )
    start = START - timedelta(hours=2)
    async with one_at_a_time(simulator) as client:
        (signal,) = await first_signals(client, count=1)
        retired.indexes.add(signal.index)

        # Refused in every one of eight slices: the signal explains each refusal,
        # so the run is not stopped as one whose every query is refused.
        with pytest.raises(FetchFailedError) as caught:
            await client.fetch_table([signal], start, END, window="1m")

    assert len(caught.value.failures) == len(retired.queries) == 8


async def test_a_signal_these_credentials_may_not_read_costs_only_its_points(
    simulator, retired
) -> None:
    retired.status = 403
    async with one_at_a_time(simulator) as client:
        signals = await first_signals(client)
        victim = signals[2].index
        retired.indexes.add(victim)

        with pytest.raises(FetchFailedError) as caught:
            await client.fetch_table(signals, START, END, window="1m")

    failed = [(b.indexes, type(e)) for b, e in caught.value.failures]
    assert failed == [((victim,), PermissionDeniedError)] * len(slices())
    # Searched as a 400 is, though nothing of the database was answered before:
    # one half of the first query was, so the 403 is no refusal of the database.
    assert [len(q) for q in retired.queries[:7]] == [20, 10, 10, 5, 5, 2, 3]
    assert retired.asked_alone(victim) == 3


async def fetch_failures(
    client: PowerPClient, signals, **options: Any
) -> tuple[list[BlockResult], FetchFailedError]:
    """The results a fetch of the test range delivered, and the failures it raised."""
    delivered: list[BlockResult] = []

    async def take_all() -> None:
        async with client.fetch(signals, START, END, window="1m", **options) as results:
            delivered.extend([result async for result in results])

    with pytest.raises(FetchFailedError) as caught:
        await take_all()
    return delivered, caught.value


@pytest.mark.parametrize("status", [400, 403])
async def test_two_refused_signals_in_both_halves_of_the_first_query(
    simulator, retired, status
) -> None:
    retired.status = status
    async with one_at_a_time(simulator) as client:
        signals = await first_signals(client)
        retired.indexes.update({signals[2].index, signals[15].index})
        delivered, failed = await fetch_failures(client, signals)

    # Both halves refused before anything was answered: the quarters are asked
    # before the query is taken as refused, and one of them is answered.
    lost = {b.indexes for b, _ in failed.failures}
    assert lost == {(signals[15].index,), (signals[2].index,)}
    assert len(delivered) == len(slices())


async def test_a_block_of_refused_signals_only_leaves_the_search_on(
    simulator, retired, caplog
) -> None:
    async with one_at_a_time(simulator) as client:
        signals = await first_signals(client, count=22)
        span = TimeRange.snap(START, END, 60_000_000)
        some, every = list(plan_blocks(signals, span, block_size=20))[:2]
        # Blocks of 11: one signal of the first retired, every one of the second.
        retired.indexes.update({some.indexes[5], *every.indexes})
        delivered, failed = await fetch_failures(client, signals)

    lost = Counter(len(b.indexes) for b, _ in failed.failures)
    assert lost == {1: len(slices()), 11: len(slices())}
    assert len(delivered) == len(slices())
    assert "refuses the query, not its signals" not in caplog.text


async def test_a_lone_signal_refused_with_403_first_leaves_its_database_open(
    simulator, retired
) -> None:
    retired.status = 403
    async with one_at_a_time(simulator) as client:
        listed = [m for m in await client.measurements() if m.database_id == DATABASE]
        # Groups go in order: the one-signal group of "last" before those of "mean".
        last = [m for m in listed if m.aggregation == "last"][:1]
        mean = [m for m in listed if m.aggregation == "mean"][:20]
        retired.indexes.add(last[0].index)
        delivered, failed = await fetch_failures(client, last + mean)

    assert {b.aggregation for b, _ in failed.failures} == {"last"}
    assert {r.block.aggregation for r in delivered} == {"mean"}


async def test_queries_of_one_signal_each_refused_do_not_stop_the_run_at_five(
    simulator, retired
) -> None:
    async with one_at_a_time(simulator) as client:
        signals = await first_signals(client, count=20)
        span = TimeRange.snap(START, END, 60_000_000)
        first = [b.indexes[0] for b in plan_blocks(signals, span, block_size=1)][:5]
        retired.indexes.update(first)
        delivered, failed = await fetch_failures(client, signals, block_size=1)

    assert {b.indexes[0] for b, _ in failed.failures} == set(first)
    assert len(delivered) == 15 * len(slices())


async def test_a_block_none_of_whose_signals_is_answered_fails_whole(
    client, retired, tmp_path
) -> None:
    signals = await first_signals(client, count=4)
    retired.indexes.add(signals[1].index)
    # From the second slice on the server refuses every query: the signal sent
    # alone is refused, and so is the rest.
    retired.all_from = datetime.fromtimestamp(slices()[1][0] / 1e6, UTC)
    spec = spec_for(tmp_path / "out", signals)
    with pytest.raises(FetchFailedError):
        await export(client, spec)

    journal = read_manifest(spec.out)
    assert [b.start_us for b in journal.owed.values()] == [slices()[0][0]]
    assert len(journal.failed) == 1 + len(slices()) - 1


@pytest.mark.parametrize("from_slice", [0.5, 2.3])
async def test_a_signal_refused_from_a_moment_in_packed_and_cut_queries(
    settings, tmp_path, from_slice
) -> None:
    """Queries cut to a size limit and packed across planned blocks: the refused
    signal's points of the pieces answered before the moment are left out of the
    block, owed with the rest of it, and counted once."""
    policy = Retired()
    limited = dataclasses.replace(
        settings,
        scenario=Scenario(size=SizeLimit(max_points=2_000)),
        policies=(policy,),
    )
    async with Simulator(limited) as simulator, one_at_a_time(simulator) as client:
        signals = twenty_signals(await client.measurements())
        policy.indexes.add(signals[7].index)
        moment_us = PACKED_SPAN.start_us + int(from_slice * 310 * PACKED_WINDOW_US)
        policy.retired_after = datetime.fromtimestamp(moment_us / 1e6, UTC)
        spec = ExportSpec(
            out=tmp_path / "out",
            start=PACKED_START,
            end=ANCHOR,
            window="5s",
            databases=(signals[0].database_id,),
            indexes=tuple(m.index for m in signals),
        )
        with pytest.raises(FetchFailedError):
            await export(client, spec)
        first = ExportReport.read(spec.out)
        policy.indexes.clear()
        report = await export(client, spec, resume=True)

        assert first.points_this_run == first.points
        assert report.complete
        assert_exact(
            read_dataset(spec.out),
            expected_points(simulator.tenant, signals, PACKED_SPAN),
        )


async def test_blocks_refused_at_once_search_once_and_use_what_it_found(
    client, retired
) -> None:
    signals = await first_signals(client)
    retired.indexes.update({signals[0].index, signals[1].index})
    start = END - timedelta(hours=10)
    with pytest.raises(FetchFailedError) as caught:
        await client.fetch_table(signals, start, END, window="1m")

    # Twenty-one slices, each refused at first while six are in flight: one
    # search finds the two signals (nine queries), and every other block is then
    # asked without them. Searching each slice took 101 queries.
    slices_count = len(list(time_slices(TimeRange.snap(start, END, 60_000_000))))
    assert len(caught.value.failures) == 2 * slices_count
    assert len(retired.queries) <= 2 * slices_count + 12


async def test_a_table_or_frame_with_a_refused_signal_keeps_the_others(
    client, simulator, retired
) -> None:
    signals = await first_signals(client)
    retired.indexes.add(signals[4].index)
    kept = [m for m in signals if m.index != signals[4].index]
    span = TimeRange.snap(START, END, 60_000_000)
    expected = expected_points(simulator.tenant, kept, span)

    with pytest.raises(FetchFailedError) as table_failed:
        await client.fetch_table(signals, START, END, window="1m")
    with pytest.raises(FetchFailedError) as frame_failed:
        await client.fetch_frame(signals, START, END, window="1m")

    assert_exact(table_failed.value.fetched, expected)
    frame = frame_failed.value.fetched
    assert len(frame) == len(expected)
    assert signals[4].index not in set(frame["index"])
    assert set(frame["name"]) == {m.name for m in kept}


async def test_a_resume_plan_says_so_when_nothing_was_exported_yet(
    client, retired, tmp_path
) -> None:
    signals = await first_signals(client, count=4)
    retired.all_from = START - timedelta(hours=1)
    spec = spec_for(tmp_path / "out", signals)
    with pytest.raises(BadRequestError, match="every one was refused"):
        await export(client, spec)

    plan = await plan_export(client, spec, resume=True)

    assert plan.describe().splitlines()[3] == (
        f"Already exported: 0 of {plan.requests} blocks; a resume sends the other "
        f"{plan.requests} queries"
    )
