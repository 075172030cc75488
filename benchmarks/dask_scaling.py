"""``python -m benchmarks.dask_scaling``: one Dask worker against two, CPU-bound.

A ``powerp simulate`` process serves the demo tenant with no limit and no added
latency, on loopback, answering each repeated query from its cache of answers
(``--cache-answers``): a first export with the local engine, not measured, renders
every answer once, so the measured exports cost the simulator only the sending of
bytes, not their making. The workload is the client's hardest: 200 ms windows, 180,000
points a full block, where decoding and writing decide the pace.

Each round exports the same range twice into fresh folders, on a local cluster of one
worker process and then of two (one thread each, started and warmed before the clock
starts), and keeps the points per second of each with the CPU seconds of every
process: the simulator, the driver (which also runs the Dask scheduler and nannies)
and the workers, beside the machine's busy CPU and load average, since the machine
has two cores shared with other work. Every export is checked complete, with as many
points as the warm-up's. The goal: two workers fetch at least 1.8 times the points
per second of one, judged on the best round of each. Results go to
``benchmarks/results/dask_scaling.json`` and ``.md``. About 50 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import anyio
import psutil

from powerp_async import ExportSpec, PowerPClient, export
from powerp_async._demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, READY_PREFIX
from powerp_async.config import ENV_BASE_URL, ENV_CLIENT_ID, ENV_CLIENT_SECRET
from powerp_async.dask_executor import DaskExecutor, local_cluster

from .compare import RESULTS_DIR

ANCHOR: Final = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
WINDOW: Final = "200ms"
DATABASE: Final = 1
DEFAULT_MINUTES: Final = 40
DEFAULT_ROUNDS: Final = 3
GOAL_RATIO: Final = 1.8
INITIAL_RATE: Final = 100.0
WORKER_COUNTS: Final = (1, 2)

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Run:
    """One measured export: its pace and the CPU seconds each process spent on it."""

    workers: int
    round: int
    points: int
    wall_s: float
    simulator_cpu_s: float
    driver_cpu_s: float
    workers_cpu_s: float
    machine_busy_cpu_s: float
    load_average_1m: float

    @property
    def points_per_s(self) -> float:
        return self.points / self.wall_s


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=int, default=DEFAULT_MINUTES)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    options = parser.parse_args(argv)
    results = run(options.minutes, options.rounds)
    print(markdown(results))
    return 0 if results["ratio"] >= GOAL_RATIO else 1


def run(minutes: int, rounds: int, out_dir: Path = RESULTS_DIR) -> Row:
    """Warm the simulator up, measure every round, write and return the results."""
    with (
        simulator_process() as (base_url, simulator),
        tempfile.TemporaryDirectory(prefix="powerp-dask-") as folder,
    ):
        _give_workers_credentials(base_url)
        spec = ExportSpec(
            out=Path(folder, "warm-up"),
            start=ANCHOR - timedelta(minutes=minutes),
            end=ANCHOR,
            window=WINDOW,
            databases=(DATABASE,),
        )
        warm = _warm_up(spec, base_url)
        runs = [
            _measure(spec, base_url, simulator, workers, number, warm)
            for number in range(1, rounds + 1)
            for workers in WORKER_COUNTS
        ]

    results = _summary(minutes, warm, runs)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "dask_scaling.json").write_text(json.dumps(results, indent=2) + "\n")
    (out_dir / "dask_scaling.md").write_text(markdown(results))
    return results


@contextlib.contextmanager
def simulator_process() -> Iterator[tuple[str, psutil.Process]]:
    """The demo simulator with its cache of answers, in a process of its own."""
    command = [
        *(sys.executable, "-m", "powerp_async.simulator", "--port", "0"),
        *("--anchor", ANCHOR.isoformat(), "--cache-answers"),
    ]
    with (
        tempfile.TemporaryFile("w+") as log,
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=log, text=True
        ) as child,
    ):
        try:
            assert child.stdout is not None
            line = child.stdout.readline().strip()
            if not line.startswith(READY_PREFIX):
                raise RuntimeError(f"the simulator did not start: {line!r}")

            yield line.removeprefix(READY_PREFIX), psutil.Process(child.pid)
        finally:
            child.terminate()


def _give_workers_credentials(base_url: str) -> None:
    """The local workers inherit this environment: the demo's public credentials."""
    os.environ[ENV_CLIENT_ID] = DEMO_CLIENT_ID
    os.environ[ENV_CLIENT_SECRET] = DEMO_CLIENT_SECRET
    os.environ[ENV_BASE_URL] = base_url


def _client(base_url: str) -> PowerPClient:
    """The driver's client; its settings but the credentials travel to the workers.

    The pace starts at ``INITIAL_RATE`` rather than the default 4 requests a second:
    each worker discovers its own pace, and a short run would otherwise measure how
    fast the pacers grow, not how fast the workers decode (180,000 points a query).
    """
    return PowerPClient(
        client_id=DEMO_CLIENT_ID,
        client_secret=DEMO_CLIENT_SECRET,
        base_url=base_url,
        initial_rate=INITIAL_RATE,
    )


