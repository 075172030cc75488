"""The contenders side by side, against a simulator in its own process.

Run as ``python -m benchmarks.compare [--full]``. Each contender (``contenders.py``)
runs in a fresh process pinned to one core, against a fresh ``powerp simulate``
process pinned to the other, so every run starts with a full token bucket and its own
server-side counters. Two scenarios:

- request-bound: the whole demo tenant over 24 hours at 1-minute windows, so answers
  are small and the server's request limit (50/s, burst 10, about 150 ms per answer)
  decides. The notebook's way would take some 40 minutes and the naive fan-out
  minutes of 429s, so both are stopped after ``TIME_LIMIT_S`` and judged on what they
  received by then (points per second is what they would keep doing);
- byte-bound: 200 ms windows and no limit, so answers are large and CPU decides
  (the simulator's as much as the client's: both are reported).

Then powerp-async alone as the work grows: more signals (up to ten copies of the demo
tenant, 10,160 signals), then a longer range. Each growth step runs twice started
flat out (``initial_rate`` above any pace the step can reach, its server having no
limits), which the goals judge, then once as shipped. Expected points come from the
simulator's own tenant, per signal; a contender that receives fewer points for a
signal lost them, more duplicated them. A run stopped at its time limit is checked
against the queries it completed.

``--only growth`` runs the growth steps alone, measured as in the whole comparison,
and writes them to ``growth_only.json``, ``growth_only.md`` and ``growth_only.png``,
so the figures of the last whole comparison (``compare.*``) stay as they are.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Final

import psutil  # type: ignore[import-untyped]
import requests

from powerp_async._time import format_wire, parse_duration_us, parse_wire
from powerp_async.models import MAX_SIGNALS_PER_QUERY, Measurement
from powerp_async.planning import TimeRange
from powerp_async.simulator import SimulatorSettings, ceiling, demo_tenant
from powerp_async.simulator._grid import RequestGrid
from powerp_async.simulator._scenario_cli import (
    add_scenario_options,
    scenario_from_options,
)
from powerp_async.simulator._settings import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from powerp_async.simulator._tenant import Tenant

from ._compare_goals import (
    FLAT_OUT,
    goals,
    highest_rss_mb,
    least_disturbed,
    steady_cpu_us_per_point,
)
from .contenders import Job, job_json, longest_slice_us

ANCHOR_US: Final = parse_wire("2026-12-04T12:00:00Z")
"""Every run ends here; fixed, so the tenant and its points never change."""

RESULTS_DIR: Final = Path(__file__).parent / "results"
SERVER_CPU: Final = 1
CLIENT_CPU: Final = 0
START_TIMEOUT_S: Final = 30.0
RUN_TIMEOUT_S: Final = 900.0
DAY_US: Final = 86_400_000_000

ALL_CONTENDERS: Final = (
    "notebook",
    "fan-out",
    "static-oracle",
    "powerp-async",
    "powerp-async-parquet",
)
"""The contenders of the side-by-side settings; the growth steps have their own."""
TIME_LIMITED: Final = ("notebook", "fan-out")
TIME_LIMIT_S: Final = 40.0


@dataclass(frozen=True, slots=True)
class Setting:
    """One scenario of the comparison: the server's limits and the job."""

    name: str
    simulator_args: tuple[str, ...]
    window: str
    span_s: int
    signal_count: int
    oracle_rate_per_s: float | None = None
    oracle_burst: int = 1
    oracle_concurrency: int = 4
    contenders: tuple[str, ...] = ALL_CONTENDERS
    copies: int = 1
    """Copies of the demo tenant the simulator serves (1,016 signals each)."""
    time_limit_s: float | None = None
    """How long the contenders in ``TIME_LIMITED`` may run; ``None``: to the end."""

    def __post_init__(self) -> None:
        if self.span_s <= 0 or self.signal_count < 1:
            raise ValueError(
                f"Setting {self.name!r}: span_s and signal_count must be positive, "
                f"got {self.span_s} and {self.signal_count}"
            )

    @property
    def server_args(self) -> tuple[str, ...]:
        return (*self.simulator_args, "--copies", str(self.copies))

    def tenant(self) -> Tenant:
        return demo_tenant(SimulatorSettings(anchor_us=ANCHOR_US, copies=self.copies))

    @property
    def span(self) -> TimeRange:
        return TimeRange(
            ANCHOR_US - self.span_s * 1_000_000,
            ANCHOR_US,
            parse_duration_us(self.window),
        )


