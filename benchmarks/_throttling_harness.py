"""One scenario run: a simulator process, a default client, and what both recorded.

The simulator runs in its own process, pinned to the last core while the client keeps
the first (when the machine has two), so neither steals the other's time. The client
is a :class:`~powerp_async.PowerPClient` with default settings but for the timeout,
where a case sets one: adaptive pacing, told nothing about the limits. Once a second
the pacer's state and the engine's counters are sampled; at the end the server's own
per-second counts are read from ``/_simulator/stats``, which are the ground truth
every figure is judged by.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import IO, Any, Final

import aiohttp
import anyio
import psutil  # type: ignore[import-untyped]  # no stubs in the environment
import pyarrow as pa

from powerp_async import FetchFailedError, PowerPClient, RunStats
from powerp_async.control import AdaptivePacer
from powerp_async.events import Event, RequestDone

from ._throttling_cases import ANCHOR, SEED, Case
from ._throttling_job import (
    Job,
    cheap_signals,
    expected_points,
    fetched_points,
    plan_job,
)

CLIENT_ID: Final = "demo"
CLIENT_SECRET: Final = "demo-secret"
READY_PREFIX: Final = "PowerP simulator serving "
SAMPLE_PERIOD_S: Final = 1.0
LOG_TAIL_CHARS: Final = 500
STATS_PATH: Final = "/_simulator/stats"
API_SUFFIX: Final = "/rt-api/api"

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Server:
    """A running simulator process and when its scenario clock started."""

    process: subprocess.Popen[str]
    base_url: str
    started_at: float

    @property
    def origin(self) -> str:
        return self.base_url.removesuffix(API_SUFFIX)


@dataclass(slots=True)
class Outcome:
    """What the client saw: its samples, counters, and whether the job is complete."""

    client_start: float = 0.0
    client_end: float = 0.0
    samples: list[Row] = field(default_factory=list)
    blocks: int = 0
    signals_fetched: int = 0
    """Signals of the blocks as planned, summed over the blocks fetched."""
    signals_sent: int = 0
    """Signals of the requests really sent, pieces of split blocks included."""
    points: int = 0
    failed_blocks: int = 0
    completed: bool = False
    batches: list[pa.RecordBatch] = field(default_factory=list)
    stats: RunStats = field(default_factory=RunStats)


@dataclass(slots=True)
class CaseRun:
    """Everything one run measured, before any metric is computed."""

    case: Case
    job: Job
    server_start: float
    outcome: Outcome
    per_second: list[Row]
    server_cpu_s: float
    client_cpu_s: float
    exact: Row | None

    def engine(self) -> Row:
        stats = asdict(self.outcome.stats)
        stats.pop("started_at")
        return stats


def simulator_command(case: Case) -> list[str]:
    return [
        *(sys.executable, "-m", "powerp_async.simulator", "--port", "0"),
        *("--anchor", ANCHOR, "--seed", str(SEED)),
        *case.simulator_args,
    ]


@contextlib.contextmanager
def simulator_process(case: Case) -> Iterator[Server]:
    """The case's simulator in a child process on loopback; stopped on exit."""
    # Its log goes to a file: a pipe nobody reads could fill up and stall it. Leaving
    # the Popen block closes stdout and waits; SIGTERM stops the server cleanly.
    with (
        tempfile.TemporaryFile("w+") as log,
        subprocess.Popen(
            simulator_command(case), stdout=subprocess.PIPE, stderr=log, text=True
        ) as process,
    ):
        try:
            yield Server(process, _base_url(process, log), time.time())
        finally:
            process.terminate()


