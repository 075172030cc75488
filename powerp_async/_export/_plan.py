"""What an export will do, worked out before anything is fetched (``--dry-run``)."""

from __future__ import annotations

from dataclasses import dataclass

from .._redact import mask_url
from .._time import format_duration, format_wire, to_epoch_us
from .._words import plural
from ..client import PowerPClient
from ..models import Measurement
from ..planning import ends_after_now, group_signals, plan_totals, time_slices
from ._folder import check_folder
from ._manifest import locked_for_reading
from ._open import check_as_resume, recorded_export
from ._spec import ExportSpec, check_call, select_signals

# Paces at which a dry run estimates the duration when the server's is not known yet.
ASSUMED_RATES = (5.0, 20.0, 100.0)


@dataclass(frozen=True, slots=True)
class ExportPlan:
    """The shape of an export: how many signals, queries and points at most.

    Example::

        plan = await plan_export(client, spec)
        print(plan.describe())    # what powerp export --dry-run prints
        plan.estimate_s(50.0)     # seconds of queries at 50 requests per second
    """

    spec: ExportSpec
    signals: int
    groups: int
    slices: int
    requests: int
    max_points: int
    late_signals: int
    done: int = 0
    """Blocks (one query each, as planned) already exported, for a resume."""
    resumed: bool = False
    """Whether this is the plan of a resume, from the folder's journal."""
    owed: int = 0
    """Of ``requests``, the blocks of signals the server refused in earlier runs."""
    ends_after_now: bool = False
    """Whether the range ends after now: its last windows have no data yet."""
    after_range: int = 0
    """Signals selected but left out: the listing puts their first point at or after
    the range's end, so none of their blocks is asked."""

    @property
    def remaining(self) -> int:
        """Queries still to send, as planned."""
        return max(0, self.requests - self.done)

    def estimate_s(self, rate: float) -> float:
        """Seconds the remaining queries take at ``rate`` requests per second."""
        return self.remaining / rate

    def describe(self, known_rate: float | None = None) -> str:
        """A few lines for a person deciding whether to run it."""
        span = self.spec.time_range()
        lines = [
            f"Range: {format_wire(span.start_us)} to {format_wire(span.end_us)}, "
            f"{plural(span.window_count, 'window')} of "
            f"{format_duration(span.window_us)}",
            f"Signals: {self.signals:,} in "
            f"{plural(self.groups, '(database, aggregation) group')}"
            + (
                f", {self.late_signals} starting inside the range"
                if self.late_signals
                else ""
            )
            + (
                f"; {plural(self.after_range, 'other signal')} left out, listed as "
                "starting after the range (firstDataPoint)"
                if self.after_range
                else ""
            ),
            f"Queries: {self.requests:,} ({plural(self.slices, 'time slice')}"
            + (
                f"; {self.owed:,} of them for signals refused before"
                if self.owed
                else ""
            )
            + f"), at most {plural(self.max_points, 'point')}",
        ]
        if self.ends_after_now:
            lines.append(
                "Ends after now: the server has no data there yet, so a run records "
                "those windows as gaps and a resume will not fetch them later; end "
                "the range at now or before, and export the rest once it has passed"
            )
        if self.resumed or self.done:
            lines.append(
                f"Already exported: {self.done:,} of {self.requests:,} blocks; "
                f"a resume sends the other {self.remaining:,} queries"
            )
        rates = (known_rate,) if known_rate else ASSUMED_RATES
        estimates = ", ".join(
            f"{_duration(self.estimate_s(rate))} at {rate:g} req/s" for rate in rates
        )
        lines.append(f"Time for the queries: {estimates}")
        return "\n".join(lines)


async def plan_export(
    client: PowerPClient, spec: ExportSpec, *, resume: bool = False
) -> ExportPlan:
    """List the signals and count the export's queries, without fetching any data.

    With ``resume=True`` the plan is that of the export in ``spec.out``: its recorded
    signals (no listing is fetched) and the blocks it already holds, checked as
    :func:`export` checks a resume (its parameters, its source, its files), so a plan
    that would be refused raises the same :class:`~powerp_async.ConfigurationError`.
    Nothing in the folder is changed.

    Example::

        plan = await plan_export(client, spec)
        print(plan.requests, plan.max_points)
    """
    check_call(client, spec)
    span = spec.time_range()
    block_size = spec.block_size or client.config.block_size
    done = owed = 0
    if resume:
        source = spec.source or mask_url(client.config.base_url)
        # Under the lock, as a resume reads it: a folder being written changes
        # between reading its journal and looking at its files.
        with locked_for_reading(spec.out):
            journal, listed = recorded_export(spec, block_size, source)
            check_as_resume(spec.out, journal)
        done = len(journal.done_units)
        # Blocks of refused signals, recorded as owed, are queries a resume sends too.
        owed = len(journal.owed)
    else:
        # Refused as the export itself would refuse it: into a folder in use.
        check_folder(spec.out, fresh=True)
        listed = await select_signals(client, spec)

    # As the plan does: a signal whose first point comes at or after the range's end
    # is never asked for, so it is not counted.
    signals = [m for m in listed if _first_us(m) < span.end_us]
    requests, max_points = plan_totals(signals, span, block_size=block_size)
    return ExportPlan(
        spec=spec,
        signals=len(signals),
        groups=len(group_signals(signals)),
        slices=sum(1 for _ in time_slices(span)),
        requests=requests + owed,
        max_points=max_points,
        late_signals=sum(1 for m in signals if _first_us(m) > span.start_us),
        done=done,
        resumed=resume,
        owed=owed,
        ends_after_now=ends_after_now(span),
        after_range=len(listed) - len(signals),
    )


def _first_us(signal: Measurement) -> int:
    """The signal's first point in epoch microseconds; one without is as old as any."""
    first = signal.first_data_point
    return -(2**62) if first is None else to_epoch_us(first)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
