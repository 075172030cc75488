"""The contenders of the side-by-side benchmark, each run alone in its own process.

``python -m benchmarks.contenders NAME`` reads a :class:`Job` as JSON on stdin, fetches
it the way contender ``NAME`` would, and prints one JSON object: wall and CPU time of
the fetch, peak resident memory, what it sent, and how many points it received for
each signal, so the parent can count lost and duplicated points against the
simulator's own answer. The job arrives on stdin so the secret never shows in a
process listing.

Each contender lives in its own module and imports only what it needs, so its memory
is its own: the notebook's way never loads pyarrow. Every contender counts its points
per signal as they arrive (a ``Counter`` over decoded rows, or Arrow's
``value_counts``); that bookkeeping is part of its measured CPU time, and costs the
dictionary-based contenders more than the columnar ones.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import resource
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, NamedTuple

MAX_SIGNALS_PER_QUERY: Final = 20
MAX_QUERY_SPAN_US: Final = 30 * 60_000_000
RETRIED_STATUSES: Final = frozenset({429, 500, 502, 503, 504})
MAX_TRIES: Final = 40
TIMEOUT_S: Final = 60.0

_UNIT_US: Final = {"ms": 1_000, "s": 1_000_000, "m": 60_000_000, "h": 3_600_000_000}
_DURATION: Final = re.compile(r"(\d+)(ms|s|m|h)")


def window_us(window: str) -> int:
    """``"200ms"``, ``"1s"``, ``"1m"`` or ``"1h"`` in microseconds."""
    match = _DURATION.fullmatch(window)
    if match is None:
        raise ValueError(f"expected a window such as 200ms, 1s or 1m, got {window!r}")

    return int(match.group(1)) * _UNIT_US[match.group(2)]


@dataclass(frozen=True, slots=True)
class Job:
    """What every contender fetches: the first ``signal_count`` signals of the listing
    over ``[start_us, end_us)`` at ``window``. ``oracle_*`` is what only the static
    oracle is told: the server's rate (``None``: unlimited), burst and a concurrency.
    A contender given ``time_limit_s`` stops sending when it is up and reports the
    queries it completed, so that what it received can still be checked.
    """

    base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    signal_count: int = 1
    start_us: int = 0
    end_us: int = 1
    window: str = "1s"
    oracle_rate_per_s: float | None = None
    oracle_burst: int = 1
    oracle_concurrency: int = 4
    time_limit_s: float | None = None

    def __post_init__(self) -> None:
        if self.signal_count < 1:
            raise ValueError(f"Job.signal_count must be >= 1, got {self.signal_count}")

        span_us = self.end_us - self.start_us
        if span_us <= 0 or span_us % window_us(self.window):
            raise ValueError(
                f"Job range must be a positive whole number of {self.window} windows, "
                f"got {span_us} us"
            )

        if self.time_limit_s is not None and not self.time_limit_s > 0:
            raise ValueError(
                f"Job.time_limit_s must be positive or None, got {self.time_limit_s}"
            )

        if self.oracle_concurrency < 1 or self.oracle_burst < 1:
            raise ValueError(
                "Job.oracle_concurrency and oracle_burst must be >= 1, got "
                f"{self.oracle_concurrency} and {self.oracle_burst}"
            )

    @property
    def window_us(self) -> int:
        return window_us(self.window)


def deadline_s(job: Job) -> float:
    """The ``time.perf_counter()`` reading at which a contender stops sending."""
    limit_s = job.time_limit_s if job.time_limit_s is not None else float("inf")
    return time.perf_counter() + limit_s


class Query(NamedTuple):
    database_id: int
    aggregation: str
    indexes: tuple[str, ...]
    start_us: int
    end_us: int


def _peak_rss_mb() -> float:
    """The high-water mark of this process's resident memory.

    ``VmHWM`` rather than ``ru_maxrss``: Linux carries ``ru_maxrss`` across
    ``execve``, so a child would report its parent's size when that was larger.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024

    except OSError:
        pass

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Tally:
    """What one contender sent and received; the clock stops at :meth:`stop`."""

    def __init__(self) -> None:
        self.base_rss_mb = _peak_rss_mb()
        self.started_s = time.perf_counter()
        self.started_cpu_s = time.process_time()
        self.elapsed_s: float | None = None
        self.cpu_s: float | None = None
        self.counts: Counter[tuple[int, str]] = Counter()
        self.events: list[tuple[float, int]] = []
        self.requests = self.throttled = self.retries = self.body_bytes = 0
        self.completed: list[Query] = []
        self.cut_off = False
        self.first_answer: tuple[float, int] | None = None
        """CPU seconds spent and points received when the first answer arrived."""

    def add_rows(self, query: Query, rows: Sequence[Mapping[str, Any]]) -> None:
        """Count the decoded JSON points of one answer to ``query``."""
        for index, count in Counter(str(row["index"]) for row in rows).items():
            self.counts[(query.database_id, index)] += count

        self.completed.append(query)
        self.event(len(rows))

    def event(self, points: int) -> None:
        """Note that ``points`` arrived now, for the throughput-over-time plot."""
        if self.first_answer is None:
            self.first_answer = (time.process_time() - self.started_cpu_s, points)

        self.events.append((round(time.perf_counter() - self.started_s, 4), points))

    def cut(self) -> None:
        """The time limit is up: stop the clock and remember the run was cut short."""
        self.cut_off = True
        self.stop()

    def stop(self) -> None:
        if self.elapsed_s is None:
            self.elapsed_s = time.perf_counter() - self.started_s
            self.cpu_s = time.process_time() - self.started_cpu_s

    def report(self, name: str) -> dict[str, object]:
        self.stop()
        return {
            "contender": name,
            "elapsed_s": self.elapsed_s,
            "cpu_s": self.cpu_s,
            "base_rss_mb": self.base_rss_mb,
            "peak_rss_mb": _peak_rss_mb(),
            "rows": sum(self.counts.values()),
            "counts": [
                [db, index, n] for (db, index), n in sorted(self.counts.items())
            ],
            "requests": self.requests,
            "throttled": self.throttled,
            "retries": self.retries,
            "body_bytes": self.body_bytes,
            "events": self.events,
            "first_answer": self.first_answer,
            "cut_off": self.cut_off,
            # Only a run cut short is checked query by query; a whole one per signal.
            "completed": [list(q) for q in self.completed] if self.cut_off else [],
        }


