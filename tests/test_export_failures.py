"""Blocks that keep failing: recorded, reported, and the only ones a resume fetches."""

from __future__ import annotations

import functools
import json
import random
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from aiohttp import web

from powerp_async import ExportReport, ExportSpec, PowerPClient, cli, export
from powerp_async._export import _manifest
from powerp_async._export._manifest import read_manifest
from powerp_async._time import to_epoch_us
from powerp_async.control import AdaptivePacer, RateController
from powerp_async.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    FetchFailedError,
    ServerError,
    ServerUnavailableError,
)
from powerp_async.models import Block, Measurement
from powerp_async.planning import plan_blocks
from powerp_async.simulator import SimulatorSettings, _app
from powerp_async.simulator._settings import Policy
from powerp_async.testing import SimulatorThread

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, expected_points
from .test_export import START, _matching, read_dataset
from .test_export_recovery import expected_for, spec_for

FAILING_DATABASE = 2
CLI_SECRET = "cli-secret-1"
A, B = "a" * 24, "b" * 24
"""Unit ids for journals written by hand: 24 hex digits, as a block's are."""
CLI_INDEXES = ("1", "2", "3", "101", "102", "103")
CLI_SPEC = ExportSpec(Path("unused"), START, ANCHOR, window="5s")


class FailingQueries:
    """Makes the simulator answer 500 (or ``answer``) to every query of the blocks
    given.

    Counts every query it sees, so a test knows exactly what a run asked for.
    """

    def __init__(
        self,
        monkeypatch: pytest.MonkeyPatch,
        blocks: list[Block],
        answer: type[web.HTTPException] = web.HTTPInternalServerError,
    ) -> None:
        self.keys = {(b.database_id, b.indexes, b.start_us) for b in blocks}
        self.failing = True
        self.seen = 0
        original = _app.parsed_query

        async def parse_then_fail(request: web.Request):
            query = await original(request)
            self.seen += 1
            indexes = tuple(index for index, _ in query.signals)
            key = (query.database_id, indexes, query.start_us)
            if self.failing and key in self.keys:
                raise answer(text="disk error on the historian")
            return query

        monkeypatch.setattr(_app, "parsed_query", parse_then_fail)
        monkeypatch.setattr("powerp_async._engine.backoff_s", lambda attempt: 0.01)


def doomed(signals, spec: ExportSpec, block_size: int) -> list[Block]:
    """Two blocks of database 2: the first of the first slice, the last of the last."""
    planned = plan_blocks(signals, spec.time_range(), block_size=block_size)
    of_database = [b for b in planned if b.database_id == FAILING_DATABASE]
    return [of_database[0], of_database[-1]]


async def _every_block(
    client: PowerPClient, out: Path
) -> tuple[ExportSpec, list[Block]]:
    """An export's spec and every block it plans, for a server that fails them all."""
    spec = await spec_for(client, out)
    signals = _matching(await client.measurements(), spec)
    planned = plan_blocks(
        signals, spec.time_range(), block_size=client.config.block_size
    )
    return spec, list(planned)


def giving_up_early(simulator, **settings) -> PowerPClient:
    """A client that gives a block up after two attempts."""
    return PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        initial_rate=100,
        max_attempts=2,
        **settings,
    )


@pytest.fixture
async def few_retries(simulator):
    async with giving_up_early(simulator) as running:
        yield running


async def test_failed_blocks_are_recorded_and_only_they_are_resumed(
    few_retries, simulator, tmp_path, monkeypatch
) -> None:
    client = few_retries
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=2_000)
    signals = _matching(await client.measurements(), spec)
    blocks = doomed(signals, spec, client.config.block_size)
    faults = FailingQueries(monkeypatch, blocks)
    failing = {block.unit_id for block in blocks}

    with pytest.raises(FetchFailedError) as caught:
        await export(client, spec)

    assert {block.unit_id for block, _ in caught.value.failures} == failing
    assert all(isinstance(error, ServerError) for _, error in caught.value.failures)
    journal = read_manifest(spec.out)
    assert set(journal.failed) == failing
    assert all("HTTP 500" in reason for reason in journal.failed.values())
    report = ExportReport.read(spec.out)
    assert (report.blocks_failed, report.complete) == (2, False)
    assert set(report.failed_units) == failing
    assert report.blocks_committed == report.blocks_total - 2

    faults.failing = False
    seen_before = faults.seen
    report = await export(client, spec, resume=True)

    assert faults.seen - seen_before == 2  # the failed blocks, and nothing else
    assert (report.blocks_failed, report.complete, report.failed_units) == (0, True, ())
    assert read_manifest(spec.out).failed == {}
    assert_exact(read_dataset(spec.out), await expected_for(client, simulator, spec))


