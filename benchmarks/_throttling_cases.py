"""The scenarios of the throttling benchmark: what each server hides, what is fetched.

Each :class:`Case` names a simulator preset with its refinements (passed on the command
line of the simulator process) and the same scenario as an object, which the ceiling
of a finite job is computed from. Two kinds of job are fetched:

* *endless*: more blocks than the run can send, cut off after ``duration_s``; the
  request rate is what is measured, so the windows are coarse (1 minute);
* *finite*: sized so that the best possible client (``simulator.ceiling``) needs about
  ``duration_s``; the run lasts until the job is done, or ``3 * duration_s + 30``.

Jobs read the signals of database 3 aggregated by ``last``, ``sum`` or ``count``: the
simulator computes them fastest (about 0.2 ms per signal and 29-minute slice), so the
server stays well below one core at 300 requests per second and the limit measured is
the scenario's, not the machine's.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final, Literal

from powerp_async.simulator import (
    Outage,
    RequestLimit,
    Scenario,
    named_scenario,
)

JobKind = Literal["endless", "finite"]

ANCHOR: Final = "2026-12-01T00:00:00Z"
"""The simulator's anchor and the end of every job's range, so runs are repeatable."""

SEED: Final = 0
CHEAP_GROUPS: Final = ((3, "last"), (3, "sum"), (3, "count"))
ENDLESS_RANGE_DAYS: Final = 60
WARMUP_S: Final = 10.0
"""Seconds after the client starts that steady-state figures leave out."""


@dataclass(frozen=True, slots=True)
class Case:
    """One scenario run: the server's hidden limits, the job, and how long."""

    name: str
    goals: tuple[str, ...]
    scenario: Scenario
    simulator_args: tuple[str, ...]
    duration_s: float
    job: JobKind = "endless"
    window: str = "1m"
    exact: bool = False
    """Compare every fetched point with the tenant's own (finite jobs only)."""
    limit_per_s: float | None = None
    """The request limit at the start; ``None`` when requests are not counted."""
    changes: tuple[tuple[float, float], ...] = ()
    """``(seconds after the server started, new limit)`` for each step of the limit."""
    timeout_s: float | None = None
    """The client's timeout per request; ``None`` keeps the default client's."""

    def __post_init__(self) -> None:
        if not self.duration_s > 0:
            raise ValueError(
                f"Case.duration_s must be positive, got {self.duration_s!r}"
            )

        if self.exact and self.job != "finite":
            raise ValueError(f"Case.exact needs a finite job, got {self.job!r}")

    @property
    def cap_s(self) -> float:
        """How long the client may take before the run is cut off."""
        return self.duration_s if self.job == "endless" else 3 * self.duration_s + 30


def bucket_case(rate_per_s: int, duration_s: float) -> Case:
    name = f"bucket-{rate_per_s}"
    goals = ("G1", "G2", "G3") if rate_per_s == 100 else ("G1", "G2")
    return Case(
        name=name,
        goals=goals,
        scenario=named_scenario(name),
        simulator_args=("--scenario", name),
        duration_s=duration_s,
        limit_per_s=float(rate_per_s),
    )


def change_case(drop_at_s: float, rise_at_s: float, duration_s: float) -> Case:
    """``bucket-100`` going to 50/s and then to 150/s."""
    schedule = ((drop_at_s, 0.5), (rise_at_s, 1.5))
    text = ",".join(f"{offset:g}:{factor:g}" for offset, factor in schedule)
    return Case(
        name="halve-then-triple",
        goals=("G4", "G5"),
        scenario=dataclasses.replace(named_scenario("bucket-100"), schedule=schedule),
        simulator_args=("--scenario", "bucket-100", "--schedule", text),
        duration_s=duration_s,
        limit_per_s=100.0,
        changes=((drop_at_s, 50.0), (rise_at_s, 150.0)),
    )