def plan(
    listing: Sequence[Mapping[str, Any]],
    job: Job,
    *,
    slice_us: int,
    block_size: int,
) -> Iterator[Query]:
    """The notebook's loop: per time slice, per (database, defaultAgg), per block."""
    grouped: dict[tuple[int, str | None], list[Mapping[str, Any]]] = defaultdict(list)
    for row in listing[: job.signal_count]:
        grouped[(row["databaseId"], row.get("defaultAgg"))].append(row)

    for start_us in range(job.start_us, job.end_us, slice_us):
        end_us = min(start_us + slice_us, job.end_us)
        for (database_id, aggregation), rows in grouped.items():
            for first in range(0, len(rows), block_size):
                chunk = rows[first : first + block_size]
                indexes = tuple(str(row["index"]) for row in chunk)
                yield Query(
                    database_id, aggregation or "last", indexes, start_us, end_us
                )


def longest_slice_us(window: int) -> int:
    """The longest slice on a grid of ``window`` us that stays under 30 minutes."""
    return (MAX_QUERY_SPAN_US - 1) // window * window


def payload(query: Query, window: str) -> dict[str, Any]:
    return {
        "databaseId": query.database_id,
        "measurementIndexes": list(query.indexes),
        "startTime": _notebook_time(query.start_us),
        "endTime": _notebook_time(query.end_us),
        "aggFunction": query.aggregation,
        "windowPeriod": window,
    }


def _notebook_time(us: int) -> str:
    # The notebook formats naive UTC datetimes and appends the zone by hand.
    moment = datetime.fromtimestamp(us / 1e6, UTC).replace(tzinfo=None)
    return moment.isoformat() + "Z"


def retry_delay_s(retry_after: str | None, attempt: int) -> float:
    """The server's Retry-After in seconds when it gives one, else doubling waits."""
    backoff_s = 0.25 * 2.0 ** min(attempt, 5)
    try:
        return max(0.0, float(retry_after)) if retry_after else backoff_s
    except ValueError:
        return backoff_s


Runner = Callable[[Job, Tally], Awaitable[None] | None]

CONTENDERS: Final = {
    "notebook": ("_contender_notebook", "run_notebook"),
    "fan-out": ("_contender_aio", "run_fan_out"),
    "static-oracle": ("_contender_aio", "run_static_oracle"),
    "powerp-async": ("_contender_engine", "run_engine"),
    "powerp-async-flat-out": ("_contender_engine", "run_engine_flat_out"),
    "powerp-async-parquet": ("_contender_engine", "run_export"),
}
"""Runners by name, as (module in this package, function), imported on demand."""


def run(name: str, job: Job) -> dict[str, object]:
    """Run contender ``name`` on ``job`` in this process; its report."""
    module, function = CONTENDERS[name]
    runner: Runner = getattr(importlib.import_module(f"benchmarks.{module}"), function)
    tally = Tally()
    outcome = runner(job, tally)
    if outcome is not None:
        asyncio.run(_awaited(outcome))

    return tally.report(name)


async def _awaited(outcome: Awaitable[None]) -> None:
    await outcome


def job_json(job: Job) -> str:
    return json.dumps(asdict(job))


def main(argv: Sequence[str] | None = None) -> int:
    names = list(sys.argv[1:] if argv is None else argv)
    if len(names) != 1 or names[0] not in CONTENDERS:
        choices = ", ".join(CONTENDERS)
        print(f"expected one contender name ({choices}), got {names}", file=sys.stderr)
        return 2

    job = Job(**json.load(sys.stdin))
    sys.stdout.write(json.dumps(run(names[0], job)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
