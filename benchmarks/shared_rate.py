"""``python -m benchmarks.shared_rate``: two exports sharing one rate through Redis.

For each rate R, a ``powerp simulate`` process with a token bucket of R queries per
second (burst ``BURST``) serves the demo tenant, and two ``powerp export`` processes
fetch one half of it each (``--database 1``; ``--database 2 --database 3``), both with
``--fixed-rate R --rate-backend`` naming one Redis server that this benchmark starts
(``redis-server`` from PATH, on a free loopback port, no persistence). In the
``killed`` runs that server is killed by its process id once a quarter of the queries
are answered, and each export goes on alone at its share.

What counts is the server's own per-second count of queries (``/_simulator/stats``,
``endpoint=query``): its busiest second against the ceiling ``1.02 R + 1``, the 429s,
and the pace over the seconds both exports ran. The exports log every request
(``-vv``), so the busiest second is also counted on the clients' side, by send time
(the answer's log time less its latency, to the millisecond): a server that stalls on
a busy machine answers queued queries together and shows a busier second than was
sent. Results go to ``benchmarks/results/shared_rate.json`` and ``.md``. About two
minutes.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import requests

from .compare import RESULTS_DIR

RATES: Final = (10.0, 20.0, 40.0)
BURST: Final = 4
ANCHOR: Final = "2026-12-04T12:00:00Z"
RANGE: Final = ("--start", "2026-12-04T10:00:00Z", "--end", ANCHOR, "--window", "1m")
HALVES: Final = (("--database", "1"), ("--database", "2", "--database", "3"))
READY_PREFIX: Final = "PowerP simulator serving "
EXPORT_TIMEOUT_S: Final = 300.0
_SENT: Final = re.compile(
    r"^(\S+ \S+) DEBUG powerp_async\.http: POST \S+/v1/Query -> \d+ in ([\d.]+) s$"
)

Row = dict[str, Any]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.shared_rate", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--rate", type=float, action="append", help="default 10 40 100")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    options = parser.parse_args(argv)
    rows = [
        run(rate, killed=killed)
        for rate in options.rate or RATES
        for killed in (False, True)
    ]
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "shared_rate.json").write_text(json.dumps(rows, indent=2) + "\n")
    table = markdown(rows)
    (options.out / "shared_rate.md").write_text(table)
    print(table)
    return 0


def run(rate: float, *, killed: bool) -> Row:
    """One run of both exports at ``rate``; the server's counts, summed up."""
    with (
        tempfile.TemporaryDirectory(prefix="powerp-shared-") as folder,
        redis_server(Path(folder)) as (redis, port),
        simulator(rate) as base_url,
    ):
        since = int(time.time())
        started = time.monotonic()
        exports = start_exports(base_url, f"redis://127.0.0.1:{port}/0", rate, folder)
        if killed:
            _wait_for_queries(base_url, since, 295 // 4)
            os.kill(redis.pid, signal.SIGKILL)
        codes = [export.wait(timeout=EXPORT_TIMEOUT_S) for export in exports]
        elapsed_s = time.monotonic() - started
        seconds = query_seconds(base_url, since)
        logs = [Path(folder, f"half-{n}.log").read_text() for n in range(len(HALVES))]

    row = summary(rate, killed, codes, elapsed_s, seconds)
    row["client_busiest_second"] = max(
        collections.Counter(int(t) for t in send_times(logs)).values()
    )
    return row


def send_times(logs: Iterable[str]) -> Iterator[float]:
    """When each query was sent, from the exports' DEBUG lines."""
    for log in logs:
        for line in log.splitlines():
            found = _SENT.match(line)
            if found:
                logged = datetime.strptime(found[1], "%Y-%m-%d %H:%M:%S,%f")
                yield logged.timestamp() - float(found[2])


def summary(
    rate: float, killed: bool, codes: list[int], elapsed_s: float, seconds: list[Row]
) -> Row:
    counts = [s["accepted"] + s["throttled"] + s["failed"] for s in seconds]
    # The seconds in which both exports were sending: the first and last are partial.
    inner = counts[1:-1]
    return {
        "rate": rate,
        "redis_killed": killed,
        "exit_codes": codes,
        "elapsed_s": round(elapsed_s, 1),
        "queries": sum(counts),
        "throttled": sum(s["throttled"] for s in seconds),
        "busiest_second": max(counts),
        "ceiling": 1.02 * rate + 1,
        "mean_inner_rate": round(sum(inner) / len(inner), 2) if inner else None,
        "per_second": counts,
    }


def markdown(rows: list[Row]) -> str:
    lines = [
        "| rate R | Redis | busiest second (server) | busiest second (sent) "
        "| ceiling 1.02 R + 1 | 429s | queries | mean of full seconds | exits |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        redis = "killed mid-run" if row["redis_killed"] else "up"
        lines.append(
            f"| {row['rate']:g} | {redis} | {row['busiest_second']} | "
            f"{row['client_busiest_second']} | {row['ceiling']:.1f} | "
            f"{row['throttled']} | {row['queries']} | {row['mean_inner_rate']} | "
            f"{row['exit_codes']} |"
        )
    return "\n".join(lines) + "\n"


def start_exports(
    base_url: str,
    redis_url: str,
    rate: float | None,
    folder: str,
    span: Sequence[str] = RANGE,
) -> list[subprocess.Popen[bytes]]:
    """Both halves, sharing ``--fixed-rate rate`` (or, with ``None``, an adaptive pace)
    through Redis, each logging every request to ``half-N.log`` in ``folder``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}
    environment |= {
        "POWERP_CLIENT_ID": "demo",
        "POWERP_CLIENT_SECRET": "demo-secret",
        "POWERP_API_BASE_URL": base_url,
    }
    pace = () if rate is None else ("--fixed-rate", f"{rate:g}")
    shared = (*pace, "--rate-backend", redis_url)
    exports = []
    for n, selection in enumerate(HALVES):
        with Path(folder, f"half-{n}.log").open("w") as log:
            command = [sys.executable, "-m", "powerp_async", "-vv", "export", "--quiet"]
            command += ["--out", f"{folder}/half-{n}", *span, *selection, *shared]
            exports.append(
                subprocess.Popen(
                    command, env=environment, stdout=subprocess.DEVNULL, stderr=log
                )
            )

    return exports


@contextlib.contextmanager
def simulator(rate: float, burst: float = BURST) -> Iterator[str]:
    command = [sys.executable, "-m", "powerp_async.simulator", "--port", "0"]
    command += ["--anchor", ANCHOR, "--rate", f"{rate:g}", "--burst", f"{burst:g}"]
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            line = server.stdout.readline().strip()
            assert line.startswith(READY_PREFIX), line
            yield line.removeprefix(READY_PREFIX)
        finally:
            server.terminate()


@contextlib.contextmanager
def redis_server(folder: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    program = shutil.which("redis-server")
    if program is None:
        raise SystemExit("redis-server is not on PATH: apt-get install redis-server")

    port = _free_port()
    command = [program, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(folder)]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        _wait_until_listening(port)
        yield server, port
    finally:
        server.kill()
        server.wait()


def query_seconds(base_url: str, since: int) -> list[Row]:
    origin = base_url.removesuffix("/rt-api/api")
    answer = requests.get(
        f"{origin}/_simulator/stats",
        params={"since": str(since), "endpoint": "query"},
        timeout=10,
    )
    answer.raise_for_status()
    rows: list[Row] = answer.json()["per_second"]
    return rows


def _wait_for_queries(base_url: str, since: int, count: int) -> None:
    while sum(s["accepted"] for s in query_seconds(base_url, since)) < count:
        time.sleep(0.05)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_until_listening(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port)),
        ):
            return
        time.sleep(0.02)
    raise RuntimeError(f"redis-server did not listen on port {port}")


if __name__ == "__main__":
    sys.exit(main())