REQUEST_LIMIT: Final = (
    "--scenario",
    "bucket-50",
    "--burst",
    "10",
    "--latency-ms",
    "150",
)

REQUEST_BOUND: Final = Setting(
    "request-bound",
    REQUEST_LIMIT,
    "1m",
    86_400,
    1016,
    oracle_rate_per_s=50.0,
    oracle_burst=10,
    oracle_concurrency=16,
    contenders=("notebook", "fan-out", "static-oracle", "powerp-async"),
    time_limit_s=TIME_LIMIT_S,
)
BYTE_BOUND: Final = Setting("byte-bound", (), "200ms", 3600, 100, oracle_concurrency=2)
TENANT_GROWTH: Final = ((100, 1), (1016, 1), (10_160, 10))
"""(signals, copies of the demo tenant) of each step as the tenant grows."""
TENANT_GROWTH_SPAN_S: Final = 3600
"""An hour: 18 answers for the smallest tenant, whose fixed costs after the first
answer would otherwise weigh on a few points."""
RANGE_GROWTH_SIGNALS: Final = 100
RANGE_GROWTH_H: Final = (1, 6, 24)
RANGE_GROWTH_FULL_H: Final = (1, 6, 24, 168)
GROWTH_CONTENDERS: Final = (FLAT_OUT, FLAT_OUT, "powerp-async")
"""Twice flat out, for the goals (the least CPU and the highest RSS of the two), then
once as shipped, whose start weighs on small jobs."""
SMALL_STEP_WINDOWS: Final = 1_000_000
"""Steps of fewer signal windows than this (the hour of 100 signals) run flat out
five times rather than twice."""
SMALL_STEP_CONTENDERS: Final = (*[FLAT_OUT] * 5, "powerp-async")
"""A small step lasts a fraction of a second of CPU, so one interruption of the
machine, or answers that happen to come spaced out, weighs on it as on no larger
step; its least disturbed run is found among more, which cost little. Its memory is
read from the first two, as every step's is."""


@dataclass(frozen=True, slots=True)
class Plan:
    settings: tuple[Setting, ...]
    growth: tuple[Setting, ...]


def make_plan(mode: str) -> Plan:
    """``tiny`` (the harness test), ``quick`` (the default) or ``full``."""
    if mode == "tiny":
        return Plan(
            (
                replace(
                    REQUEST_BOUND,
                    span_s=600,
                    signal_count=40,
                    contenders=ALL_CONTENDERS,
                    time_limit_s=None,
                ),
                replace(BYTE_BOUND, window="1s", span_s=120, signal_count=20),
            ),
            (_growth("signals", 20, 60, copies=2), _growth("range", 20, 120)),
        )

    if mode not in ("quick", "full"):
        raise ValueError(f"mode must be tiny, quick or full, got {mode!r}")

    settings = (REQUEST_BOUND, BYTE_BOUND)
    hours: tuple[int, ...] = RANGE_GROWTH_H
    if mode == "full":
        settings = (
            replace(REQUEST_BOUND, time_limit_s=4 * TIME_LIMIT_S),
            replace(BYTE_BOUND, span_s=21600),
        )
        hours = RANGE_GROWTH_FULL_H

    growth = [
        _growth("signals", count, TENANT_GROWTH_SPAN_S, copies=copies)
        for count, copies in TENANT_GROWTH
    ]
    growth += [_growth("range", RANGE_GROWTH_SIGNALS, h * 3600) for h in hours]
    return Plan(settings, tuple(growth))


def _growth(kind: str, signal_count: int, span_s: int, *, copies: int = 1) -> Setting:
    name = f"growth-{kind}-{signal_count}x{span_s}s"
    small = signal_count * span_s < SMALL_STEP_WINDOWS
    return Setting(
        name,
        (),
        "1s",
        span_s,
        signal_count,
        contenders=SMALL_STEP_CONTENDERS if small else GROWTH_CONTENDERS,
        copies=copies,
    )


# The simulator process.


