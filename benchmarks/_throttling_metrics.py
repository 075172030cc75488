"""Figures and goal checks of one run, judged by the server's per-second counts.

Each kind of scenario has its judge, which returns the figures (for the JSON) and one
:class:`Check` per goal (for the table). Bin arithmetic lives in ``_throttling_bins``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

from ._throttling_bins import (
    converged_s,
    first_sample,
    lowest_rate,
    ratio,
    steady_points_per_s,
    steady_rates,
    throttled_between,
)
from ._throttling_cases import Case
from ._throttling_harness import CaseRun

FAULT_SHARE: Final = 0.05
PROBE_PERIOD_S: Final = 5.0
BREAKER_OPEN_S: Final = 2.0
PACKING_SHARE: Final = 0.975
"""Signals per request sent, as a share of those per block planned (G10)."""
"""G8 gives the breaker this long after an outage starts to open."""


@dataclass(frozen=True, slots=True)
class Check:
    """One goal of one scenario: what was wanted, what was measured, and the verdict."""

    scenario: str
    goal: str
    target: str
    measured: str
    passed: bool

    def row(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "goal": self.goal,
            "target": self.target,
            "measured": self.measured,
            "passed": self.passed,
        }


def evaluate(run: CaseRun) -> tuple[dict[str, Any], list[Check]]:
    """The figures of ``run`` and its checks against the goals of its case."""
    kind = run.case.name.split("-")[0]
    judge = _JUDGES.get(kind, _judge_bucket)
    metrics, checks = judge(run)
    metrics.update(_common(run))
    return metrics, checks


def _common(run: CaseRun) -> dict[str, Any]:
    outcome = run.outcome
    stats = outcome.stats
    elapsed_s = outcome.client_end - outcome.client_start
    return {
        "client_s": round(elapsed_s, 2),
        "requests": stats.requests,
        "signals_per_request": ratio(outcome.signals_sent, stats.requests),
        "planned_signals_per_block": ratio(outcome.signals_fetched, outcome.blocks),
        "failure_retry_share": ratio(_failures(run), stats.requests),
        "server_cpu_share": ratio(run.server_cpu_s, elapsed_s),
        "client_cpu_share": ratio(run.client_cpu_s, elapsed_s),
        "completed": outcome.completed,
        "failed_blocks": outcome.failed_blocks,
    }


def _judge_bucket(run: CaseRun) -> tuple[dict[str, Any], list[Check]]:
    limit = _limit(run.case)
    accepted, throttled_share = steady_rates(run)
    metrics: dict[str, Any] = {
        "steady_accepted_per_s": accepted,
        "steady_accepted_share": ratio(accepted, limit),
        "steady_throttled_share": throttled_share,
    }
    checks = [
        _check(
            run, "G1", ">= 98% of R", _pct(accepted / limit), accepted >= 0.98 * limit
        ),
        _throttle_check(run, limit, throttled_share),
    ]
    if "G3" in run.case.goals:
        seconds = converged_s(run.per_second, run.outcome.client_start, limit)
        metrics["cold_start_s"] = seconds
        ok = seconds is not None and seconds <= 15
        checks.append(_check(run, "G3", "90% of R within 15 s", _secs(seconds), ok))

    return metrics, checks


def _throttle_check(run: CaseRun, limit: float, share: float) -> Check:
    # The notes allow 3% below 20 requests/s; the product's own bar is 2% for every
    # bucket, and the stricter of the two is the one judged.
    allowed = 0.01 if limit >= 100 else 0.02
    target = f"429 share <= {allowed:.0%}"
    return _check(run, "G2", target, _pct(share), share <= allowed)


def _judge_change(run: CaseRun) -> tuple[dict[str, Any], list[Check]]:
    metrics: dict[str, Any] = {}
    checks: list[Check] = []
    old_limit = _limit(run.case)
    steps = run.case.changes
    for number, (offset_s, new_limit) in enumerate(steps):
        changed_at = run.server_start + offset_s
        until = (
            run.server_start + steps[number + 1][0]
            if number + 1 < len(steps)
            else math.inf
        )
        seconds = converged_s(run.per_second, changed_at, new_limit, until)
        excess = throttled_between(run.per_second, changed_at, until)
        label = f"{old_limit:g}->{new_limit:g}"
        metrics[f"converged_s_{label}"] = seconds
        metrics[f"throttled_{label}"] = excess
        if new_limit < old_limit:
            checks += _drop_checks(run, seconds, excess, old_limit)
        else:
            ok = seconds is not None and seconds <= 20
            checks.append(
                _check(run, "G5", f"{label}: converged <= 20 s", _secs(seconds), ok)
            )

        old_limit = new_limit

    return metrics, checks


def _drop_checks(
    run: CaseRun, seconds: float | None, excess: int, old_limit: float
) -> list[Check]:
    converged = seconds is not None and seconds <= 5
    allowed = round(old_limit)
    return [
        _check(run, "G4", "halved: converged <= 5 s", _secs(seconds), converged),
        _check(run, "G4", f"halved: 429s <= {allowed}", f"{excess}", excess <= allowed),
    ]


def _judge_window(run: CaseRun) -> tuple[dict[str, Any], list[Check]]:
    window_s = (
        run.case.scenario.requests.window_s if run.case.scenario.requests else None
    )
    assert window_s is not None
    quota = _limit(run.case) * window_s
    first = math.ceil((run.outcome.client_start - run.server_start) / window_s)
    last = math.floor((run.outcome.client_end - run.server_start) / window_s)
    accepted = throttled = 0
    for row in run.per_second:
        window = math.floor((row["second"] + 0.5 - run.server_start) / window_s)
        if first <= window < last:
            accepted += row["accepted"]
            throttled += row["throttled"]

    windows = max(0, last - first)
    share = ratio(accepted, windows * quota)
    throttled_share = ratio(throttled, accepted + throttled)
    metrics = {
        "full_windows": windows,
        "quota_share": share,
        "throttled_share": throttled_share,
    }
    return metrics, [
        _check(
            run,
            "G6",
            ">= 95% of quota",
            f"{_pct(share)} of {windows} windows",
            share >= 0.95,
        ),
        _check(
            run, "G6", "429 share <= 1%", _pct(throttled_share), throttled_share <= 0.01
        ),
    ]


def _judge_cost(run: CaseRun) -> tuple[dict[str, Any], list[Check]]:
    share, makespan_s = _ceiling_share(run)
    quota = run.case.scenario.cost.points_per_s if run.case.scenario.cost else math.nan
    points_per_s = steady_points_per_s(run)
    metrics = {
        "makespan_s": makespan_s,
        "ceiling_s": _ceiling_s(run),
        "ceiling_share": share,
        "steady_points_share": ratio(points_per_s, quota),
    }
    ok = run.outcome.completed and share >= 0.95
    return metrics, [_check(run, "G12", ">= 95% of the ceiling", _pct(share), ok)]


def _judge_size(run: CaseRun) -> tuple[dict[str, Any], list[Check]]:
    share, makespan_s = _ceiling_share(run)
    stats = run.outcome.stats
    per_request = ratio(run.outcome.signals_sent, stats.requests)
    # The plan's own packing: its groups of 6, 9 or 29 signals give smaller blocks
    # that no client can fill, so requests are judged against the blocks planned.
    planned = ratio(run.outcome.signals_fetched, run.outcome.blocks)
    requests = run.job.ceiling.requests if run.job.ceiling else 0
    allowed_s = 1.03 * requests / _limit(run.case) + 15
    metrics = {
        "makespan_s": makespan_s,
        "ceiling_s": _ceiling_s(run),
        "ceiling_share": share,
        "splits": stats.splits,
    }
    split = f"{stats.splits} splits, {run.outcome.failed_blocks} failed"
    handled = stats.splits > 0 and run.outcome.completed
    return metrics, [
        _check(
            run,
            "G10",
            ">= 97.5% of the plan's signals/request",
            f"{per_request:.2f} of {planned:.2f}",
            per_request >= PACKING_SHARE * planned,
        ),
        _check(
            run,
            "G10",
            f"makespan <= {allowed_s:.1f} s",
            f"{makespan_s:.1f} s",
            makespan_s <= allowed_s,
        ),
        _check(run, "413", "split, none failed", split, handled),
        _check(run, "G12", ">= 95% of the ceiling", _pct(share), share >= 0.95),
    ]


def _judge_faults(run: CaseRun) -> tuple[dict[str, Any], list[Check]]:
    limit = _limit(run.case)
    accepted, _ = steady_rates(run)
    slowest = lowest_rate(run)
    retry_share = ratio(_failures(run), run.outcome.stats.requests)
    goodput_goal = 0.98 * (1 - FAULT_SHARE) * limit
    metrics = {"steady_accepted_per_s": accepted, "lowest_rate": slowest}
    return metrics, [
        _check(
            run,
            "G7",
            f"goodput >= {goodput_goal:.1f}/s",
            f"{accepted:.1f}/s",
            accepted >= goodput_goal,
        ),
        _check(
            run,
            "G7",
            f"pacing >= {0.95 * limit:g}/s",
            f"min {slowest:.1f}/s",
            slowest >= 0.95 * limit,
        ),
        _exact_check(run, "G7"),
        _check(
            run,
            "G7",
            "retries <= 6% of requests",
            _pct(retry_share),
            retry_share <= 0.06,
        ),
    ]


def _judge_outage(run: CaseRun) -> tuple[dict[str, Any], list[Check]]:
    outage = run.case.scenario.outage
    assert outage is not None
    starts = run.server_start + outage.at_s
    ends = run.server_start + outage.ends_s
    opened = first_sample(
        run.outcome.samples, starts, lambda s: s.get("circuit") != "closed"
    )
    open_s = None if opened is None else opened - starts
    probes, allowed = _probes(run, starts, ends)
    recovered_s = converged_s(run.per_second, ends, _limit(run.case))
    retry_share = ratio(_failures(run), run.outcome.stats.requests)
    metrics = {"breaker_open_s": open_s, "probes": probes, "recovered_s": recovered_s}
    return metrics, [
        _check(
            run,
            "G8",
            "breaker open <= 2 s",
            _secs(open_s, "+-1 s"),
            open_s is not None and open_s <= BREAKER_OPEN_S,
        ),
        _check(
            run,
            "G8",
            f"probes <= {allowed} (1 per 5 s)",
            f"{probes}",
            probes <= allowed,
        ),
        _check(
            run,
            "G8",
            "90% of R <= 10 s after",
            _secs(recovered_s),
            recovered_s is not None and recovered_s <= 10,
        ),
        _check(
            run,
            "G8",
            "retries <= 10% of requests",
            _pct(retry_share),
            retry_share <= 0.10,
        ),
        _exact_check(run, "G8"),
    ]


def _probes(run: CaseRun, starts: float, ends: float) -> tuple[int, int]:
    """Requests that failed in the outage once the breaker had its 2 s to open, and
    how many probes one every 5 s allows; counted whether or not it opened."""
    since = starts + BREAKER_OPEN_S
    count = sum(
        r["failed"]
        for r in run.per_second
        if since <= r["second"] and r["second"] + 1 <= ends
    )
    allowed = math.floor((ends - since) / PROBE_PERIOD_S) + 1
    return count, allowed


def _exact_check(run: CaseRun, goal: str) -> Check:
    exact = run.exact or {}
    measured = (
        f"{exact.get('fetched_points', 0):,} points, "
        f"{exact.get('missing', '?')} missing, {exact.get('unexpected', '?')} wrong"
    )
    ok = bool(exact.get("exact")) and run.outcome.completed
    return _check(
        run,
        goal,
        "complete and exact",
        measured if run.outcome.completed else "incomplete: " + measured,
        ok,
    )


def _ceiling_s(run: CaseRun) -> float:
    return run.job.ceiling.seconds if run.job.ceiling else math.nan


def _ceiling_share(run: CaseRun) -> tuple[float, float]:
    """The ceiling over the makespan, both counted from the server's start."""
    makespan_s = run.outcome.client_end - run.server_start
    if not run.outcome.completed:
        return 0.0, makespan_s

    return ratio(_ceiling_s(run), makespan_s), makespan_s


def _failures(run: CaseRun) -> int:
    stats = run.outcome.stats
    return stats.server_errors + stats.transport_errors


def _limit(case: Case) -> float:
    if case.limit_per_s is None:
        raise ValueError(f"the case {case.name!r} has no request limit to compare with")

    return case.limit_per_s


def _check(run: CaseRun, goal: str, target: str, measured: str, passed: bool) -> Check:
    return Check(run.case.name, goal, target, measured, bool(passed))


def _pct(share: float) -> str:
    if math.isnan(share):
        return "not measured"

    return f"{100 * share:.1f}%"


def _secs(seconds: float | None, note: str = "") -> str:
    if seconds is None:
        return "never"

    return f"{seconds:.1f} s" + (f" ({note})" if note else "")


_JUDGES: Final = {
    "bucket": _judge_bucket,
    "halve": _judge_change,
    "window": _judge_window,
    "cost": _judge_cost,
    "size": _judge_size,
    "faults": _judge_faults,
    "outage": _judge_outage,
}