async def test_a_block_that_fails_again_stays_recorded(
    few_retries, tmp_path, monkeypatch
) -> None:
    client = few_retries
    spec = await spec_for(client, tmp_path / "out")
    signals = _matching(await client.measurements(), spec)
    FailingQueries(monkeypatch, doomed(signals, spec, client.config.block_size))
    with pytest.raises(FetchFailedError):
        await export(client, spec)

    first = read_manifest(spec.out).failed

    with pytest.raises(FetchFailedError) as caught:
        await export(client, spec, resume=True)

    assert len(caught.value.failures) == len(first) == 2
    assert read_manifest(spec.out).failed.keys() == first.keys()
    assert ExportReport.read(spec.out).blocks_failed == 2


def write_journal(folder: Path, *records: dict) -> None:
    header = {"kind": "header", "version": _manifest.VERSION, "parameters": {}}
    lines = [header, *records]
    (folder / _manifest.MANIFEST_NAME).write_text(
        "".join(json.dumps(line) + "\n" for line in lines)
    )


def commit(*units: str) -> dict:
    return {
        "kind": "commit",
        "parts": ["p"],
        "units": list(units),
        "points": 4,
        "empty": [],
    }


def test_a_failed_record_is_replayed_and_superseded(tmp_path) -> None:
    failed = {"kind": "failed", "units": [A, B], "reasons": ["500", "reset"]}
    write_journal(tmp_path, failed, commit(A))

    state = read_manifest(tmp_path)

    assert state.failed == {B: "reset"}
    assert set(state.done_units) == {A}


def test_a_journal_of_commits_only_still_resumes(tmp_path) -> None:
    write_journal(tmp_path, commit(A))

    state = read_manifest(tmp_path)

    assert (state.failed, set(state.done_units), state.points) == ({}, {A}, 4)


def test_a_malformed_failed_record_is_named(tmp_path) -> None:
    write_journal(tmp_path, {"kind": "failed", "units": [A, B], "reasons": ["x"]})

    with pytest.raises(ConfigurationError, match="line 2, is unreadable"):
        read_manifest(tmp_path)


@contextmanager
def command_against_simulator(
    monkeypatch, policies: tuple[Policy, ...] = ()
) -> Iterator[SimulatorThread]:
    """A simulator on its own thread, and the environment that points the command
    at it, so ``cli.main`` runs in this process as a user would run ``powerp``.

    ``policies`` rewrite its answers, which are then never gzipped."""
    settings = SimulatorSettings(
        client_id="cli",
        client_secret=CLI_SECRET,
        anchor_us=to_epoch_us(ANCHOR),
        **({"policies": policies, "gzip_min_bytes": None} if policies else {}),
    )
    monkeypatch.setattr(cli, "_choose_memory_pool", lambda: None)
    monkeypatch.setenv("POWERP_CLIENT_ID", "cli")
    monkeypatch.setenv("POWERP_CLIENT_SECRET", CLI_SECRET)
    with SimulatorThread(settings) as server:
        monkeypatch.setenv("POWERP_API_BASE_URL", server.base_url)
        yield server


def tenant_signals(tenant) -> list[Measurement]:
    """The six signals the command exports, three of database 1 and three of 2."""
    listed = map(Measurement.from_api, orjson.loads(tenant.metadata_json()))
    return [
        m
        for m in listed
        if m.database_id in (1, FAILING_DATABASE) and m.index in CLI_INDEXES
    ]


def cli_block(signals: list[Measurement]) -> Block:
    """The block of database 2 in the command's first time slice."""
    planned = plan_blocks(signals, CLI_SPEC.time_range(), block_size=10)
    return next(b for b in planned if b.database_id == FAILING_DATABASE)