class SimulatorProcess:
    """``powerp simulate`` on a free loopback port, pinned to its own core."""

    def __init__(self, args: Sequence[str]) -> None:
        command = [
            *(sys.executable, "-m", "powerp_async", "simulate", "--port", "0"),
            *("--anchor", format_wire(ANCHOR_US)),
            *args,
        ]
        # Its complaints go to a file: unread, a pipe could fill up and stall it.
        self._errors = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 (see stop)
        self._process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=self._errors, text=True
        )
        _pin(self._process.pid, SERVER_CPU)
        self._ps = psutil.Process(self._process.pid)
        self.base_url = self._read_url()
        self.origin = self.base_url.split("/rt-api/", 1)[0]

    def _read_url(self) -> str:
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        prefix = "PowerP simulator serving "
        if not line.startswith(prefix + "http://127.0.0.1:"):
            self.stop()
            self._errors.seek(0)
            last = self._errors.read().strip().splitlines()[-1:] or ["nothing"]
            raise RuntimeError(
                f"expected the simulator to print {prefix!r} and a loopback URL, got "
                f"{line!r}; its last complaint: {last[0]}"
            )

        return line.removeprefix(prefix)

    def cpu_s(self) -> float:
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def stats(self) -> dict[str, Any]:
        with urllib.request.urlopen(
            f"{self.origin}/_simulator/stats", timeout=10
        ) as answer:
            stats: dict[str, Any] = json.load(answer)
            return stats

    def stop(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()

        self._errors.close()


@contextmanager
def simulator(args: Sequence[str]) -> Iterator[SimulatorProcess]:
    process = SimulatorProcess(args)
    try:
        yield process
    finally:
        process.stop()


def _pin(pid: int, cpu: int) -> None:
    # On a machine with one core there is nothing to separate.
    if (os.cpu_count() or 1) > cpu:
        os.sched_setaffinity(pid, {cpu})


# One contender run.


def run_contender(name: str, setting: Setting) -> dict[str, Any]:
    """Run ``name`` on ``setting`` against a fresh simulator; its raw figures."""
    with simulator(setting.server_args) as server:
        limit_s = setting.time_limit_s if name in TIME_LIMITED else None
        job = job_for(setting, server.base_url, limit_s)
        cpu_before_s = server.cpu_s()
        child = _run_child(name, job)
        server_cpu_s = server.cpu_s() - cpu_before_s
        stats = server.stats()
        wire = wire_sample(server.base_url, setting) if name == "notebook" else None

    queries = stats["requests"].get("query", {})
    child.update(
        setting=setting.name,
        server_cpu_s=server_cpu_s,
        server_requests=sum(queries.values()),
        server_throttled=queries.get("429", 0),
        server_failed=sum(n for s, n in queries.items() if s not in ("200", "429")),
        server_points=stats["points_served"],
        server_per_second=stats["per_second"],
        wire=wire,
    )
    return child


def job_for(setting: Setting, base_url: str, time_limit_s: float | None) -> Job:
    """What every contender of ``setting`` fetches from the server at ``base_url``."""
    span = setting.span
    return Job(
        base_url=base_url,
        client_id=DEFAULT_CLIENT_ID,
        client_secret=DEFAULT_CLIENT_SECRET,
        signal_count=setting.signal_count,
        start_us=span.start_us,
        end_us=span.end_us,
        window=setting.window,
        oracle_rate_per_s=setting.oracle_rate_per_s,
        oracle_burst=setting.oracle_burst,
        oracle_concurrency=setting.oracle_concurrency,
        time_limit_s=time_limit_s,
    )


def _run_child(name: str, job: Job) -> dict[str, Any]:
    command = [sys.executable, "-m", "benchmarks.contenders", name]
    child = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).parent.parent,
    )
    _pin(child.pid, CLIENT_CPU)
    out, err = child.communicate(job_json(job), timeout=RUN_TIMEOUT_S)
    if child.returncode != 0:
        last = err.strip().splitlines()[-1:] or ["no message"]
        return {"contender": name, "error": last[0]}

    result: dict[str, Any] = json.loads(out)
    return result


