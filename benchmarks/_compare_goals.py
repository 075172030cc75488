"""What the comparison must show, judged from one run's raw results.

Each goal is a ratio measured within the run, so a busy machine moves both sides of
it: powerp-async against the notebook's way and the static oracle on the
request-bound job, the naive fan-out throttled, no point lost or duplicated, and the
cost per point and peak memory flat as the work grows. Growth is judged on the runs
started flat out, so that each step runs at the pace its CPU allows from its first
request: the climb from the default start takes as long in every job, and so weighs
the more the smaller the job.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final

NOTEBOOK_FACTOR: Final = 20.0
ORACLE_SHARE: Final = 0.90
GROWTH_SPREAD: Final = 1.25
ENGINE_PREFIX: Final = "powerp-async"
FLAT_OUT: Final = "powerp-async-flat-out"
"""The growth steps' judged runs: the client started faster than any step can send."""


@dataclass(frozen=True, slots=True)
class Goal:
    name: str
    target: str
    measured: str
    met: bool

    def row(self) -> list[str]:
        return [
            self.name,
            self.target,
            self.measured,
            "pass" if self.met else "**fail**",
        ]


def steady_cpu_us_per_point(run: dict[str, Any]) -> float | None:
    """Client CPU per point after the first answer, when start-up is behind it.

    The first answer's CPU holds the fixed costs of a run (imports done, the token,
    the listing, the plan); leaving them out shows what each further point costs.
    """
    first = run.get("first_answer")
    if not first or run["rows"] <= first[1]:
        return None

    cpu_s, points = first
    return float((run["cpu_s"] - cpu_s) / (run["rows"] - points) * 1e6)


def goals(results: dict[str, Any]) -> list[Goal]:
    """Every goal the results can be judged on; a missing contender is skipped."""
    found = list(_request_bound(results["settings"]))
    found += list(_exactness(results["settings"] + results["growth"]))
    found += list(_growth(results["growth"]))
    return found


def _runs(setting: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["contender"]: r for r in setting["runs"] if "error" not in r}


def _pace(run: dict[str, Any]) -> float:
    return float(run["rows"] / run["elapsed_s"])


def _request_bound(settings: Sequence[dict[str, Any]]) -> Iterator[Goal]:
    setting = next(
        (s for s in settings if s["setting"]["name"] == "request-bound"), None
    )
    if setting is None:
        return

    runs = _runs(setting)
    engine = runs.get(ENGINE_PREFIX)
    if engine is None:
        return

    if "notebook" in runs:
        factor = _pace(engine) / _pace(runs["notebook"])
        target = f">= {NOTEBOOK_FACTOR:g} x the notebook's points/s"
        yield Goal(
            "request-bound", target, f"{factor:.1f} x", factor >= NOTEBOOK_FACTOR
        )

    if "static-oracle" in runs:
        share = _pace(engine) / _pace(runs["static-oracle"])
        target = f">= {ORACLE_SHARE:.0%} of the static oracle's points/s"
        yield Goal("request-bound", target, f"{share:.1%}", share >= ORACLE_SHARE)

    fan_out = runs.get("fan-out")
    if fan_out is not None:
        share = fan_out["server_throttled"] / max(1, fan_out["server_requests"])
        measured = f"{share:.0%} of its requests answered 429"
        yield Goal(
            "request-bound", "the naive fan-out is throttled", measured, share > 0
        )


def _exactness(settings: Sequence[dict[str, Any]]) -> Iterator[Goal]:
    checked = [
        (setting["setting"]["name"], run)
        for setting in settings
        for run in setting["runs"]
        if "error" not in run
        and run["contender"].startswith(ENGINE_PREFIX)
        and "lost" in run
    ]
    if not checked:
        return

    wrong = [
        f"{name} {run['contender']}: {run['lost']} lost, {run['duplicated']} dup"
        for name, run in checked
        if run["lost"] or run["duplicated"]
    ]
    points = sum(run["rows"] for _, run in checked)
    measured = "; ".join(wrong) or f"0 lost, 0 duplicated of {points:,} points"
    yield Goal(
        f"every powerp-async run ({len(checked)})",
        "no point lost or duplicated",
        measured,
        not wrong,
    )


def flat_out_runs(step: dict[str, Any]) -> list[dict[str, Any]]:
    """The runs of a growth step started flat out that did not fail."""
    return [r for r in step["runs"] if r["contender"] == FLAT_OUT and "error" not in r]


def least_disturbed(step: dict[str, Any]) -> dict[str, Any] | None:
    """The flat-out run of a growth step with the least CPU per point after its
    first answer: the one other work on the machine disturbed least, as the hot path
    takes the best of its rounds."""
    timed = [r for r in flat_out_runs(step) if steady_cpu_us_per_point(r) is not None]
    return min(timed, key=_steady_cost, default=None)


def least_cpu_us_per_point(step: dict[str, Any]) -> float | None:
    best = least_disturbed(step)
    return None if best is None else steady_cpu_us_per_point(best)


def _steady_cost(run: dict[str, Any]) -> float:
    return steady_cpu_us_per_point(run) or 0.0


def highest_rss_mb(step: dict[str, Any]) -> float | None:
    """The higher peak RSS of a growth step's first two flat-out runs: a second try
    does not make memory any smaller, so the worse one is what a user must plan for.
    Two for every step, so that the more runs of a small step do not raise its
    figure alone."""
    runs = flat_out_runs(step)[:2]
    return max((r["peak_rss_mb"] for r in runs), default=None)


def _growth(growth: Sequence[dict[str, Any]]) -> Iterator[Goal]:
    for kind in ("signals", "range"):
        steps = [g for g in growth if f"-{kind}-" in g["setting"]["name"]]
        costs = [c for c in map(least_cpu_us_per_point, steps) if c is not None]
        if len(costs) >= 2:
            yield _flat(
                f"growth in {kind} (flat out)", "CPU per point", costs, "{:.2f} us"
            )

        memory = [m for m in map(highest_rss_mb, steps) if m is not None]
        if len(memory) >= 2:
            yield _flat(f"growth in {kind} (flat out)", "peak RSS", memory, "{:.0f} MB")


def _flat(name: str, what: str, values: Sequence[float], shown: str) -> Goal:
    spread = max(values) / min(values)
    measured = f"{shown.format(min(values))} to {shown.format(max(values))}"
    return Goal(
        name,
        f"{what} flat within {GROWTH_SPREAD - 1:.0%} (max / min)",
        f"{measured}, {spread:.2f} x",
        spread <= GROWTH_SPREAD,
    )
