"""A small job's CPU per point, with its answers spaced out and with them back to back.

Run as ``python -m benchmarks.growth_warmth [--rounds N]``; about 30 seconds. Told
nothing about the server, the client starts at 4 requests per second and climbs from
there, so the answers of a small job come a tenth to a quarter of a second apart,
each to a core that has idled, or run other work, since the one before; a large
job's answers come back to back once the pace has grown. Such spaced answers cost
more CPU per point although the code run per point is the same: callgrind counted
5,800 to 6,300 instructions per point after the first answer at every size measured
(100 and 1,016 signals over 5 minutes, 20 signals over 1 and 6 hours). That is why
the growth series of ``compare.py`` judges runs started flat out, and shows the runs
as shipped beside them.

This runs the smallest growth step (100 signals over an hour at 1 s windows) in this
process, against ``powerp simulate`` in its own, at the default start and at
``FAST_START_PER_S`` requests per second, alternately, after one run that is not
counted (the first run of a process pays its imports and the allocator's first
pages). It prints the median CPU per point after the first answer of each, and their
ratio: what the pace of the answers alone costs a small job, measured within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
from collections.abc import Sequence
from typing import Final

from ._compare_goals import steady_cpu_us_per_point
from ._contender_engine import run_engine
from .compare import CLIENT_CPU, Setting, job_for, make_plan, simulator
from .contenders import Job, Tally

FAST_START_PER_S: Final = 1000.0
DEFAULT_ROUNDS: Final = 7
STARTS: Final = {
    "default start, 4 requests/s": None,
    "started at 1,000 requests/s": FAST_START_PER_S,
}
"""Each way to start, by name: the client's ``initial_rate``, ``None`` its default."""


def smallest_step() -> Setting:
    """The first growth step of the default comparison: 100 signals over an hour."""
    return make_plan("quick").growth[0]


def steady_us_per_point(job: Job, initial_rate: float | None) -> float:
    """Client CPU per point after the first answer of one run of ``job``."""
    tally = Tally()
    settings = {} if initial_rate is None else {"initial_rate": initial_rate}
    asyncio.run(run_engine(job, tally, **settings))
    cost = steady_cpu_us_per_point(tally.report("powerp-async"))
    if cost is None:
        raise RuntimeError("the job brought a single answer; it needs more than one")

    return cost


def measure(rounds: int) -> dict[str, list[float]]:
    """``rounds`` runs of each start, alternating, against one simulator."""
    setting = smallest_step()
    with simulator(setting.server_args) as server:
        job = job_for(setting, server.base_url, None)
        steady_us_per_point(job, None)  # imports and first pages, not counted
        costs: dict[str, list[float]] = {name: [] for name in STARTS}
        for _ in range(rounds):
            for name, initial_rate in STARTS.items():
                costs[name].append(steady_us_per_point(job, initial_rate))

    return costs


def report(costs: dict[str, list[float]]) -> str:
    medians = {name: statistics.median(values) for name, values in costs.items()}
    slow, fast = medians.values()
    lines = [
        "| start | client CPU us / point after the first answer (median) | runs |",
        "| --- | --- | --- |",
        *(f"| {name} | {medians[name]:.3f} | {len(costs[name])} |" for name in costs),
        "",
        f"Spaced-out answers cost {slow / fast:.2f} times as much per point "
        f"(load average {os.getloadavg()[0]:.2f}).",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    options = parser.parse_args(argv)
    if options.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {options.rounds}")

    # The simulator is pinned to the other core, as in the comparison.
    if (os.cpu_count() or 1) > CLIENT_CPU:
        os.sched_setaffinity(0, {CLIENT_CPU})

    print(report(measure(options.rounds)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
