"""``python -m benchmarks``: the comparison, the hot path and memory, in one run.

The contenders side by side with growth (``compare``), the client's own cost per
point (``hotpath``) and peak memory as an export grows (``memory``: 0.5 and 5 million
points, 5 and 50 million with ``--full``), each writing JSON, Markdown and plots under
``benchmarks/results/``; about 8 minutes on a 2-core machine. ``--throttling`` adds
the rate-control benchmark (about 5 minutes more), which also runs alone as
``python -m benchmarks.throttling``; ``--full`` runs the longer version of each.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from . import compare, hotpath, memory


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--full", action="store_true", help="the longer versions")
    parser.add_argument(
        "--throttling", action="store_true", help="the rate-control benchmark too"
    )
    parser.add_argument(
        "--out", type=Path, default=compare.RESULTS_DIR, help="results folder"
    )
    options = parser.parse_args(argv)
    started_s = time.perf_counter()

    print("compare: the contenders side by side", file=sys.stderr, flush=True)
    compare.run("full" if options.full else "quick", options.out)
    print((options.out / "compare.md").read_text())

    print("hotpath: from answer bytes to rows on disk", file=sys.stderr, flush=True)
    hotpath.run(options.out)
    print((options.out / "hotpath.md").read_text())

    print("memory: peak memory as an export grows", file=sys.stderr, flush=True)
    memory.run_isolated(quick=not options.full, out_dir=options.out)
    print((options.out / "memory.md").read_text())

    if options.throttling:
        _throttling(quick=not options.full, out_dir=options.out)

    print(f"all benchmarks done in {time.perf_counter() - started_s:.0f} s")
    return 0


def _throttling(*, quick: bool, out_dir: Path) -> None:
    try:
        throttling = importlib.import_module("benchmarks.throttling")
    except ImportError as error:
        print(f"throttling: skipped, it cannot be imported ({error})")
        return

    print("throttling: rate control under each limit", file=sys.stderr, flush=True)
    throttling.run(quick=quick, out_dir=out_dir)


if __name__ == "__main__":
    sys.exit(main())