def test_the_command_names_the_failures_and_how_to_resume(
    tmp_path, monkeypatch, capsys
) -> None:
    out = tmp_path / "out"
    arguments = [
        *("export", "--out", str(out), "--window", "5s"),
        *("--start", START.isoformat(), "--end", ANCHOR.isoformat()),
        *("--database", "1", "--database", str(FAILING_DATABASE)),
        *(part for index in CLI_INDEXES for part in ("--index", index)),
    ]
    with command_against_simulator(monkeypatch) as server:
        signals = tenant_signals(server.tenant)
        faults = FailingQueries(monkeypatch, [cli_block(signals)])

        code = cli.main(arguments)
        failed = capsys.readouterr()
        faults.failing = False
        seen_before = faults.seen
        monkeypatch.setenv("POWERP_CLIENT_SECRET", "not-the-secret")
        refused = cli.main(["export", "--out", str(out), "--resume"])
        refusal = capsys.readouterr().err
        monkeypatch.setenv("POWERP_CLIENT_SECRET", CLI_SECRET)
        resumed = cli.main(["export", "--out", str(out), "--resume"])
        after = capsys.readouterr()
        expected = expected_points(server.tenant, signals, CLI_SPEC.time_range())

    reason = f"{cli_block(signals).describe()}: HTTP 500: disk error on the historian"
    assert code == 1
    assert failed.err == (
        f"powerp: error: 1 block could not be fetched, first {reason}; everything "
        f"else is saved, and resuming fetches only those: powerp export --out {out} "
        "--resume\n"
    )
    assert "Export INCOMPLETE" in failed.out
    assert f"1 block failed; first: {reason}\n" in failed.out
    assert CLI_SECRET not in failed.err + failed.out

    assert refused == 1
    assert refusal.startswith("powerp: error: authentication failed")
    assert refusal.endswith(f". Resume with: powerp export --out {out} --resume\n")
    assert refusal.count("\n") == 1
    assert "not-the-secret" not in refusal

    assert resumed == 0, after.err
    assert faults.seen - seen_before == 1
    assert after.out.startswith("Export complete")
    assert len(signals) == 6
    assert_exact(read_dataset(out), expected)


async def test_refused_credentials_stop_a_resume_before_any_query(
    few_retries, simulator, tmp_path, monkeypatch
) -> None:
    client = few_retries
    spec = await spec_for(client, tmp_path / "out")
    signals = _matching(await client.measurements(), spec)
    faults = FailingQueries(
        monkeypatch, doomed(signals, spec, client.config.block_size)
    )
    with pytest.raises(FetchFailedError):
        await export(client, spec)

    faults.failing = False
    seen_before = faults.seen
    async with PowerPClient(
        client_id="tester", client_secret="not-the-secret", base_url=simulator.base_url
    ) as refused:
        with pytest.raises(AuthenticationError) as caught:
            await export(refused, spec, resume=True)

    assert "not-the-secret" not in str(caught.value)
    assert faults.seen == seen_before
    assert len(read_manifest(spec.out).failed) == 2

    report = await export(client, spec, resume=True)

    assert faults.seen - seen_before == 2
    assert report.complete


async def test_a_server_failing_every_query_stops_the_run_and_reports(
    simulator, tmp_path, monkeypatch
) -> None:
    async with giving_up_early(simulator, max_outage_s=1.0) as client:
        spec, every = await _every_block(client, tmp_path / "out")
        faults = FailingQueries(monkeypatch, every)
        with pytest.raises(
            ServerUnavailableError, match="to be resumed once the server is back"
        ):
            await export(client, spec)

    report = ExportReport.read(spec.out)
    assert (report.complete, report.blocks_committed, report.points) == (False, 0, 0)
    assert report.blocks_failed == len(read_manifest(spec.out).failed)
    assert faults.seen < len(every) * 2  # stopped before trying every block


async def test_a_server_refusing_every_query_as_too_many_stops_the_run(
    simulator, tmp_path, monkeypatch
) -> None:
    async with giving_up_early(simulator, max_outage_s=1.0) as client:
        spec, every = await _every_block(client, tmp_path / "out")
        FailingQueries(monkeypatch, every, web.HTTPTooManyRequests)
        started = time.monotonic()
        with pytest.raises(ServerUnavailableError) as caught:
            await export(client, spec)

    assert time.monotonic() - started < 10
    assert str(caught.value).startswith(
        "the server refused every request as too many (429) for 1 s; stopped after "
        "0 blocks (0 points) were fetched. Its quota may be used up for now. An "
        "export keeps what it fetched, to be resumed later"
    )
    report = ExportReport.read(spec.out)
    assert (report.complete, report.blocks_committed, report.points) == (False, 0, 0)


