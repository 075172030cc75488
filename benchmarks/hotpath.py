"""The client's own cost, from answer bytes to rows on disk, against a floor.

Run as ``python -m benchmarks.hotpath``. The bytes are real answers of the simulator
(one full query: 20 float signals of one group over the longest slice under 30 minutes),
fetched once without compression. The floor is the CPU time of ``orjson.loads`` on
the same bytes: every way of reading JSON pays at least that. Each way is timed as
CPU time (``time.process_time``, all threads), best of several rounds, which is the
least disturbed by other work on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Final

import aiohttp
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from powerp_async._decode import decode_block
from powerp_async._time import parse_duration_us, parse_wire
from powerp_async.models import Block, DataType, Measurement
from powerp_async.simulator import Simulator, SimulatorSettings

from .bench_decode import URL, Case
from .contenders import MAX_SIGNALS_PER_QUERY, longest_slice_us

ANCHOR_US: Final = parse_wire("2026-12-04T12:00:00Z")
RESULTS_DIR: Final = Path(__file__).parent / "results"
TIMESTAMP: Final = pa.timestamp("us", tz="UTC")


async def fetch_answer(window: str) -> Case:
    """The simulator's answer to one full block at ``window``, uncompressed, as a
    case named after the window."""
    settings = SimulatorSettings(anchor_us=ANCHOR_US)
    async with Simulator(settings) as simulator:
        block, data_types = _full_block(simulator, window)
        async with aiohttp.ClientSession() as session:
            token = await _token(session, simulator.base_url)
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept-Encoding": "identity",
            }
            async with session.post(
                f"{simulator.base_url}/v1/Query", json=block.payload(), headers=headers
            ) as answer:
                answer.raise_for_status()
                body = await answer.read()

    return Case(window, body, block, data_types)


def _full_block(
    simulator: Simulator, window: str
) -> tuple[Block, dict[str, DataType | None]]:
    groups: dict[tuple[int, str], list[Measurement]] = {}
    for spec in simulator.tenant.signals:
        signal = Measurement.from_api(spec.metadata())
        if signal.data_type is not DataType.FLOAT:
            continue  # the common case; bench_decode covers mixed types

        members = groups.setdefault((signal.database_id, signal.aggregation), [])
        members.append(signal)
        if len(members) == MAX_SIGNALS_PER_QUERY:
            break

    (database_id, aggregation), members = max(groups.items(), key=lambda g: len(g[1]))
    window_us = parse_duration_us(window)
    span_us = longest_slice_us(window_us)
    indexes = tuple(m.index for m in members)
    block = Block(
        database_id, aggregation, indexes, ANCHOR_US - span_us, ANCHOR_US, window_us
    )
    return block, {m.index: m.data_type for m in members}


async def _token(session: aiohttp.ClientSession, base_url: str) -> str:
    form = {
        "client_id": "demo",
        "client_secret": "demo-secret",
        "grant_type": "client_credentials",
    }
    async with session.post(f"{base_url}/v1/auth/token", data=form) as answer:
        answer.raise_for_status()
        token: str = (await answer.json())["access_token"]
        return token


def best_cpu_s(action: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)

    return best


def ways(answer: Case, folder: Path) -> dict[str, Callable[[], object]]:
    """Every way measured, by name; the first is the floor."""
    target = folder / "batch.parquet"

    def decode() -> pa.RecordBatch:
        return decode_block(answer.body, answer.block, answer.data_types, url=URL).batch

    def dicts_to_arrow() -> pa.Table:
        # The same columns as decode_block's, without its checks: timestamps parsed,
        # values of one type, nothing dropped.
        table = pa.Table.from_pylist(orjson.loads(answer.body))
        parsed = pc.cast(table.column("timestamp"), TIMESTAMP)
        return table.set_column(2, "timestamp", parsed)

    found: dict[str, Callable[[], object]] = {
        "orjson.loads (floor)": lambda: orjson.loads(answer.body),
        "json.loads (what requests' .json() runs)": lambda: json.loads(answer.body),
        "orjson into dicts, then Arrow from dicts": dicts_to_arrow,
        "decode_block (straight into Arrow columns)": decode,
        "decode_block + Parquet write": lambda: pq.write_table(
            pa.Table.from_batches([decode()]), target
        ),
        "orjson dicts + Arrow + Parquet write": lambda: pq.write_table(
            dicts_to_arrow(), target
        ),
    }
    typed = msgspec_typed()
    if typed is not None:
        found["msgspec typed decoding"] = lambda: typed(answer.body)

    return found


def msgspec_typed() -> Callable[[bytes], object] | None:
    """msgspec decoding into typed records, when it happens to be installed."""
    try:
        import msgspec  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None

    class Point(msgspec.Struct):  # type: ignore[misc, unused-ignore]
        index: str
        value: float | int | bool | str | None
        timestamp: str

    decoder = msgspec.json.Decoder(list[Point])
    return decoder.decode  # type: ignore[no-any-return, unused-ignore]


def measure(answer: Case, rounds: int) -> dict[str, Any]:
    # Not block.max_points: a signal with gaps answers fewer windows.
    points = len(orjson.loads(answer.body))
    with tempfile.TemporaryDirectory(prefix="powerp-hotpath-") as folder:
        timings = {
            name: best_cpu_s(action, rounds)
            for name, action in ways(answer, Path(folder)).items()
        }

    floor_s = next(iter(timings.values()))
    return {
        "window": answer.name,
        "points": points,
        "body_mb": len(answer.body) / 1e6,
        "block": answer.block.describe(),
        "ways": [
            {"way": name, "us_per_point": s / points * 1e6, "to_floor": s / floor_s}
            for name, s in timings.items()
        ],
    }


def run(out_dir: Path = RESULTS_DIR, rounds: int = 15) -> dict[str, Any]:
    """Measure every way on answers at 1 s and 200 ms; write and return the results."""
    answers = [asyncio.run(fetch_answer(window)) for window in ("1s", "200ms")]
    results = {
        "rounds": rounds,
        "msgspec": msgspec_typed() is not None,
        "answers": [measure(answer, rounds) for answer in answers],
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "hotpath.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / "hotpath.md").write_text(markdown(results))
    return results


def markdown(results: dict[str, Any]) -> str:
    lines = []
    for answer in results["answers"]:
        lines += [
            f"### One answer at {answer['window']}: {answer['points']:,} points, "
            f"{answer['body_mb']:.1f} MB ({answer['block']})",
            "",
            "| way | CPU us / point | to the floor |",
            "| --- | --- | --- |",
        ]
        lines += [
            f"| {w['way']} | {w['us_per_point']:.3f} | {w['to_floor']:.2f} |"
            for w in answer["ways"]
        ]
        lines.append("")

    if not results["msgspec"]:
        lines += ["msgspec is not installed here; its row is left out.", ""]

    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed runs per way")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR, help="results folder")
    options = parser.parse_args(argv)
    run(options.out, options.rounds)
    print((options.out / "hotpath.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
