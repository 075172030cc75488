"""The outputs of the throttling benchmark: raw JSON, a Markdown table, a plot.

The plot has one panel per scenario, seconds since the client started on the x axis:
requests the server accepted and throttled per second (its own counts), the client's
pacing rate (sampled once a second) and the server's limit where it is a request rate.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import matplotlib

matplotlib.use("Agg")

# The backend is chosen before pyplot is imported, so no display is ever needed.
import matplotlib.pyplot as plt

JSON_NAME: Final = "throttling.json"
TABLE_NAME: Final = "throttling.md"
PLOT_NAME: Final = "throttling.png"
COLUMNS: Final = ("scenario", "goal", "target", "measured", "result")


def machine_info() -> dict[str, Any]:
    """What the figures were measured on; load shows other work on the machine."""
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "processor": _cpu_model(),
        "cores": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def _cpu_model() -> str:
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return platform.processor()

    names = (
        line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")
    )
    return next(names, platform.processor())


def table(checks: Sequence[dict[str, Any]]) -> str:
    """One Markdown table: scenario, goal, target, measured, pass or fail."""
    lines = [
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for check in checks:
        verdict = "pass" if check["passed"] else "**fail**"
        cells = (
            check["scenario"],
            check["goal"],
            check["target"],
            check["measured"],
            verdict,
        )
        lines.append("| " + " | ".join(cells) + " |")

    return "\n".join(lines) + "\n"


def write_outputs(results: dict[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write the three files into ``out_dir``; returns their paths by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / JSON_NAME,
        "table": out_dir / TABLE_NAME,
        "plot": out_dir / PLOT_NAME,
    }
    paths["json"].write_text(json.dumps(results, indent=1, allow_nan=False) + "\n")
    paths["table"].write_text(_markdown(results))
    plot(results["scenarios"], paths["plot"])
    return paths


def _markdown(results: dict[str, Any]) -> str:
    machine = results["machine"]
    return (
        f"# Throttling benchmark ({results['mode']})\n\n"
        f"`{results['command']}` on {machine['processor']}, {machine['cores']} cores, "
        f"Python {machine['python']}, started {results['started_at']}.\n"
        "Judged by the simulator's own per-second counts; the client is a default "
        "`PowerPClient`, told nothing about the limits.\n\n" + table(results["checks"])
    )


def plot(scenarios: Sequence[dict[str, Any]], path: Path) -> None:
    """One panel per scenario: accepted, throttled, pacing rate and limit over time."""
    columns = 2
    rows = max(1, math.ceil(len(scenarios) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(12, 2.8 * rows), squeeze=False)
    shown = [scenario for scenario in scenarios if "per_second" in scenario]
    for axis, scenario in zip(axes.flat, shown, strict=False):
        _panel(axis, scenario)

    for axis in list(axes.flat)[len(shown) :]:
        axis.set_visible(False)

    figure.tight_layout()
    figure.savefig(path, dpi=80)
    plt.close(figure)


def _panel(axis: Any, scenario: dict[str, Any]) -> None:
    start = scenario["client_start"]
    bins = _dense(scenario["per_second"])
    seconds = [row["second"] - start for row in bins]
    axis.step(seconds, [r["accepted"] for r in bins], where="post", label="accepted/s")
    axis.step(seconds, [r["throttled"] for r in bins], where="post", label="429/s")
    axis.step(seconds, [r["failed"] for r in bins], where="post", label="failed/s")
    samples = [s for s in scenario["samples"] if "rate" in s]
    axis.plot(
        [s["t"] - start for s in samples],
        [s["rate"] for s in samples],
        label="client rate",
    )
    limits = scenario.get("limit_steps") or []
    if limits:
        times = [t - start for t, _ in limits] + [seconds[-1] if seconds else 0]
        values = [v for _, v in limits] + [limits[-1][1]]
        axis.step(
            times, values, where="post", linestyle="--", color="grey", label="limit"
        )

    axis.set_title(scenario["name"], fontsize=10)
    axis.set_xlabel("s since client start", fontsize=8)
    axis.set_ylabel("requests/s", fontsize=8)
    axis.tick_params(labelsize=7)
    axis.legend(fontsize=6, loc="upper left")


def _dense(per_second: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bins with the seconds the server saw no request in filled with zeros, so
    a silent stretch plots as zero rather than as the last bin drawn across it."""
    if not per_second:
        return []

    known = {row["second"]: row for row in per_second}
    empty = {"accepted": 0, "throttled": 0, "failed": 0, "points": 0}
    first, last = min(known), max(known)
    return [
        known.get(second, {"second": second, **empty})
        for second in range(first, last + 1)
    ]
