"""Peak memory of an export as it grows tenfold: memory must stay flat.

Runs ``powerp export`` against the simulator (each in its own process) for about
5 million and about 50 million points of the whole demo tenant at one-second windows,
and reads the export process's peak resident memory from the kernel (``wait4``).
Writes ``results/memory.json`` and ``results/memory.md``.

Linux folds the parent's peak into a child's at ``fork`` and ``exec``, so the figure is
true only when this runs in a small process of its own: ``python -m benchmarks`` starts
it as one (``run_isolated``) rather than after the comparison in its own process.

    python -m benchmarks.memory            # 5 M and 50 M points, a few minutes
    python -m benchmarks.memory --quick    # 0.5 M and 5 M points
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
SIGNALS = 1016  # the demo tenant
LIMIT_MB = 300.0
ALLOWED_GROWTH = 0.20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="0.5 M and 5 M points")
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    options = parser.parse_args()
    summary = run(quick=options.quick, out_dir=options.out)
    print(table(summary))


def run_isolated(quick: bool, out_dir: Path) -> None:
    """:func:`run` in a fresh process, whose children inherit no large peak."""
    command = [sys.executable, "-m", "benchmarks.memory", "--out", str(out_dir)]
    subprocess.run(
        [*command, *(["--quick"] if quick else [])],
        check=True,
        cwd=Path(__file__).parent.parent,
        stdout=subprocess.DEVNULL,
    )


def run(quick: bool, out_dir: Path) -> dict[str, object]:
    """Both exports; writes ``memory.json`` and ``memory.md`` into ``out_dir``."""
    targets = (500_000, 5_000_000) if quick else (5_000_000, 50_000_000)
    with simulator() as base_url:
        small, large = (export_run(base_url, points) for points in targets)

    growth = large["peak_mb"] / small["peak_mb"] - 1
    summary = {
        "runs": [small, large],
        "growth": round(growth, 3),
        "passes": large["peak_mb"] < LIMIT_MB and growth <= ALLOWED_GROWTH,
        "machine": machine(),
        "command": "python -m benchmarks.memory" + (" --quick" if quick else ""),
    }
    out_dir.mkdir(exist_ok=True)
    (out_dir / "memory.json").write_text(json.dumps(summary, indent=2))
    (out_dir / "memory.md").write_text(table(summary))
    return summary


class simulator:
    """``powerp simulate`` on a free loopback port, in its own process."""

    def __enter__(self) -> str:
        command = [sys.executable, "-m", "powerp_async.simulator", "--port", "0"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip().rsplit(" ", 1)[1]

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        assert self.process.stdout is not None
        self.process.stdout.close()


def export_run(base_url: str, points: int) -> dict[str, float | int]:
    """One export of about ``points`` points; its peak memory and pace."""
    # Some signals start late or have gaps: ask for a little more to reach the target.
    seconds = round(points / (SIGNALS * 0.94))
    env = {
        **os.environ,
        "POWERP_CLIENT_ID": "demo",
        "POWERP_CLIENT_SECRET": "demo-secret",
        "POWERP_API_BASE_URL": base_url,
    }
    with tempfile.TemporaryDirectory() as folder:
        command = [
            *(sys.executable, "-m", "powerp_async", "export", "--quiet"),
            *("--since", f"{seconds}s", "--out", f"{folder}/out"),
        ]
        started = time.monotonic()
        process = subprocess.Popen(command, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.monotonic() - started
        assert os.waitstatus_to_exitcode(status) == 0, "the export failed"
        report = json.loads(Path(folder, "out", "_report.json").read_text())
    return {
        "target_points": points,
        "points": report["points"],
        "peak_mb": round(usage.ru_maxrss / 1024, 1),
        "elapsed_s": round(elapsed, 1),
        "points_per_s": round(report["points"] / elapsed),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
    }


def machine() -> dict[str, object]:
    return {
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def table(summary: dict) -> str:
    lines = [
        "| points | peak memory | time | points/s | client CPU |",
        "| ---: | ---: | ---: | ---: | ---: |",
    ]
    for run in summary["runs"]:
        lines.append(
            f"| {run['points']:,} | {run['peak_mb']} MB | {run['elapsed_s']} s "
            f"| {run['points_per_s']:,} | {run['cpu_s']} s |"
        )
    verdict = "meets" if summary["passes"] else "misses"
    lines.append("")
    lines.append(
        f"Peak memory grows {summary['growth']:+.1%} for ten times the points; this "
        f"{verdict} the goal (under {LIMIT_MB:.0f} MB, within "
        f"{ALLOWED_GROWTH:.0%}). Command: `{summary['command']}`."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