def _base_url(process: subprocess.Popen[str], log: IO[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    if not line.startswith(READY_PREFIX):
        process.wait()
        log.seek(0)
        detail = log.read()[-LOG_TAIL_CHARS:].strip()
        raise RuntimeError(
            f"expected the simulator to print {READY_PREFIX!r} and its address, "
            f"got {line!r} and exit code {process.returncode}: {detail}"
        )

    return line.removeprefix(READY_PREFIX)


@contextlib.contextmanager
def pinned(server_pid: int) -> Iterator[str]:
    """Server on the last core, this process on the first; yields what was done."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) < 2:
        yield "not pinned: fewer than two cores"
        return

    os.sched_setaffinity(server_pid, {cores[-1]})
    os.sched_setaffinity(0, {cores[0]})
    try:
        yield f"server on core {cores[-1]}, client on core {cores[0]}"
    finally:
        os.sched_setaffinity(0, set(cores))


def run_case(case: Case) -> CaseRun:
    """Start the case's server, fetch its job, read the server's counts, stop."""
    with simulator_process(case) as server, pinned(server.process.pid):
        server_process = psutil.Process(server.process.pid)
        server_cpu_before = _cpu_s(server_process)
        client_cpu_before = time.process_time()
        job, outcome, per_second = anyio.run(_drive, case, server)
        server_cpu_s = _cpu_s(server_process) - server_cpu_before
        client_cpu_s = time.process_time() - client_cpu_before

    exact = _exactness(job, outcome) if case.exact else None
    outcome.batches.clear()
    return CaseRun(
        case,
        job,
        server.started_at,
        outcome,
        per_second,
        server_cpu_s,
        client_cpu_s,
        exact,
    )


def _cpu_s(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def _drive(case: Case, server: Server) -> tuple[Job, Outcome, list[Row]]:
    outcome = Outcome()

    def count_signals(event: Event) -> None:
        if isinstance(event, RequestDone):
            outcome.signals_sent += len(event.block.indexes)

    options = {} if case.timeout_s is None else {"timeout_s": case.timeout_s}
    async with PowerPClient(
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        base_url=server.base_url,
        on_event=count_signals,
        **options,
    ) as client:
        job = plan_job(case, cheap_signals(await client.measurements()))
        async with anyio.create_task_group() as group:
            group.start_soon(_sample, client, outcome)
            await _fetch(client, case, job, outcome)
            group.cancel_scope.cancel()

    since = int(outcome.client_start)
    return job, outcome, await _server_seconds(server, since)


async def _fetch(client: PowerPClient, case: Case, job: Job, outcome: Outcome) -> None:
    outcome.client_start = time.time()
    with anyio.move_on_after(case.cap_s) as scope:
        try:
            await _consume(client, case, job, outcome)
        except FetchFailedError as error:
            outcome.failed_blocks = len(error.failures)

    outcome.client_end = time.time()
    finished = not scope.cancelled_caught and outcome.failed_blocks == 0
    outcome.completed = case.job == "finite" and finished


async def _consume(
    client: PowerPClient, case: Case, job: Job, outcome: Outcome
) -> None:
    async with client.fetch(
        job.signals, job.start, job.end, window=job.window, stats=outcome.stats
    ) as results:
        async for result in results:
            outcome.blocks += 1
            outcome.signals_fetched += len(result.block.indexes)
            if result.batch is None:
                continue

            outcome.points += result.batch.num_rows
            if case.exact:
                outcome.batches.append(result.batch)


async def _sample(client: PowerPClient, outcome: Outcome) -> None:
    """Append the pacer's state and the engine's counters once a second."""
    next_at = time.monotonic()
    while True:
        outcome.samples.append(_sample_row(client, outcome.stats))
        next_at += SAMPLE_PERIOD_S
        await anyio.sleep(max(0.0, next_at - time.monotonic()))


def _sample_row(client: PowerPClient, stats: RunStats) -> Row:
    row: Row = {
        "t": time.time(),
        "requests": stats.requests,
        "retries": stats.retries,
        "throttled": stats.throttled,
        "server_errors": stats.server_errors,
        "transport_errors": stats.transport_errors,
        "splits": stats.splits,
        "blocks_done": stats.blocks_done,
    }
    pacer = client.pacer
    if isinstance(pacer, AdaptivePacer):
        snapshot = pacer.snapshot()
        row.update(
            rate=snapshot.rate,
            accepted_rate=snapshot.accepted_rate,
            in_flight=snapshot.in_flight,
            concurrency_limit=snapshot.concurrency_limit,
            waiting=snapshot.waiting,
            mode=str(snapshot.mode),
            throttles=snapshot.throttles,
            cuts=snapshot.cuts,
            hold_s=snapshot.hold_s,
            circuit=str(snapshot.circuit),
            circuit_open_s=snapshot.circuit_open_s,
            budget_tokens=snapshot.budget_tokens,
            rtt_p90_s=snapshot.rtt_p90_s,
        )

    return row


async def _server_seconds(server: Server, since: int) -> list[Row]:
    url = f"{server.origin}{STATS_PATH}?since={since}"
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        response.raise_for_status()
        body = await response.json()

    rows: list[Row] = body["per_second"]
    return rows


def _exactness(job: Job, outcome: Outcome) -> Row:
    """Fetched points against the tenant's: missing, unexpected and repeated ones."""
    expected = expected_points(job)
    fetched = fetched_points(outcome.batches)
    unique = set(fetched)
    return {
        "expected_points": len(expected),
        "fetched_points": len(fetched),
        "missing": len(expected - unique),
        "unexpected": len(unique - expected),
        "repeated": len(fetched) - len(unique),
        "exact": unique == expected and len(fetched) == len(unique),
    }
