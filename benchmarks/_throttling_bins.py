"""Arithmetic over the server's one-second bins and the client's samples.

Bins are whole wall-clock seconds as the server counted them. A bin is *steady* when
it starts at least ``WARMUP_S`` after the client started and ends before the client
ran short of work: before it stopped, and for a finite job with a request limit,
before the first sample (one a second) at which fewer blocks were left to finish than
one second's worth at that limit. So neither the cold start nor the last seconds of a
finite export, when the client has only its last few blocks left to send, weigh in.

Convergence follows the goals' definition: the first bin at or after a change that
starts five consecutive bins with accepted requests at 90 % of the new limit or more
and at most 5 % of them throttled. Its time is counted from the change itself.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final

from ._throttling_cases import WARMUP_S
from ._throttling_harness import CaseRun, Row

CONVERGED_SHARE: Final = 0.9
CONVERGED_BINS: Final = 5
CONVERGED_MAX_THROTTLED: Final = 0.05


def converged_s(
    per_second: Sequence[Row], after: float, limit: float, until: float = math.inf
) -> float | None:
    """Seconds from ``after`` to the first of five good bins in a row (see above)."""
    bins = {row["second"]: row for row in per_second}
    first = math.ceil(after)
    for second in range(first, math.floor(min(until, max(bins, default=0) + 1))):
        window = [bins.get(second + k) for k in range(CONVERGED_BINS)]
        if all(row is not None and _good(row, limit) for row in window):
            return second - after

    return None


def _good(row: Row, limit: float) -> bool:
    answered = row["accepted"] + row["throttled"] + row["failed"]
    throttled_share = row["throttled"] / answered if answered else 0.0
    return (
        row["accepted"] >= CONVERGED_SHARE * limit
        and throttled_share <= CONVERGED_MAX_THROTTLED
    )


def steady_bins(run: CaseRun) -> list[Row]:
    begins = run.outcome.client_start + WARMUP_S
    ends = min(run.outcome.client_end, _short_of_work_at(run, begins))
    return [
        r for r in run.per_second if r["second"] >= begins and r["second"] + 1 <= ends
    ]


def _short_of_work_at(run: CaseRun, since: float) -> float:
    """When, after ``since``, a finite job had fewer blocks left to finish than the
    limit lets out in a second; ``inf`` for an endless job or one without a limit."""
    limit = run.case.limit_per_s
    if run.case.job != "finite" or limit is None:
        return math.inf

    total = run.outcome.stats.blocks_done
    short = first_sample(
        run.outcome.samples, since, lambda s: total - s["blocks_done"] < limit
    )
    return math.inf if short is None else short


def steady_rates(run: CaseRun) -> tuple[float, float]:
    """Accepted requests per second and the share throttled, over the steady bins."""
    bins = steady_bins(run)
    accepted = sum(r["accepted"] for r in bins)
    throttled = sum(r["throttled"] for r in bins)
    answered = accepted + throttled + sum(r["failed"] for r in bins)
    if not bins:
        return math.nan, math.nan

    return accepted / len(bins), ratio(throttled, answered)


def steady_points_per_s(run: CaseRun) -> float:
    bins = steady_bins(run)
    return ratio(sum(r["points"] for r in bins), len(bins))


def throttled_between(per_second: Sequence[Row], since: float, until: float) -> int:
    return sum(
        r["throttled"]
        for r in per_second
        if since <= r["second"] + 1 and r["second"] < until
    )


def lowest_rate(run: CaseRun) -> float:
    begins = run.outcome.client_start + WARMUP_S
    rates = [s["rate"] for s in run.outcome.samples if s["t"] >= begins and "rate" in s]
    return min(rates, default=math.nan)


def first_sample(
    samples: Sequence[Row], since: float, test: Callable[[Row], bool]
) -> float | None:
    for sample in samples:
        if sample["t"] >= since and test(sample):
            return float(sample["t"])

    return None


def ratio(part: float, whole: float) -> float:
    """``part / whole``, or 0 when there is nothing to divide by."""
    return part / whole if whole else 0.0