def _warm_up(spec: ExportSpec, base_url: str) -> Row:
    """The local engine's export, which makes the simulator render every answer."""

    async def work() -> Row:
        async with _client(base_url) as client:
            started = time.monotonic()
            report = await export(client, spec)
            return {"points": report.points, "wall_s": time.monotonic() - started}

    warm: Row = anyio.run(work)
    return warm


def _measure(
    spec: ExportSpec,
    base_url: str,
    simulator: psutil.Process,
    workers: int,
    number: int,
    warm: Row,
) -> Run:
    out = spec.out.with_name(f"workers-{workers}-round-{number}")
    with local_cluster(workers) as cluster:
        pids = list(cluster.run(os.getpid).values())
        _warm_workers(cluster, spec, base_url)
        processes = [psutil.Process(pid) for pid in pids]
        before = _cpu(simulator, processes)
        started = time.monotonic()
        points = anyio.run(_export, replace(spec, out=out), base_url, cluster)
        wall_s = time.monotonic() - started
        after = _cpu(simulator, processes)

    if points != warm["points"]:
        raise RuntimeError(f"expected {warm['points']} points, got {points}")

    spent = [b - a for a, b in zip(before, after, strict=True)]
    return Run(workers, number, points, wall_s, *spent, os.getloadavg()[0])


def _warm_workers(cluster: Any, spec: ExportSpec, base_url: str) -> None:
    """A few blocks through every worker: imports done, clients open, tokens held."""
    warm = replace(
        spec,
        out=spec.out.with_name(f"warm-{time.monotonic_ns()}"),
        start=spec.end - timedelta(minutes=5),
    )
    anyio.run(_export, warm, base_url, cluster)


async def _export(spec: ExportSpec, base_url: str, cluster: Any) -> int:
    async with _client(base_url) as client:
        report = await export(client, spec, executor=DaskExecutor(cluster))

    if not report.complete:
        raise RuntimeError(f"the export into {spec.out} is not complete")

    return report.points_this_run


def _cpu(
    simulator: psutil.Process, workers: list[psutil.Process]
) -> tuple[float, float, float, float]:
    """CPU seconds so far: simulator, driver, workers, and the machine's busy time."""
    machine = psutil.cpu_times()
    busy_s = sum(machine) - machine.idle - getattr(machine, "iowait", 0.0)
    return (
        _seconds(simulator),
        _seconds(psutil.Process()),
        sum(_seconds(worker) for worker in workers),
        busy_s,
    )


def _seconds(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


def _summary(minutes: int, warm: Row, runs: list[Run]) -> Row:
    best = {
        n: max(r.points_per_s for r in runs if r.workers == n) for n in WORKER_COUNTS
    }
    return {
        "window": WINDOW,
        "minutes": minutes,
        "database": DATABASE,
        "cores": os.cpu_count(),
        "warm_up": warm,
        "runs": [_row(run) for run in runs],
        "best_points_per_s": {str(n): round(pps) for n, pps in best.items()},
        "ratio": round(best[2] / best[1], 3),
        "goal_ratio": GOAL_RATIO,
    }


def _row(run: Run) -> Row:
    """A run with each process's CPU as cores busy over its wall time."""
    row = asdict(run)
    row["points_per_s"] = round(run.points_per_s)
    row["points_per_worker_cpu_s"] = round(run.points / run.workers_cpu_s)
    for name in ("simulator", "driver", "workers", "machine_busy"):
        row[f"{name}_cores"] = round(row[f"{name}_cpu_s"] / run.wall_s, 2)

    other = run.machine_busy_cpu_s - (
        run.simulator_cpu_s + run.driver_cpu_s + run.workers_cpu_s
    )
    row["other_cores"] = round(max(0.0, other) / run.wall_s, 2)
    return row


def markdown(results: Row) -> str:
    warm = results["warm_up"]
    lines = [
        f"# One Dask worker against two ({results['window']} windows, "
        f"{results['minutes']} minutes of database {results['database']})",
        "",
        "Warm-up (local engine, simulator rendering): "
        f"{warm['points']:,} points in {warm['wall_s']:.1f} s. CPU is shown as "
        "cores busy over each run's wall time; 'other' is the machine's busy CPU "
        f"outside these processes (it has {results['cores']} cores). Points per "
        "worker CPU second show whether a worker does as much with a core when it "
        "has a neighbour.",
        "",
        "| workers | round | points/s | wall s | simulator | driver | workers | other "
        "| load 1m | points per worker CPU s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["runs"]:
        lines.append(
            f"| {row['workers']} | {row['round']} | {row['points_per_s']:,} | "
            f"{row['wall_s']:.2f} | {row['simulator_cores']:.2f} | "
            f"{row['driver_cores']:.2f} | {row['workers_cores']:.2f} | "
            f"{row['other_cores']:.2f} | {row['load_average_1m']:.2f} | "
            f"{row['points_per_worker_cpu_s']:,} |"
        )

    verdict = "met" if results["ratio"] >= results["goal_ratio"] else "not met"
    best = results["best_points_per_s"]
    lines += [
        "",
        f"Best of each: {best['1']:,} points/s with one worker, {best['2']:,} with "
        f"two: {results['ratio']:.2f}x (goal {results['goal_ratio']}x, {verdict}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
