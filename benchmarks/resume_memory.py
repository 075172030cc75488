"""Memory a resume holds for the blocks already committed, as a set and as a UnitSet.

A year of a 10,000-signal tenant is about 8.7 million blocks: 500 blocks of 20 signals
for each of the 17,520 half-hour slices of a year. Each measurement runs
in its own process, which builds the structure from ids of the blocks' form (the hex
of 12-byte BLAKE2b digests), answers a membership question per id, and reports its
peak resident memory above what the process held before.

    python -m benchmarks.resume_memory              # 8.7 million ids, about a minute
    python -m benchmarks.resume_memory --ids 870000
"""

from __future__ import annotations

import argparse
import hashlib
import resource
import subprocess
import sys
import time
from collections.abc import Iterator

YEAR_OF_10K_SIGNALS = 8_760_000


def unit_ids(count: int) -> Iterator[str]:
    for number in range(count):
        yield hashlib.blake2b(number.to_bytes(8, "little"), digest_size=12).hexdigest()


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def measure(kind: str, count: int) -> None:
    """Build one structure of ``count`` ids and print MB above the baseline, seconds."""
    from powerp_async._export._units import UnitSet

    before = peak_mb()
    started = time.perf_counter()
    if kind == "set":
        done: set[str] | UnitSet = set(unit_ids(count))
        missing = sum(1 for unit in unit_ids(count) if unit not in done)
    else:
        done = UnitSet(unit_ids(count))
        missing = 0
        batch: list[str] = []
        for unit in unit_ids(count):
            batch.append(unit)
            if len(batch) == 4096:
                missing += int((~done.contains(batch)).sum())
                batch.clear()
        missing += int((~done.contains(batch)).sum()) if batch else 0

    assert missing == 0
    assert len(done) == count
    print(f"{peak_mb() - before:.0f} {time.perf_counter() - started:.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=YEAR_OF_10K_SIGNALS)
    parser.add_argument("--only", choices=("set", "units"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.only:
        measure(options.only, options.ids)
        return

    print(f"{options.ids:,} committed blocks")
    for kind, label in (("set", "set of unit id strings"), ("units", "UnitSet")):
        command = [sys.executable, "-m", "benchmarks.resume_memory", "--only", kind]
        done = subprocess.run(
            [*command, "--ids", str(options.ids)],
            capture_output=True,
            text=True,
            check=True,
        )
        megabytes, seconds = done.stdout.split()
        print(f"{label:>24}: {megabytes:>5} MB peak, built and queried in {seconds} s")


if __name__ == "__main__":
    main()
