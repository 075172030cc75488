"""How close the default client gets to the limits a server hides from it.

Run as ``python -m benchmarks.throttling`` (about five minutes on two cores) or with
``--full`` for the long versions (about twenty); ``--only NAME`` runs one scenario.
Each scenario runs against its own simulator process; the client is a default
:class:`~powerp_async.PowerPClient`, which discovers every limit from the answers
alone. The figures are judged by the server's own per-second counts against the goals
G1 to G12 of the rate-control notes (token buckets, cold start, changing limits, fixed
windows, cost and size quotas, a size met by timeouts, faults and an outage), and
written to ``benchmarks/results/throttling.{json,md,png}``.

Known shortcomings: the quick run shortens every scenario (20 s buckets, so 10 s of
steady state instead of 60 s, 30 s at 5 requests/s; limit changes 15 s apart instead
of 30 s; finite jobs of 10 to 12 s, 30 s for the size limits, where start-up weighs
more; 40 s of 10 s windows and no 1 s or 60 s ones); convergence and breaker timings
come from one-second bins and samples, so they are good to about a second; and
another process busy on the machine slows the simulator and the client alike, which
the load average in the JSON reveals.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from ._throttling_cases import Case, cases
from ._throttling_harness import CaseRun, run_case, simulator_command
from ._throttling_metrics import Check, evaluate
from ._throttling_report import machine_info, table, write_outputs

logger = logging.getLogger("powerp_async.benchmarks.throttling")

DEFAULT_OUT_DIR: Final = Path(__file__).parent / "results"
ATTEMPTS: Final = 2


def run(quick: bool, out_dir: Path) -> dict[str, Any]:
    """Run the default (``quick``) or the full benchmark; returns the raw results.

    The results are also written to ``out_dir`` as JSON, a Markdown table and a plot.
    """
    mode = "quick" if quick else "full"
    command = "python -m benchmarks.throttling" + ("" if quick else " --full")
    return run_cases(cases(quick=quick), out_dir, mode=mode, command=command)


def run_cases(
    chosen: Sequence[Case], out_dir: Path, *, mode: str, command: str
) -> dict[str, Any]:
    """Run ``chosen`` one after the other, then write and return the results."""
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    began = time.monotonic()
    scenarios: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    for case in chosen:
        record, case_checks = _attempt(case)
        scenarios.append(record)
        checks += case_checks

    results = {
        "mode": mode,
        "command": command,
        "started_at": started_at,
        "wall_s": round(time.monotonic() - began, 1),
        "machine": machine_info(),
        "checks": checks,
        "scenarios": scenarios,
    }
    write_outputs(results, out_dir)
    return results


def _attempt(case: Case) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Run one case, twice if its server fails to start; a failure is recorded."""
    error: Exception | None = None
    for attempt in range(1, ATTEMPTS + 1):
        logger.info("running %s for up to %.0f s", case.name, case.cap_s)
        try:
            return _record(run_case(case))
        except (RuntimeError, OSError) as caught:
            logger.warning("%s: attempt %d failed: %s", case.name, attempt, caught)
            error = caught

    message = f"not run: {error}"
    record = {"name": case.name, "goals": list(case.goals), "error": message}
    check = Check(case.name, "harness", "the scenario runs", message, passed=False)
    return record, [check.row()]


def _record(run: CaseRun) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    metrics, checks = evaluate(run)
    case = run.case
    record = {
        "name": case.name,
        "goals": list(case.goals),
        "simulator_command": shlex.join(simulator_command(case)),
        "job": _job(run),
        "server_start": run.server_start,
        "client_start": run.outcome.client_start,
        "client_end": run.outcome.client_end,
        "limit_steps": _limit_steps(run),
        "metrics": _finite(metrics),
        "engine": run.engine(),
        "exactness": run.exact,
        "per_second": run.per_second,
        "samples": [_finite(sample) for sample in run.outcome.samples],
    }
    return record, [check.row() for check in checks]


def _job(run: CaseRun) -> dict[str, Any]:
    job = run.job
    limit = job.ceiling
    return {
        "signals": len(job.signals),
        "start": job.start.isoformat(),
        "end": job.end.isoformat(),
        "window": job.window,
        "ceiling": None
        if limit is None
        else {
            "requests": limit.requests,
            "points": limit.points,
            "seconds": limit.seconds,
            "bound": limit.bound,
        },
    }


def _limit_steps(run: CaseRun) -> list[list[float]]:
    """``(wall time, request limit)`` from the client's start on; empty if none."""
    case = run.case
    if case.limit_per_s is None:
        return []

    steps = [[run.outcome.client_start, case.limit_per_s]]
    steps += [[run.server_start + offset, limit] for offset, limit in case.changes]
    return steps


def _finite(row: dict[str, Any]) -> dict[str, Any]:
    # JSON has no NaN or infinity; a figure that could not be measured is null.
    return {
        key: None if isinstance(value, float) and value != value else value
        for key, value in row.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.throttling", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--full", action="store_true", help="the long scenarios")
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=DEFAULT_OUT_DIR,
        help="where the results go (default: %(default)s)",
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="SCENARIO",
        help="run only this scenario (repeatable), e.g. bucket-100",
    )
    options = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    # Every 5xx and retry is logged by the client; the results count them instead.
    logging.getLogger("powerp_async").setLevel(logging.ERROR)
    logger.setLevel(logging.INFO)
    chosen = cases(quick=not options.full)
    if options.only:
        chosen = tuple(case for case in chosen if case.name in options.only)

    mode = "full" if options.full else "quick"
    given = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(["python", "-m", "benchmarks.throttling", *given])
    results = run_cases(chosen, options.out_dir, mode=mode, command=command)
    print(table(results["checks"]), end="")
    print(f"{results['wall_s']:.0f} s; results in {options.out_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
