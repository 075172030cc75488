"""Exports on a real Dask cluster: worker processes on loopback, checked point by point.

One cluster of two worker processes (one thread each) serves the module; the
simulator runs in the test's own event loop, which stays free while the driver waits
for the cluster. The workers read their credentials from the environment they were
started with, as in production: nothing secret travels with a task.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path

import anyio
import pyarrow.dataset as ds
import pytest
from aiohttp import web

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from powerp_async import (  # noqa: E402
    ClientConfig,
    ConfigurationError,
    ExportReport,
    ExportSpec,
    PowerPClient,
    ServerUnavailableError,
    export,
)
from powerp_async._export import ExportJob  # noqa: E402
from powerp_async._export._manifest import MANIFEST_NAME  # noqa: E402
from powerp_async._time import to_epoch_us  # noqa: E402
from powerp_async.cli import main  # noqa: E402
from powerp_async.dask_executor import (  # noqa: E402
    BatchTask,
    DaskExecutor,
    WorkerSettings,
    WorkerStoppedError,
    check_workers,
    local_cluster,
    run_batch,
    scheduler_client,
)
from powerp_async.dask_executor import _cluster as cluster_module  # noqa: E402
from powerp_async.dask_executor import _executor as executor_module  # noqa: E402
from powerp_async.dask_executor import _readiness as readiness_module  # noqa: E402
from powerp_async.dask_executor._executor import (  # noqa: E402
    _discard_staged as discard_staged,
)
from powerp_async.dask_executor._executor import _tasks as batch_tasks  # noqa: E402
from powerp_async.models import POINT_SCHEMA  # noqa: E402
from powerp_async.planning import plan_blocks  # noqa: E402
from powerp_async.simulator import Simulator, SimulatorSettings  # noqa: E402

from .conftest import ANCHOR, CLIENT_SECRET  # noqa: E402
from .helpers import assert_exact, expected_points  # noqa: E402

START = ANCHOR - timedelta(minutes=40)
END = ANCHOR - timedelta(minutes=10)

# The tests share one local cluster of worker processes, started once per test worker.
pytestmark = [pytest.mark.timeout(180), pytest.mark.xdist_group("dask-cluster")]


@pytest.fixture(scope="module")
def cluster() -> Iterator[distributed.Client]:
    """Two worker processes that hold the tests' credentials in their environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("POWERP_CLIENT_ID", "tester")
        patch.setenv("POWERP_CLIENT_SECRET", CLIENT_SECRET)
        patch.delenv("POWERP_API_BASE_URL", raising=False)
        with local_cluster(2) as client:
            yield client


def spec_for(out: Path, signals, window: str = "2s", start=START) -> ExportSpec:
    return ExportSpec(
        out=out,
        start=start,
        end=END,
        window=window,
        databases=tuple(sorted({m.database_id for m in signals})),
        indexes=tuple(sorted({m.index for m in signals})),
    )


async def some_signals(client: PowerPClient, per_database: int = 30):
    """The signals an export of the first of each database's indexes selects (an
    index may name a signal in several databases)."""
    signals = await client.measurements()
    indexes = {
        m.index
        for database in (1, 3)
        for m in [s for s in signals if s.database_id == database][:per_database]
    }
    return [m for m in signals if m.database_id in (1, 3) and m.index in indexes]


def read_points(folder: Path):
    table = ds.dataset(folder, format="parquet", partitioning="hive").to_table(
        columns=POINT_SCHEMA.names
    )
    return table.sort_by([(name, "ascending") for name in POINT_SCHEMA.names[:4]])


def committed_units(folder: Path) -> Counter[str]:
    lines = (folder / MANIFEST_NAME).read_text().splitlines()
    commits = [json.loads(line) for line in lines[1:]]
    return Counter(u for c in commits if c["kind"] == "commit" for u in c["units"])