def window_case(window_s: int, duration_s: float) -> Case:
    name = f"window-{window_s}s"
    return Case(
        name=name,
        goals=("G6",),
        scenario=named_scenario(name),
        simulator_args=("--scenario", name),
        duration_s=duration_s,
        limit_per_s=100.0,
    )


def cost_case(duration_s: float) -> Case:
    """The points quota; 1-second windows make every block cost 10 x 1,799 points."""
    return Case(
        name="cost-quota",
        goals=("G12",),
        scenario=named_scenario("cost-quota"),
        simulator_args=("--scenario", "cost-quota"),
        duration_s=duration_s,
        job="finite",
        window="1s",
    )


def size_case(duration_s: float) -> Case:
    """413 above 10,000 points, under 20 requests/s so the split's cost shows."""
    limit = RequestLimit(20.0, burst=2)
    return Case(
        name="size-limit",
        goals=("G10", "G12"),
        scenario=dataclasses.replace(named_scenario("size-limit"), requests=limit),
        simulator_args=("--scenario", "size-limit", "--rate", "20", "--burst", "2"),
        duration_s=duration_s,
        job="finite",
        window="1s",
        limit_per_s=20.0,
    )


def size_timeout_case(duration_s: float) -> Case:
    """``size-limit``, but queries above the size are held for 90 s instead of
    refused; the client gives up on an answer after 2 s, as a user who knows that
    answers take well under a second would have it do (the default waits 60 s)."""
    limit = RequestLimit(20.0, burst=2)
    return dataclasses.replace(
        size_case(duration_s),
        name="size-timeout",
        scenario=dataclasses.replace(named_scenario("size-timeout"), requests=limit),
        simulator_args=("--scenario", "size-timeout", "--rate", "20", "--burst", "2"),
        timeout_s=2.0,
    )


def faults_case(duration_s: float) -> Case:
    return Case(
        name="faults-5pct",
        goals=("G7",),
        scenario=named_scenario("faults-5pct"),
        simulator_args=("--scenario", "faults-5pct"),
        duration_s=duration_s,
        job="finite",
        exact=True,
        limit_per_s=100.0,
    )


def outage_case(at_s: float, duration_s: float) -> Case:
    """``outage-30s``, from ``at_s`` into the run."""
    scenario = named_scenario("outage-30s")
    outage = Outage(at_s, 30.0)
    return Case(
        name="outage-30s",
        goals=("G8",),
        scenario=dataclasses.replace(scenario, outage=outage),
        simulator_args=("--scenario", "outage-30s", "--outage-at", f"{at_s:g}"),
        duration_s=duration_s,
        job="finite",
        exact=True,
        limit_per_s=100.0,
    )


def cases(*, quick: bool) -> tuple[Case, ...]:
    """The default run (about five minutes) or, with ``quick=False``, the long one."""
    if quick:
        return (
            # At 5 requests/s ten seconds of steady state hold some 50 requests, so
            # one 429 or one late slot would be 2% of them: 30 s hold 150.
            bucket_case(5, 40.0),
            *(bucket_case(rate, 20.0) for rate in (20, 100, 300)),
            change_case(12.0, 27.0, 48.0),
            # Three windows: the first ends start-up, the second teaches the window's
            # length, the third shows the pace held.
            window_case(10, 40.0),
            cost_case(10.0),
            # Longer than the other finite jobs: a cold start (4 requests/s, doubling)
            # costs some 1.6 s of a 20/s limit and learning the size a few refused
            # queries, so in 10 s no client starting cold could reach 90% of the
            # ceiling.
            size_case(30.0),
            size_timeout_case(30.0),
            faults_case(12.0),
            outage_case(5.0, 45.0),
        )

    return (
        *(bucket_case(rate, 70.0) for rate in (5, 20, 100, 300)),
        change_case(30.0, 60.0, 90.0),
        window_case(1, 60.0),
        window_case(10, 90.0),
        window_case(60, 190.0),
        cost_case(60.0),
        size_case(60.0),
        size_timeout_case(60.0),
        faults_case(60.0),
        outage_case(20.0, 90.0),
    )