def wire_sample(base_url: str, setting: Setting) -> dict[str, float]:
    """Bytes per point of one full query, as sent and with gzip asked for."""
    token = requests.post(
        f"{base_url}/v1/auth/token",
        data={
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "grant_type": "client_credentials",
        },
        timeout=10,
    ).json()["access_token"]
    sizes = {}
    for encoding in ("identity", "gzip"):
        raw, points = _sample_query(base_url, token, setting, encoding)
        sizes[encoding] = raw / points

    return {
        "bytes_per_point": sizes["identity"],
        "gzip_bytes_per_point": sizes["gzip"],
    }


def _sample_query(
    base_url: str, token: str, setting: Setting, encoding: str
) -> tuple[int, int]:
    window_us = parse_duration_us(setting.window)
    span_us = min(setting.span_s * 1_000_000, longest_slice_us(window_us))
    database_id, aggregation, indexes = _full_block(setting.tenant())
    body: dict[str, Any] = {
        "databaseId": database_id,
        "measurementIndexes": list(indexes),
        "startTime": format_wire(ANCHOR_US - span_us),
        "endTime": format_wire(ANCHOR_US),
        "aggFunction": aggregation,
        "windowPeriod": setting.window,
    }
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": encoding}
    for _ in range(20):
        answer = requests.post(
            f"{base_url}/v1/Query", json=body, headers=headers, timeout=60, stream=True
        )
        if answer.status_code != 429:
            break

        time.sleep(0.2)

    answer.raise_for_status()
    raw = answer.raw.read(decode_content=False)
    return len(raw), len(_points(raw, answer.headers.get("Content-Encoding")))


def _full_block(tenant: Tenant) -> tuple[int, str, tuple[str, ...]]:
    """The first 20 signals of the tenant that one query can take together."""
    groups: dict[tuple[int, str], list[str]] = {}
    for spec in tenant.signals:
        key = (spec.database_id, spec.default_agg or "last")
        members = groups.setdefault(key, [])
        members.append(spec.index)
        if len(members) == MAX_SIGNALS_PER_QUERY:
            return (*key, tuple(members))

    raise RuntimeError("the demo tenant has no group of 20 signals")


def _points(raw: bytes, encoding: str | None) -> list[object]:
    text = gzip.decompress(raw) if encoding == "gzip" else raw
    points: list[object] = json.loads(text)
    return points


# What the server must answer, and the best any client could do.


