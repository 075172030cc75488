"""``python -m benchmarks.shared_adaptive``: two exports find an unknown limit together.

For each limit R, a ``powerp simulate`` process with a token bucket of R queries per
second (burst of one second's worth, ``BURST_S``) serves the demo tenant, and two
``powerp export`` processes fetch one half of it each, both with ``--rate-backend``
naming one Redis server this benchmark starts and no rate at all: they discover R
together through the adaptive shared pace. The span of data grows with R, so that both
run for about ``TARGET_S`` seconds.

What counts is the server's own per-second count of queries (``/_simulator/stats``,
``endpoint=query``), over the *steady state*: from ``WARM_UP_S`` after the start to the
last full second before the first export ends. Judged against the adaptive goals of
the throttling benchmark: together the exports get at least 95 % of R accepted, and at
most 2 % of their queries after the warm-up are refused.

Each limit is also run with both exports told ``--fixed-rate R``, as a calibration:
if that falls short of R too, the machine (server, clients, Redis on shared cores) is
the bottleneck, not the discovery. Results go to
``benchmarks/results/shared_adaptive.json`` and ``.md``. About six minutes.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from .compare import RESULTS_DIR
from .shared_rate import ANCHOR, query_seconds, redis_server, simulator, start_exports

LIMITS: Final = (20.0, 100.0)
BURST_S: Final = 1.0
TARGET_S: Final = 60.0
WARM_UP_S: Final = 10
QUERIES_PER_HOUR: Final = 147.5
"""The demo tenant's queries per hour of 1-minute windows (295 for two hours)."""

GOAL_SHARE: Final = 0.95
GOAL_THROTTLED: Final = 0.02
EXPORT_TIMEOUT_S: Final = 600.0

Row = dict[str, Any]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.shared_adaptive",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("--limit", type=float, action="append", help="default 20 100")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    options = parser.parse_args(argv)
    limits = options.limit or LIMITS
    rows = [run(limit, fixed=fixed) for limit in limits for fixed in (False, True)]
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "shared_adaptive.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown(rows)
    (options.out / "shared_adaptive.md").write_text(table)
    print(table)
    return 0


def span_for(limit: float) -> tuple[str, ...]:
    """A range of the demo tenant that keeps two exports busy for ``TARGET_S`` at
    ``limit`` queries per second."""
    hours = math.ceil(limit * TARGET_S / QUERIES_PER_HOUR)
    end = datetime.fromisoformat(ANCHOR)
    start = end - timedelta(hours=hours)
    return ("--start", start.isoformat(), "--end", ANCHOR, "--window", "1m")


def run(limit: float, *, fixed: bool = False) -> Row:
    """Both exports against a hidden limit (told it, if ``fixed``); the server's
    counts, summed up."""
    load_before = _load()
    with (
        tempfile.TemporaryDirectory(prefix="powerp-adaptive-") as folder,
        redis_server(Path(folder)) as (_, port),
        simulator(limit, burst=limit * BURST_S) as base_url,
    ):
        since = int(time.time())
        redis_url = f"redis://127.0.0.1:{port}/0"
        rate = limit if fixed else None
        exports = start_exports(base_url, redis_url, rate, folder, span_for(limit))
        first_end, codes = _wait_for(exports)
        seconds = query_seconds(base_url, since)

    row = summary(limit, codes, seconds, first_end=int(first_end))
    row["pace"] = "fixed at R" if fixed else "adaptive"
    row["load"] = [load_before, _load()]
    return row


def summary(
    limit: float, codes: list[int], seconds: list[Row], *, first_end: int
) -> Row:
    """The steady state's share of ``limit`` and the 429 share after the warm-up.

    Seconds count from the first in which the server saw a query; the steady state
    ends before ``first_end``, the wall-clock second in which the first export ended.
    """
    counts = {s["second"]: (s["accepted"], s["throttled"]) for s in seconds}
    first = min(counts)
    every = [counts.get(second, (0, 0)) for second in range(first, max(counts) + 1)]
    accepted = [a for a, _ in every]
    throttled = [t for _, t in every]
    steady_until = first_end - first
    steady = accepted[WARM_UP_S:steady_until]
    sent_after = sum(accepted[WARM_UP_S:]) + sum(throttled[WARM_UP_S:])
    share = sum(steady) / len(steady) / limit if steady else 0.0
    throttled_share = sum(throttled[WARM_UP_S:]) / sent_after if sent_after else 0.0
    return {
        "limit": limit,
        "exit_codes": codes,
        "steady_seconds": len(steady),
        "steady_share": round(share, 4),
        "throttled_share_after_warm_up": round(throttled_share, 4),
        "throttled": sum(throttled),
        "accepted": sum(accepted),
        "meets_goals": share >= GOAL_SHARE and throttled_share <= GOAL_THROTTLED,
        "accepted_per_second": accepted,
        "throttled_per_second": throttled,
    }


def markdown(rows: list[Row]) -> str:
    lines = [
        "| limit R | pace | steady seconds | accepted / R (goal >= 0.95) "
        "| 429 share after 10 s (goal <= 0.02) | 429s | queries | goals | load "
        "| exits |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        load = " -> ".join(f"{value:.1f}" for value in row.get("load", []))
        lines.append(
            f"| {row['limit']:g} | {row.get('pace', 'adaptive')} "
            f"| {row['steady_seconds']} | {row['steady_share']:.3f} "
            f"| {row['throttled_share_after_warm_up']:.3f} | {row['throttled']} "
            f"| {row['accepted']} | {'met' if row['meets_goals'] else 'missed'} "
            f"| {load} | {row['exit_codes']} |"
        )
    return "\n".join(lines) + "\n"


def _wait_for(exports: list[subprocess.Popen[bytes]]) -> tuple[float, list[int]]:
    """When the first export ended (wall clock), and every exit code."""
    deadline = time.monotonic() + EXPORT_TIMEOUT_S
    while all(export.poll() is None for export in exports):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no export ended within {EXPORT_TIMEOUT_S:g} s")
        time.sleep(0.05)

    first_end = time.time()
    codes = [export.wait(timeout=EXPORT_TIMEOUT_S) for export in exports]
    return first_end, codes


def _load() -> float:
    """The one-minute load average, as ``uptime`` shows it."""
    return os.getloadavg()[0]


if __name__ == "__main__":
    sys.exit(main())
