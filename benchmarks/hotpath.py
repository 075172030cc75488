"""The client's own cost, from answer bytes to rows on disk, against a floor.

Run as ``python -m benchmarks.hotpath``. The bytes are real answers of the simulator
(one full query: 20 float signals of one group over the longest slice under 30 minutes),
fetched once without compression. The floor is the CPU time of ``orjson.loads`` on
the same bytes, what a client pays merely to hold an answer as Python dicts: the goal
is that decoding, building the columns and writing Parquet together cost no more.
Each way is timed as CPU time (``time.process_time``, all threads), best of several
rounds, which is the least disturbed by other work on the machine; the load average
is written beside the figures.

An export does not write each answer apart: it buffers some 500,000 points, then sorts
them, cuts them by database and day, writes them and takes each part's SHA-256. So the
whole way is measured on a flush's worth of answers too, against ``orjson.loads`` of
every one of them, held together as a client holding those points as dicts would.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from unittest import mock

import aiohttp
import msgspec
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import powerp_async._compact_wire as compact
import powerp_async._decode as decoding
import powerp_async._wire as wire
from powerp_async._decode import decode_block
from powerp_async._export import DEFAULT_ROWS_PER_FLUSH
from powerp_async._export._formats import _write_parquet as write_parquet
from powerp_async._export._parts import PartStager
from powerp_async._time import parse_duration_us, parse_wire
from powerp_async._values import float_columns, float_signals_only
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
    (answer,) = await fetch_answers(window, 1)
    return answer


async def fetch_answers(window: str, count: int) -> list[Case]:
    """The answers to ``count`` full blocks of one group at ``window``, the slices
    one before the other back from the anchor, uncompressed."""
    settings = SimulatorSettings(anchor_us=ANCHOR_US)
    cases = []
    async with Simulator(settings) as simulator:
        latest, data_types = _full_block(simulator, window)
        span_us = latest.end_us - latest.start_us
        async with aiohttp.ClientSession() as session:
            token = await _token(session, simulator.base_url)
            headers = {
                "Authorization": f"Bearer {token}",
                "Accept-Encoding": "identity",
            }
            for number in range(count):
                block = dataclasses.replace(
                    latest,
                    start_us=latest.start_us - number * span_us,
                    end_us=latest.end_us - number * span_us,
                )
                async with session.post(
                    f"{simulator.base_url}/v1/Query",
                    json=block.payload(),
                    headers=headers,
                ) as answer:
                    answer.raise_for_status()
                    body = await answer.read()
                cases.append(Case(window, body, block, data_types))

    return cases


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


@dataclass(frozen=True, slots=True)
class AfterWarmUp:
    """An action timed right after another that is not timed."""

    warm_up: Callable[[], object]
    action: Callable[[], object]

    def __call__(self) -> object:
        return self.action()


@dataclass(frozen=True, slots=True)
class Timing:
    """The best round of one action: its CPU time and the page faults it took."""

    cpu_s: float
    page_faults: int


def best_cpu_s(
    actions: dict[str, Callable[[], object]], rounds: int
) -> dict[str, Timing]:
    """The best of ``rounds`` of each action, run one after the other.

    Not in turns: how many fresh pages an action touches (a page fault each, paid in
    kernel CPU time) depends on what ran just before it. orjson's dicts took from
    none to some 2,500 per answer at 1 s in our runs, and its time moved with them
    (0.16 to 0.30 us a point); one after the other is the measure the floor has
    always had. The page faults of each best round are kept beside its time.
    """
    best = dict.fromkeys(actions, Timing(float("inf"), 0))
    for name, action in actions.items():
        for _ in range(rounds):
            if isinstance(action, AfterWarmUp):
                action.warm_up()

            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            started = time.process_time()
            action()
            cpu_s = time.process_time() - started
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
            best[name] = min(best[name], Timing(cpu_s, faults), key=_by_cpu)

    return best


def _by_cpu(timing: Timing) -> float:
    return timing.cpu_s


def ways(answer: Case, folder: Path) -> dict[str, Callable[[], object]]:
    """Every way measured, by name; the first is the floor."""
    target = folder / "batch.parquet"
    body, block, data_types = answer.body, answer.block, answer.data_types
    table = pa.Table.from_batches(
        [decode_block(body, block, data_types, url=URL).batch]
    )

    def decode() -> pa.RecordBatch:
        return decode_block(body, block, data_types, url=URL).batch

    def decode_by_records() -> pa.RecordBatch:
        # The reader every body the compact reader leaves goes to first.
        with mock.patch.object(decoding, "read_compact", return_value=None):
            return decode()

    def decode_generally() -> pa.RecordBatch:
        # The reader the decoder falls back on, for every body.
        with (
            mock.patch.object(decoding, "read_compact", return_value=None),
            mock.patch.object(wire, "_read_quickly", return_value=None),
        ):
            return decode()

    def dicts_to_arrow() -> pa.Table:
        # The same columns as decode_block's, without its checks: timestamps parsed,
        # values of one type, nothing dropped.
        table = pa.Table.from_pylist(orjson.loads(body))
        parsed = pc.cast(table.column("timestamp"), TIMESTAMP)
        return table.set_column(2, "timestamp", parsed)

    read_records = msgspec_typed()

    def records_to_arrow() -> pa.Table:
        # As unchecked as dicts_to_arrow, from msgspec's records.
        points = read_records(body)
        return pa.table(
            {
                "index": pa.array([p.index for p in points], pa.string()),
                "value": pa.array([p.value for p in points], pa.float64()),
                "timestamp": pa.array([p.timestamp for p in points]).cast(TIMESTAMP),
            }
        )

    return {
        "orjson.loads (floor)": lambda: orjson.loads(body),
        "orjson.loads, each round right after a decode_block": AfterWarmUp(
            decode, lambda: orjson.loads(body)
        ),
        "json.loads (what requests' .json() runs)": lambda: json.loads(body),
        "msgspec typed decoding into records": lambda: read_records(body),
        "orjson dicts, then Arrow (unchecked)": dicts_to_arrow,
        "msgspec records, then Arrow (unchecked)": records_to_arrow,
        "decode_block, general reader (orjson dicts)": decode_generally,
        "decode_block, msgspec reader (records, then Arrow columns)": (
            decode_by_records
        ),
        "decode_block (compact reader: bytes straight to Arrow columns)": decode,
        "Parquet write alone, zstd and pyarrow's defaults": lambda: pq.write_table(
            table, target, compression="zstd"
        ),
        "Parquet write alone, the export's options": lambda: write_parquet(
            table, target
        ),
        "Parquet write of this answer's first row alone (a file's fixed cost)": (
            lambda: write_parquet(table.slice(0, 1), target)
        ),
        "decode_block, general reader + Parquet write": lambda: write_parquet(
            pa.Table.from_batches([decode_generally()]), target
        ),
        "decode_block, msgspec reader + Parquet write": lambda: write_parquet(
            pa.Table.from_batches([decode_by_records()]), target
        ),
        "decode_block + Parquet write": lambda: write_parquet(
            pa.Table.from_batches([decode()]), target
        ),
    }


def msgspec_typed() -> Callable[[bytes], list[Any]]:
    """msgspec decoding into typed records that the garbage collector ignores."""

    class Point(msgspec.Struct, gc=False):
        index: str
        value: float | int | bool | str | None
        timestamp: str

    return msgspec.json.Decoder(list[Point]).decode


def steps(answer: Case, folder: Path) -> dict[str, Callable[[], object]]:
    """The steps of decode_block and the write, each alone on its own input."""
    body, block, data_types = answer.body, answer.block, answer.data_types
    if not float_signals_only(block, data_types):
        raise ValueError(f"the answer of {block.describe()} is not of float signals")

    raw = np.frombuffer(body, np.uint8)
    layout = compact._layout(body, raw)
    if layout is None:
        raise ValueError(f"the answer of {block.describe()} is not of compact shape")

    columns = compact.read_compact(body, block.indexes)
    assert columns is not None  # its shape was just found
    codes = columns.codes
    times_us = decoding._cast_times(columns.time_texts)
    assert times_us is not None  # decode_block parses them so
    times_us = times_us[columns.time_positions]

    def timestamps() -> object:
        texts, positions = compact._time_texts(raw, layout, codes)
        parsed = decoding._cast_times(texts)
        return None if parsed is None else parsed[positions]

    value_columns = float_columns(columns.floats)
    table = pa.Table.from_batches(
        [decode_block(body, block, data_types, url=URL).batch]
    )
    return {
        "the shape: commas found, every fixed piece compared": lambda: compact._layout(
            body, raw
        ),
        "signals: each index read as a word and looked up": lambda: (
            compact._index_codes(raw, layout, block.indexes)
        ),
        "values: texts gathered, checked as JSON numbers, parsed by Arrow": lambda: (
            compact._floats(raw, layout.value_starts, layout.value_ends)
        ),
        "timestamps: texts compared as words, the distinct ones parsed": timestamps,
        "points to drop: unrequested, out of range, repeats": lambda: decoding._select(
            codes, times_us, block
        ),
        "the batch: index, label and timestamp columns": lambda: decoding._batch(
            block, codes, times_us, value_columns
        ),
        "Parquet write, the export's options": lambda: write_parquet(
            table, folder / "steps.parquet"
        ),
    }


def flush_ways(answers: list[Case], folder: Path) -> dict[str, Callable[[], object]]:
    """A flush's worth of answers: held as dicts (the floor), decoded, and decoded
    then staged as an export stages a flush (sorted, cut by database and day, written
    to Parquet with the export's options, each part's SHA-256 taken)."""
    stager = PartStager(folder, "parquet", "hotpath")

    def decode_all() -> list[pa.RecordBatch]:
        return [
            decode_block(a.body, a.block, a.data_types, url=URL).batch for a in answers
        ]

    return {
        "orjson.loads of every answer, all held (floor)": lambda: [
            orjson.loads(answer.body) for answer in answers
        ],
        "decode_block of every answer": decode_all,
        "decode_block of every answer, then staged as one flush": lambda: stager.stage(
            decode_all()
        ),
    }


def measure_flush(answers: list[Case], rounds: int) -> dict[str, Any]:
    points = sum(len(orjson.loads(answer.body)) for answer in answers)
    with tempfile.TemporaryDirectory(prefix="powerp-hotpath-") as folder:
        timings = best_cpu_s(flush_ways(answers, Path(folder)), rounds)

    floor_s = next(iter(timings.values())).cpu_s
    return {
        "window": answers[0].name,
        "answers": len(answers),
        "points": points,
        "body_mb": sum(len(answer.body) for answer in answers) / 1e6,
        "ways": _rows("way", timings, points, floor_s),
    }


def answers_per_flush(points_per_answer: int) -> int:
    """The answers an export buffers before it writes, at its default flush size."""
    return math.ceil(DEFAULT_ROWS_PER_FLUSH / points_per_answer)


def _points_of(answer: Case) -> int:
    # Not block.max_points: a signal with gaps answers fewer windows.
    return len(orjson.loads(answer.body))


def measure(answer: Case, rounds: int) -> dict[str, Any]:
    points = _points_of(answer)
    with tempfile.TemporaryDirectory(prefix="powerp-hotpath-") as folder:
        timings = best_cpu_s(ways(answer, Path(folder)), rounds)
        step_timings = best_cpu_s(steps(answer, Path(folder)), rounds)

    floor_s = next(iter(timings.values())).cpu_s
    return {
        "window": answer.name,
        "points": points,
        "body_mb": len(answer.body) / 1e6,
        "block": answer.block.describe(),
        "ways": _rows("way", timings, points, floor_s),
        "steps": _rows("step", step_timings, points, floor_s),
    }


def _rows(
    kind: str, timings: dict[str, Timing], points: int, floor_s: float
) -> list[dict[str, Any]]:
    return [
        {
            kind: name,
            "us_per_point": timing.cpu_s / points * 1e6,
            "to_floor": timing.cpu_s / floor_s,
            "page_faults": timing.page_faults,
        }
        for name, timing in timings.items()
    ]


def run(out_dir: Path = RESULTS_DIR, rounds: int = 15) -> dict[str, Any]:
    """Measure every way on answers at 1 s and 200 ms; write and return the results."""
    answers = [asyncio.run(fetch_answer(window)) for window in ("1s", "200ms")]
    flushes = [
        asyncio.run(fetch_answers(answer.name, answers_per_flush(_points_of(answer))))
        for answer in answers
    ]
    load_before = os.getloadavg()[0]
    measured = [measure(answer, rounds) for answer in answers]
    # Fewer rounds: each holds a whole flush, some ten times one answer.
    flushed = [measure_flush(flush, max(3, rounds // 3)) for flush in flushes]
    results = {
        "rounds": rounds,
        "load_average_1m": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "answers": measured,
        "flushes": flushed,
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
            *_table("way", answer["ways"]),
            "",
            "decode_block and the write step by step, each step alone on its input "
            "(warm caches: the steps add up to less than the whole):",
            "",
            *_table("step", answer["steps"]),
            "",
        ]

    for flush in results.get("flushes", ()):
        lines += [
            f"### A flush as an export writes it, at {flush['window']}: "
            f"{flush['answers']} answers of consecutive slices, "
            f"{flush['points']:,} points, {flush['body_mb']:.1f} MB",
            "",
            *_table("way", flush["ways"]),
            "",
        ]

    before, after = results["load_average_1m"]
    lines += [
        f"Best of {results['rounds']} rounds of CPU time; "
        f"load average over one minute {before:.2f} before and {after:.2f} after, "
        "on 2 cores.",
        "",
    ]
    return "\n".join(lines)


def _table(kind: str, rows: list[dict[str, Any]]) -> list[str]:
    return [
        f"| {kind} | CPU us / point | to the floor | page faults |",
        "| --- | --- | --- | --- |",
        *(
            f"| {row[kind]} | {row['us_per_point']:.3f} | {row['to_floor']:.2f} "
            f"| {row['page_faults']:,} |"
            for row in rows
        ),
    ]


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