def expected_counts(setting: Setting) -> dict[tuple[int, str], int]:
    """Points per signal over the whole range, straight from the simulator's tenant.

    Counted in slices of at most a day, on the window grid, which changes nothing
    (windows never straddle a slice) and bounds the memory of long ranges.
    """
    tenant = setting.tenant()
    span = setting.span
    step_us = max(span.window_us, DAY_US // span.window_us * span.window_us)
    counts = {}
    for spec in tenant.signals[: setting.signal_count]:
        aggregation = spec.default_agg or "last"
        total = 0
        for start_us in range(span.start_us, span.end_us, step_us):
            end_us = min(start_us + step_us, span.end_us)
            grid = RequestGrid(start_us, end_us, span.window_us, tenant.label)
            total += len(tenant.series(spec, aggregation, grid).windows)

        counts[(spec.database_id, spec.index)] = total

    return counts


def completed_counts(
    setting: Setting, completed: Sequence[Sequence[Any]]
) -> dict[tuple[int, str], int]:
    """Points per signal that the queries a contender completed must have brought."""
    tenant = setting.tenant()
    counts: dict[tuple[int, str], int] = {}
    for database_id, aggregation, indexes, start_us, end_us in completed:
        grid = RequestGrid(start_us, end_us, setting.span.window_us, tenant.label)
        for index in indexes:
            spec = tenant.signal(database_id, index)
            key = (database_id, index)
            counts[key] = counts.get(key, 0) + len(
                tenant.series(spec, aggregation, grid).windows
            )

    return counts


def ceiling_of(setting: Setting) -> dict[str, Any]:
    parser = argparse.ArgumentParser()
    add_scenario_options(parser)
    scenario = scenario_from_options(parser.parse_args(list(setting.simulator_args)))
    tenant = setting.tenant()
    signals = [
        Measurement.from_api(spec.metadata())
        for spec in tenant.signals[: setting.signal_count]
    ]
    best = ceiling(scenario, signals, setting.span)
    described = scenario.describe() if scenario is not None else "no limits"
    return {**asdict(best), "scenario": described}


def check_points(result: dict[str, Any], expected: dict[tuple[int, str], int]) -> None:
    """Add ``lost`` and ``duplicated`` to a contender's result, counted per signal."""
    if "counts" not in result:
        return

    got = {(db, index): n for db, index, n in result.pop("counts")}
    lost = sum(max(0, n - got.get(key, 0)) for key, n in expected.items())
    extra = sum(max(0, n - expected.get(key, 0)) for key, n in got.items())
    result.update(expected_points=sum(expected.values()), lost=lost, duplicated=extra)


# The whole comparison.


SECTIONS: Final = ("growth",)
"""What ``only`` may name: a part of the comparison that runs alone."""

GROWTH_ONLY_STEM: Final = "growth_only"


def run(
    mode: str = "quick", out_dir: Path = RESULTS_DIR, *, only: str | None = None
) -> dict[str, Any]:
    """Run every setting and growth step of ``mode``; write and return the results.

    With ``only="growth"`` the growth steps run alone, and their figures go to
    ``growth_only.*`` rather than over those of the whole comparison.
    """
    if only is not None and only not in SECTIONS:
        raise ValueError(f"only must be one of {SECTIONS} or None, got {only!r}")

    plan = make_plan(mode)
    settings = () if only == "growth" else plan.settings
    started_s = time.perf_counter()
    results: dict[str, Any] = {
        "mode": mode,
        "only": only,
        "machine": machine(),
        "settings": [_run_setting(s) for s in settings],
        "growth": [_run_setting(s) for s in plan.growth],
    }
    results["elapsed_s"] = time.perf_counter() - started_s
    if only is None:
        write_compare_outputs(results, out_dir)
    else:
        write_growth_outputs(results, out_dir)

    return results


def _run_setting(setting: Setting) -> dict[str, Any]:
    expected = expected_counts(setting)
    runs = []
    for name in setting.contenders:
        print(f"  {setting.name}: {name} ...", file=sys.stderr, flush=True)
        result = run_contender(name, setting)
        if result.get("cut_off"):
            check_points(result, completed_counts(setting, result.pop("completed")))
        else:
            check_points(result, expected)

        runs.append(result)

    return {
        "setting": asdict(setting),
        "ceiling": ceiling_of(setting),
        "expected_points": sum(expected.values()),
        "runs": runs,
    }


# Outputs: JSON, Markdown, plots.


def write_compare_outputs(results: dict[str, Any], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "compare.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "compare.md").write_text(markdown(results))
    plot_throughput(results["settings"], out_dir / "compare_throughput.png")
    plot_growth(results["growth"], out_dir / "compare_growth.png")


def write_growth_outputs(results: dict[str, Any], out_dir: Path) -> None:
    """The figures of the growth steps run alone, beside the whole comparison's."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / GROWTH_ONLY_STEM
    stem.with_suffix(".json").write_text(json.dumps(results, indent=1) + "\n")
    stem.with_suffix(".md").write_text(markdown(results))
    plot_growth(results["growth"], stem.with_suffix(".png"))


COLUMNS: Final = (
    "contender",
    "points/s",
    "of ceiling",
    "time s",
    "requests",
    "429s",
    "retries",
    "lost",
    "dup",
    "client CPU s / M points",
    "client CPU",
    "server CPU",
    "peak RSS MB (after imports)",
    "bytes / point",
)


def markdown(results: dict[str, Any]) -> str:
    """The goals, the tables of a comparison, one per scenario, then the growth."""
    rows = [goal.row() for goal in goals(results)]
    lines = ["### Goals", "", *_table(("job", "goal", "measured", "result"), rows)]
    for setting in results["settings"]:
        lines += [*_setting_header(setting), *_table(COLUMNS, _setting_rows(setting))]

    lines += ["### Growth: powerp-async alone, 1 s windows, no limits", ""]
    lines += [GROWTH_NOTE, ""]
    lines += _table(GROWTH_COLUMNS, [_growth_row(g) for g in results["growth"]])
    return "\n".join(lines)


def _setting_header(setting: dict[str, Any]) -> list[str]:
    job, best = setting["setting"], setting["ceiling"]
    header = [
        f"### {job['name']}: {job['signal_count']} signals, "
        f"{span_text(job['span_s'])} at {job['window']} windows; "
        f"server: {best['scenario']}",
        "",
        f"Ceiling: {best['requests']:,} requests of 20 signals, {best['points']:,} "
        f"points at most, {best['seconds']:.2f} s at best (bound by {best['bound']}).",
    ]
    wire = next((r["wire"] for r in setting["runs"] if r.get("wire")), None)
    if wire:
        header.append(
            f"One full query on the wire: {wire['bytes_per_point']:.1f} bytes per "
            f"point as sent, {wire['gzip_bytes_per_point']:.1f} with gzip."
        )

    return [*header, ""]


def _setting_rows(setting: dict[str, Any]) -> list[list[str]]:
    return [_row(run, setting) for run in setting["runs"]]


def of_ceiling(run: dict[str, Any], setting: dict[str, Any]) -> float | None:
    """The run's pace as a share of the best possible one; ``None`` without limits.

    A whole run is compared by time. A run stopped at its time limit is compared by
    points per second, against the ceiling's pace over the whole job.
    """
    ceiling_s = setting["ceiling"]["seconds"]
    if ceiling_s <= 0:
        return None

    if run.get("cut_off"):
        ceiling_pace = setting["expected_points"] / ceiling_s
        return float(run["rows"] / run["elapsed_s"] / ceiling_pace)

    return float(ceiling_s / run["elapsed_s"])


def _row(run: dict[str, Any], setting: dict[str, Any]) -> list[str]:
    if "error" in run:
        return [run["contender"], f"failed: {run['error']}", *[""] * (len(COLUMNS) - 2)]

    elapsed_s, points = run["elapsed_s"], max(1, run["rows"])
    share = of_ceiling(run, setting)
    stopped = " (stopped)" if run.get("cut_off") else ""
    return [
        run["contender"],
        f"{run['rows'] / elapsed_s:,.0f}",
        "n/a" if share is None else f"{share:.2f}",
        f"{elapsed_s:.2f}{stopped}",
        f"{run['server_requests']:,}",
        f"{run['server_throttled']:,}",
        f"{run['retries']:,}",
        f"{run['lost']:,}",
        f"{run['duplicated']:,}",
        f"{run['cpu_s'] / points * 1e6:.2f}",
        f"{run['cpu_s'] / elapsed_s:.0%}",
        f"{run['server_cpu_s'] / elapsed_s:.0%}",
        f"{run['peak_rss_mb']:.0f} ({run['base_rss_mb']:.0f})",
        f"{run['body_bytes'] / points:.1f}" if run["body_bytes"] else "n/a",
    ]


GROWTH_NOTE: Final = (
    "Each step runs twice started flat out (`initial_rate` 1,000 requests/s; the "
    "server has no limits), five times if it holds fewer than a million windows, and "
    "the goals read the least CPU of those runs and the higher peak RSS of the first "
    "two; then once as shipped, starting at 4 requests/s. CPU per point is counted "
    "after the first answer, when the token, listing and plan are behind."
)

GROWTH_COLUMNS: Final = (
    "signals",
    "range",
    "points",
    "flat out: points/s",
    "CPU us / point",
    "peak RSS MB",
    "as shipped: points/s",
    "CPU us / point",
    "peak RSS MB",
    "client CPU",
    "server CPU",
    "lost",
    "dup",
)
"""The client and server CPU shares are those of the least disturbed flat-out run;
lost and duplicated points are summed over every run of the step."""


def _growth_row(growth: dict[str, Any]) -> list[str]:
    job = growth["setting"]
    failed = [r for r in growth["runs"] if "error" in r]
    best = least_disturbed(growth)
    shipped = _shipped(growth)
    if failed or best is None or shipped is None:
        why = failed[0]["error"] if failed else "no run to read"
        blank = [""] * (len(GROWTH_COLUMNS) - 2)
        return [str(job["signal_count"]), f"failed: {why}", *blank]

    return [
        str(job["signal_count"]),
        span_text(job["span_s"]),
        f"{best['rows']:,}",
        *_pace_and_cost(best),
        f"{highest_rss_mb(growth):.0f}",
        *_pace_and_cost(shipped),
        f"{shipped['peak_rss_mb']:.0f}",
        f"{best['cpu_s'] / best['elapsed_s']:.0%}",
        f"{best['server_cpu_s'] / best['elapsed_s']:.0%}",
        f"{sum(r['lost'] for r in growth['runs']):,}",
        f"{sum(r['duplicated'] for r in growth['runs']):,}",
    ]


def _pace_and_cost(run: dict[str, Any]) -> list[str]:
    steady = steady_cpu_us_per_point(run)
    return [
        f"{run['rows'] / run['elapsed_s']:,.0f}",
        "n/a" if steady is None else f"{steady:.2f}",
    ]


def span_text(span_s: float) -> str:
    if span_s >= 86_400 and span_s % 86_400 == 0:
        return f"{span_s / 86_400:g} d"

    return f"{span_s / 3600:g} h" if span_s >= 3600 else f"{span_s / 60:g} min"


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return [*lines, ""]


BIN_S: Final = 0.5


def plot_throughput(settings: Sequence[dict[str, Any]], path: Path) -> None:
    """Points per second over time, per contender, one panel per scenario."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(settings), 1, figsize=(9, 3.6 * len(settings)))
    for axis, setting in zip(
        list(getattr(axes, "flat", [axes])), settings, strict=True
    ):
        for run in setting["runs"]:
            if run.get("events"):
                axis.plot(*_binned(run["events"]), label=run["contender"])

        axis.set_xscale("log")
        axis.set_title(setting["setting"]["name"])
        axis.set_xlabel("seconds since the contender started (log scale)")
        axis.set_ylabel("points/s")
        axis.legend(fontsize="small")

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _binned(events: Sequence[Sequence[float]]) -> tuple[list[float], list[float]]:
    bins: dict[int, float] = {}
    for at_s, points in events:
        slot = int(at_s // BIN_S)
        bins[slot] = bins.get(slot, 0.0) + points

    slots = range(max(bins) + 1)
    centres = [(s + 0.5) * BIN_S for s in slots]
    return centres, [bins.get(s, 0.0) / BIN_S for s in slots]


def plot_growth(growth: Sequence[dict[str, Any]], path: Path) -> None:
    """CPU per point and peak memory as the job grows, by signals and by range:
    flat out (what the goals judge) in full lines, as shipped in dashed ones."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cost, memory) = plt.subplots(1, 2, figsize=(10, 3.8))
    for kind in ("signals", "range"):
        steps = [g for g in growth if f"-{kind}-" in g["setting"]["name"]]
        for label, runs in (
            (f"more {kind}, flat out", [least_disturbed(g) for g in steps]),
            (f"more {kind}, as shipped", [_shipped(g) for g in steps]),
        ):
            shown = [r for r in runs if r is not None]
            style = "o--" if "shipped" in label else "o-"
            points = [r["rows"] for r in shown]
            costs = [steady_cpu_us_per_point(r) or 0.0 for r in shown]
            cost.plot(points, costs, style, label=label)
            memory.plot(points, [r["peak_rss_mb"] for r in shown], style, label=label)

    cost.set_ylabel("client CPU us per point, after the first answer")
    memory.set_ylabel("peak RSS MB")
    for axis in (cost, memory):
        axis.set_xscale("log")
        axis.set_xlabel("points fetched")
        axis.set_ylim(bottom=0)

    memory.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _shipped(step: dict[str, Any]) -> dict[str, Any] | None:
    """The growth step's run as shipped, unless it failed."""
    return next(
        (r for r in step["runs"] if r["contender"] != FLAT_OUT and "error" not in r),
        None,
    )


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--full", action="store_true", help="longer ranges (not timed here)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    parser.add_argument(
        "--only",
        choices=SECTIONS,
        help="run this part alone; its figures go to growth_only.json, .md and .png",
    )
    options = parser.parse_args(argv)
    mode = "full" if options.full else "quick"
    results = run(mode, options.out, only=options.only)
    stem = "compare" if options.only is None else GROWTH_ONLY_STEM
    print((options.out / f"{stem}.md").read_text())
    print(f"done in {results['elapsed_s']:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