def commit_lines(folder: Path) -> int:
    lines = (folder / MANIFEST_NAME).read_text().splitlines()
    return sum(json.loads(line)["kind"] == "commit" for line in lines)


def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of one or two blocks, so that a small export makes many."""
    monkeypatch.setattr(executor_module, "MIN_BLOCKS_PER_BATCH", 1)
    monkeypatch.setattr(executor_module, "MAX_BLOCKS_PER_BATCH", 2)


def staging_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob(".part-*.tmp"))


async def test_a_dask_export_equals_a_local_one(
    cluster, client, simulator, tmp_path
) -> None:
    signals = await some_signals(client)
    local = spec_for(tmp_path / "local", signals)
    remote = spec_for(tmp_path / "dask", signals)

    local_report = await export(client, local)
    report = await export(client, remote, executor=DaskExecutor(cluster))

    assert read_points(remote.out).equals(read_points(local.out))
    expected = expected_points(simulator.tenant, signals, remote.time_range())
    assert_exact(read_points(remote.out), expected)
    units = committed_units(remote.out)
    assert set(units) == set(committed_units(local.out))
    assert set(units.values()) == {1}
    assert report.complete
    assert report.blocks_total == local_report.blocks_total == len(units)
    assert report.blocks_committed == report.blocks_total
    assert report.blocks_failed == 0
    assert report.points == report.points_this_run == len(expected)
    assert report.gaps == local_report.gaps
    assert staging_files(remote.out) == []


class Twice:
    """An executor that runs every batch's worker function twice, here, and hands
    both attempts to the driver, checking what became of each."""

    stages_parts = True
    label_side = None

    def __init__(self) -> None:
        self.batches = 0

    @asynccontextmanager
    async def run(self, client, job, blocks, stats):
        yield self._outcomes(client, job, blocks)

    async def _outcomes(self, client, job, blocks):
        settings = WorkerSettings.from_config(client.config)
        for task in batch_tasks(job, settings, blocks):
            first = await anyio.to_thread.run_sync(run_batch, task)
            second = await anyio.to_thread.run_sync(run_batch, task)
            # Each attempt lists its units as they were fetched, in any order.
            planned = sorted(b.unit_id for b in task.blocks)
            assert sorted(first.units) == sorted(second.units) == planned
            assert all((job.folder / p.temporary).is_file() for p in second.parts)

            yield first
            yield second

            assert all((job.folder / p.final).is_file() for p in first.parts)
            assert not any((job.folder / p.final).exists() for p in second.parts)
            assert not any((job.folder / p.temporary).exists() for p in second.parts)
            self.batches += 1


async def test_a_batch_run_twice_is_committed_once(
    client, simulator, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("POWERP_CLIENT_ID", "tester")
    monkeypatch.setenv("POWERP_CLIENT_SECRET", CLIENT_SECRET)
    small_batches(monkeypatch)
    signals = await some_signals(client, per_database=25)
    spec = spec_for(tmp_path / "out", signals)
    twice = Twice()

    report = await export(client, spec, executor=twice)

    expected = expected_points(simulator.tenant, signals, spec.time_range())
    assert_exact(read_points(spec.out), expected)
    units = committed_units(spec.out)
    assert len(units) == report.blocks_total
    assert set(units.values()) == {1}
    assert twice.batches == commit_lines(spec.out) > 1
    assert report.points == report.points_this_run == len(expected)
    assert staging_files(spec.out) == []


def no_secret_in(value: object) -> None:
    assert CLIENT_SECRET not in repr(value)
    assert CLIENT_SECRET.encode() not in pickle.dumps(value)
    assert CLIENT_SECRET.encode() not in cloudpickle.dumps(value)


async def test_no_task_argument_holds_a_secret(
    cluster, client, tmp_path, monkeypatch
) -> None:
    submitted = []
    submit = cluster.submit

    def recording(function, *args, **kwargs):
        submitted.append((function, args, kwargs))
        return submit(function, *args, **kwargs)

    monkeypatch.setattr(cluster, "submit", recording)
    small_batches(monkeypatch)
    signals = await some_signals(client, per_database=10)
    assert client.config.client_secret == CLIENT_SECRET  # the driver holds it

    await export(
        client, spec_for(tmp_path / "out", signals), executor=DaskExecutor(cluster)
    )

    assert {function for function, _, _ in submitted} == {run_batch}
    assert all(isinstance(arg, BatchTask) for _, args, _ in submitted for arg in args)
    for function, args, kwargs in submitted:
        no_secret_in(function)
        for value in (*args, *kwargs.values()):
            no_secret_in(value)
    logs = await anyio.to_thread.run_sync(cluster.get_worker_logs)
    assert CLIENT_SECRET not in repr(logs)
    assert len(submitted) > 1


KILL_SEED = 20261205
KILL_START = END - timedelta(hours=2, minutes=30)
QUERY_DELAY_S = 0.1
"""Each query waits this long at the server, so that the export's 150 blocks, one
or two a batch, take some 6 s on two workers without a kill: longer than the 4 s
within which the kills land."""


async def slow_queries(request, handler):
    await anyio.sleep(QUERY_DELAY_S)
    return await handler(request)


@asynccontextmanager
async def client_of_a_simulator(policy, **options):
    """A client of a simulator of its own that answers by ``policy``."""
    settings = SimulatorSettings(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        anchor_us=to_epoch_us(ANCHOR),
        policies=(policy,),
    )
    async with (
        Simulator(settings) as simulator,
        PowerPClient(
            client_id="tester",
            client_secret=CLIENT_SECRET,
            base_url=simulator.base_url,
            **options,
        ) as client,
    ):
        yield client


async def test_workers_killed_mid_export_lose_and_repeat_nothing(
    cluster, tmp_path, monkeypatch
) -> None:
    small_batches(monkeypatch)
    rng = random.Random(KILL_SEED)
    moments_s = sorted(rng.uniform(0.5, 4.0) for _ in range(3))
    async with client_of_a_simulator(slow_queries, initial_rate=1000) as client:
        signals = await some_signals(client, per_database=60)
        local = spec_for(tmp_path / "local", signals, "5s", KILL_START)
        remote = spec_for(tmp_path / "dask", signals, "5s", KILL_START)
        await export(client, local)
        killed: list[int] = []
        async with anyio.create_task_group() as group:
            group.start_soon(kill_workers, cluster, moments_s, rng, killed)
            report = await export(
                client, remote, executor=DaskExecutor(cluster, batches_in_flight=2)
            )
            finished = len(killed)
            group.cancel_scope.cancel()

    await anyio.to_thread.run_sync(cluster.wait_for_workers, 2, 60)
    assert finished == 3, "every kill lands while the export runs"
    assert len(set(killed)) == 3
    assert read_points(remote.out).equals(read_points(local.out))
    units = committed_units(remote.out)
    assert set(units) == set(committed_units(local.out))
    assert set(units.values()) == {1}
    assert report.complete
    assert report.blocks_committed == report.blocks_total == len(units)
    assert staging_files(remote.out) == []


async def kill_workers(
    cluster, moments_s: list[float], rng: random.Random, killed: list[int]
) -> None:
    """SIGKILL one worker process at each moment (seconds from now); the nanny
    starts another in its place."""
    started_s = anyio.current_time()
    for moment_s in moments_s:
        await anyio.sleep_until(started_s + moment_s)
        pids = await anyio.to_thread.run_sync(worker_pids, cluster)
        victim = rng.choice(sorted(set(pids) - set(killed)))
        os.kill(victim, signal.SIGKILL)
        killed.append(victim)


def worker_pids(cluster) -> list[int]:
    """The pids of the workers alive now; waits for one if none is."""
    while True:
        pids = cluster.run(os.getpid, on_error="ignore")
        if pids:
            return list(pids.values())


async def test_a_worker_without_credentials_stops_the_run_saying_so(
    client, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("POWERP_CLIENT_ID", raising=False)
    monkeypatch.delenv("POWERP_CLIENT_SECRET", raising=False)
    signals = await some_signals(client, per_database=5)
    spec = spec_for(tmp_path / "out", signals)
    job = ExportJob(spec.out, "parquet", False, tuple(signals))
    settings = WorkerSettings.from_config(client.config)
    task = next(
        batch_tasks(job, settings, iter(plan_blocks(signals, spec.time_range())))
    )

    with pytest.raises(WorkerStoppedError) as stopped:
        await anyio.to_thread.run_sync(run_batch, task)

    returned = pickle.loads(pickle.dumps(stopped.value))
    assert (returned.kind, str(returned)) == (
        "ConfigurationError",
        "credentials missing: set POWERP_CLIENT_ID and POWERP_CLIENT_SECRET (or pass "
        "client_id and client_secret)",
    )
    assert not spec.out.exists()


def export_command(out: Path, address: str) -> list[str]:
    """``powerp export`` of one signal of database 1 for ten minutes, on a cluster."""
    return [
        *("export", "--out", str(out), "--quiet", "--dask-scheduler", address),
        *("--start", (END - timedelta(minutes=10)).isoformat()),
        *("--end", END.isoformat(), "--window", "5s", "--database", "1"),
        *("--index", "1"),
    ]


async def test_a_worker_without_credentials_is_found_before_the_folder_is_made(
    cluster, simulator, tmp_path, monkeypatch, capsys
) -> None:
    monkeypatch.setenv("POWERP_API_BASE_URL", simulator.base_url)
    address = cluster.scheduler.address
    out = tmp_path / "out"
    workers = sorted(await anyio.to_thread.run_sync(worker_pids_by_address, cluster))
    lacking = workers[:1]

    # Local functions travel by value: the workers need not import the tests.
    def forget_the_client_id() -> None:
        del os.environ["POWERP_CLIENT_ID"]

    def set_the_client_id() -> None:
        os.environ["POWERP_CLIENT_ID"] = "tester"

    await anyio.to_thread.run_sync(
        lambda: cluster.run(forget_the_client_id, workers=lacking)
    )
    try:
        refused = await anyio.to_thread.run_sync(main, export_command(out, address))
    finally:
        await anyio.to_thread.run_sync(
            lambda: cluster.run(set_the_client_id, workers=lacking)
        )
    said = capsys.readouterr().err
    done = await anyio.to_thread.run_sync(main, export_command(out, address))

    assert refused == 2
    assert said == (
        f"powerp: error: --dask-scheduler: 1 of 2 Dask workers cannot fetch; "
        f"{lacking[0]}: credentials missing: set POWERP_CLIENT_ID and "
        "POWERP_CLIENT_SECRET (or pass client_id and client_secret); nothing was "
        "created: start those workers with the settings in their environment (see "
        "the README's Dask section), then run again\n"
    )
    assert done == 0, capsys.readouterr().err
    report = ExportReport.read(out)
    assert report.complete
    assert report.points == read_points(out).num_rows == 120
    assert staging_files(out) == []


def worker_pids_by_address(cluster) -> dict[str, int]:
    """The workers alive now, by address; waits for two, since a test before may
    have killed some."""
    cluster.wait_for_workers(2, 60)
    pids: dict[str, int] = cluster.run(os.getpid)
    return pids


class Answering:
    """A Dask client whose workers give the answers it is made with."""

    def __init__(self, answers: dict[str, object]) -> None:
        self.answers = answers

    def run(self, function, *args, on_error: str = "raise"):
        assert function is readiness_module.cannot_fetch
        assert on_error == "return"
        return self.answers


def test_workers_that_cannot_fetch_are_told_by_problem() -> None:
    missing = "credentials missing: set POWERP_CLIENT_ID"
    answers: dict[str, object] = {
        f"tcp://127.0.0.1:{port}": missing for port in (5, 1, 4, 2)
    }
    answers["tcp://127.0.0.1:3"] = ModuleNotFoundError("No module named 'powerp'")
    answers["tcp://127.0.0.1:6"] = None
    config = ClientConfig("tester", CLIENT_SECRET, base_url="http://127.0.0.1:9/api")
    settings = WorkerSettings.from_config(config)

    with pytest.raises(ConfigurationError) as refused:
        check_workers(Answering(answers), settings)

    assert str(refused.value) == (
        "5 of 6 Dask workers cannot fetch; tcp://127.0.0.1:1, tcp://127.0.0.1:2, "
        f"tcp://127.0.0.1:4 and 1 more: {missing}; tcp://127.0.0.1:3: "
        "ModuleNotFoundError: No module named 'powerp'; nothing was created: start "
        "those workers with the settings in their environment (see the README's "
        "Dask section), then run again"
    )
    check_workers(Answering({"tcp://127.0.0.1:1": None}), settings)


class Stuck:
    """A Dask client whose workers never answer, until it is released."""

    def __init__(self) -> None:
        self.released = threading.Event()

    def run(self, function, *args, on_error: str = "raise"):
        self.released.wait()
        return {}


def test_workers_that_never_answer_are_given_up_on_in_time() -> None:
    config = ClientConfig("tester", CLIENT_SECRET, base_url="http://127.0.0.1:9/api")
    settings = WorkerSettings.from_config(config)
    client = Stuck()

    started = time.monotonic()
    try:
        with pytest.raises(ConfigurationError) as refused:
            check_workers(client, settings, timeout_s=0.2)
    finally:
        client.released.set()

    assert time.monotonic() - started < 5
    assert str(refused.value) == (
        "the Dask workers did not all answer within 0.2 s whether they can fetch; "
        "nothing was created: check that every worker runs and is not busy with "
        "other work (the scheduler's dashboard shows them), then run again"
    )


QUERIES_BEFORE_OUTAGE = 12


def down_after(queries: int):
    """A policy: the first ``queries`` queries answered, every later one a 503."""
    answered = [0]

    async def policy(request, handler):
        if request.method != "POST" or "query" not in request.path.lower():
            return await handler(request)

        answered[0] += 1
        if answered[0] > queries:
            return web.Response(status=503)
        return await handler(request)

    return policy


async def test_an_outage_commits_the_batches_staged_before_it(
    cluster, tmp_path, monkeypatch
) -> None:
    small_batches(monkeypatch)
    async with client_of_a_simulator(
        down_after(QUERIES_BEFORE_OUTAGE), max_outage_s=1.0
    ) as client:
        signals = await some_signals(client, per_database=30)
        spec = spec_for(tmp_path / "out", signals, "5s", KILL_START)
        with pytest.raises(ServerUnavailableError) as stopped:
            await export(client, spec, executor=DaskExecutor(cluster))

    report = ExportReport.read(spec.out)
    units = committed_units(spec.out)
    points = read_points(spec.out).num_rows
    assert 0 < len(units) <= QUERIES_BEFORE_OUTAGE
    assert set(units.values()) == {1}
    assert report.blocks_committed == len(units)
    assert report.points == points > 0
    assert report.requests > QUERIES_BEFORE_OUTAGE
    blocks = f"{len(units)} block{'s' if len(units) > 1 else ''}"
    assert f"stopped after {blocks} ({points:,} points)" in str(stopped.value)


async def test_a_relative_folder_travels_to_the_workers_as_an_absolute_one(
    client, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    signals = await some_signals(client, per_database=2)
    spec = spec_for(Path("relative/out"), signals)
    job = ExportJob(spec.out, "parquet", False, tuple(signals))
    settings = WorkerSettings.from_config(client.config)
    blocks = plan_blocks(signals, spec.time_range())

    tasks = list(batch_tasks(job, settings, iter(blocks)))

    assert {task.folder for task in tasks} == {str(tmp_path / "relative" / "out")}


def test_a_scheduler_without_workers_is_refused_in_time(monkeypatch) -> None:
    monkeypatch.setattr(cluster_module, "WORKERS_TIMEOUT_S", 0.5)
    with distributed.LocalCluster(
        n_workers=0, host="127.0.0.1", scheduler_kwargs={"dashboard": False}
    ) as empty:
        address = empty.scheduler_address
        with pytest.raises(ConfigurationError) as refused, scheduler_client(address):
            pass

    assert str(refused.value) == (
        f"--dask-scheduler: the Dask scheduler at {address} had no worker within "
        "0.5 s; start workers for it, then run again"
    )


STOP_AFTER_S = 0.3
"""When the run below is cancelled after its first commit: with others running."""


async def test_a_cancelled_run_leaves_no_staged_file_of_its_batches(
    cluster, tmp_path, monkeypatch
) -> None:
    small_batches(monkeypatch)
    async with client_of_a_simulator(slow_queries, initial_rate=1000) as client:
        signals = await some_signals(client, per_database=60)
        spec = spec_for(tmp_path / "out", signals, "5s", KILL_START)
        async with anyio.create_task_group() as group:
            group.start_soon(cancel_after_a_commit, spec.out, group.cancel_scope)
            await export(client, spec, executor=DaskExecutor(cluster))
            pytest.fail("the export ended before it was cancelled")
        await anyio.to_thread.run_sync(wait_until_no_batch_runs, cluster)

    assert commit_lines(spec.out) > 0
    assert staging_files(spec.out) == []


async def cancel_after_a_commit(out: Path, scope: anyio.CancelScope) -> None:
    """Cancel ``scope`` a moment after the first commit into ``out``, however long
    a loaded machine takes to get there."""
    # Polled: the commit is a line in a file another thread writes.
    for _ in itertools.count():
        if (out / MANIFEST_NAME).exists() and commit_lines(out):
            break
        await anyio.sleep(0.05)

    await anyio.sleep(STOP_AFTER_S)
    scope.cancel()


def batches_running(dask_worker) -> int:
    """The batches a worker still holds, running or cancelled while running."""
    keys = map(str, dask_worker.state.tasks)
    return sum(key.startswith("powerp-batch") for key in keys)


def wait_until_no_batch_runs(cluster, timeout_s: float = 30) -> None:
    """Wait until no worker runs a batch any more, even one it was told to drop."""
    deadline_s = time.monotonic() + timeout_s
    while sum(cluster.run(batches_running).values()):
        assert time.monotonic() < deadline_s, "the workers still run batches"
        time.sleep(0.05)


def test_only_the_parts_of_the_given_stagings_are_discarded(tmp_path) -> None:
    day = tmp_path / "database=1" / "day=2026-12-04"
    day.mkdir(parents=True)
    names = {
        "cancelled": ".part-0a1b2c3d5-6e7f8091a2b3-000001.parquet.tmp",
        "cancelled too": ".part-0a1b2c3d5-93c4d5e6f708-000002.parquet.tmp",
        "a later batch": ".part-0a1b2c3d51-6e7f8091a2b3-000001.parquet.tmp",
        "another run's": ".part-ffeeddcc5-6e7f8091a2b3-000001.parquet.tmp",
        "a local run's": ".part-0a1b2c3d-000001.parquet.tmp",
        "committed, to be revealed": ".part-0a1b2c3d6-0123456789ab-000001.parquet.tmp",
        "revealed": "part-0a1b2c3d4-0123456789ab-000001.parquet",
    }
    for name in names.values():
        (day / name).write_bytes(b"points")

    discard_staged(tmp_path, {"0a1b2c3d5", "0a1b2c3d7"})

    kept = {name for name in names.values() if (day / name).exists()}
    assert kept == {
        names[what] for what in names if what not in ("cancelled", "cancelled too")
    }