async def test_a_retry_after_beyond_max_outage_stops_the_run_at_once(
    simulator, tmp_path, monkeypatch
) -> None:
    async with giving_up_early(simulator, max_outage_s=30.0) as client:
        spec, every = await _every_block(client, tmp_path / "out")
        come_back_later = functools.partial(
            web.HTTPTooManyRequests, headers={"Retry-After": "40"}
        )
        failing = FailingQueries(monkeypatch, every, come_back_later)
        started = time.monotonic()
        with pytest.raises(ServerUnavailableError) as caught:
            await export(client, spec)
        first_s = time.monotonic() - started
        with pytest.raises(ServerUnavailableError) as again:
            await export(client, spec, resume=True)
        second_s = time.monotonic() - started - first_s

    # One request refused, then none sent: the wait the server asked for ends past
    # max_outage_s, so nothing could succeed before the run would stop (the watch
    # sees it within a second). The wait is said with the jitter that spreads
    # clients (up to 10 % more than asked). The next run on the client is held by
    # the same wait, and says so as soon.
    assert (first_s < 10, second_s < 10) == (True, True)
    assert failing.seen == 1
    assert re.fullmatch(
        r"the server refused a request as too many \(429\), and its Retry-After "
        r"holds every request (3[5-9]|4[0-4]) s more .*",
        str(again.value),
    ), str(again.value)
    assert re.fullmatch(
        r"the server refused (a request|every request) as too many \(429\)( for 1 s)?"
        r", and its Retry-After "
        r"holds every request (39|4[0-4]) s more \(a longer wait asked for is cut "
        r"to 300 s, plus up to 10 % that spreads clients out\), past the 30 s a run "
        r"waits \(max_outage_s, --max-outage\); stopped after 0 blocks \(0 points\) "
        r"were fetched\. Its quota may be used up for now\. An export keeps what it "
        r"fetched, to be resumed later",
        str(caught.value),
    ), str(caught.value)


class _LongestJitter(random.Random):
    def random(self) -> float:
        return 1.0 - 1e-9


async def test_a_wait_asked_to_end_within_max_outage_is_waited_out_whatever_the_jitter(
    simulator, tmp_path, monkeypatch
) -> None:
    # Asked to wait 2 s of the 2.1 s a run waits; the jitter takes the wait to 2.2 s.
    pacer = AdaptivePacer(controller=RateController(rng=_LongestJitter()))
    async with giving_up_early(simulator, max_outage_s=2.1, pacer=pacer) as client:
        spec, every = await _every_block(client, tmp_path / "out")
        come_back_soon = functools.partial(
            web.HTTPTooManyRequests, headers={"Retry-After": "2"}
        )
        failing = FailingQueries(monkeypatch, every, come_back_soon)
        failing.failing = False
        original = _app.parsed_query

        async def refuse_the_first(request: web.Request):
            failing.failing = failing.seen == 0
            return await original(request)

        monkeypatch.setattr(_app, "parsed_query", refuse_the_first)
        started = time.monotonic()
        report = await export(client, spec)
        elapsed_s = time.monotonic() - started
        expected = await expected_for(client, simulator, spec)

    assert report.complete
    assert (report.blocks_committed, report.throttled) == (len(every), 1)
    assert elapsed_s > 2.2
    assert_exact(read_dataset(spec.out), expected)


def test_a_report_from_before_failed_units_is_read(tmp_path) -> None:
    report = ExportReport(
        *(12, 10, 2, 500, 600, 500, 14, 3, 1, 2, 0, 1.5, 4, False),
        gaps=(),
        failures=("database 1 mean [...]: HTTP 500",),
        failed_units=(),
    )
    older = report.to_json()
    del older["failed_units"]
    (tmp_path / "_report.json").write_bytes(orjson.dumps(older))

    assert ExportReport.read(tmp_path) == report


def test_failures_the_server_refused_as_asked_are_not_promised_to_a_resume() -> None:
    block = Block(1, "mean", ("5",), 0, 60_000_000, 1_000_000)
    refused = BadRequestError(
        "retired_index", method="POST", url="http://127.0.0.1/q", status=400
    )
    failed = FetchFailedError([(block, refused), (block, refused)])
    arguments = ["export", "--out", "x", "--window", "1s"]

    message = cli._failed_blocks_message(failed, arguments)

    assert message == (
        f"error: 2 blocks could not be fetched, first {block.describe()}: "
        "retired_index; everything else is saved. The server refused them as asked, "
        "so a resume would ask again in vain until that changes on its side; then: "
        "powerp export --out x --resume"
    )
