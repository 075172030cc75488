"""How much decoding a Query answer costs beyond parsing its JSON.

Run as ``python -m benchmarks.bench_decode``. Each body holds 20 signals times 1,800
windows of 500 ms, a block as large as a client sends. The floor is ``orjson.loads`` of
the same bytes; ``decode_block`` parses them too, so the ratio shows the price of the
columns, the checks and the Arrow batch. Each case names the reader that took it, and
is timed again with the general reader alone (orjson into dicts), the one every body
the quick reader refuses goes to. Timings are CPU time, the best of several rounds, the
least disturbed by other work on the machine.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final
from unittest import mock

import orjson

import powerp_async._decode as decoding
import powerp_async._wire as wire
from powerp_async._compact_wire import read_compact
from powerp_async._decode import decode_block
from powerp_async._time import format_wire, parse_wire
from powerp_async._values import float_signals_only
from powerp_async.models import Block, DataType

SIGNAL_COUNT: Final = 20
WINDOW_COUNT: Final = 1_800
WINDOW_US: Final = 500_000
START_US: Final = parse_wire("2026-12-04T10:00:00Z")
URL: Final = "http://127.0.0.1/v1/Query"


@dataclass(frozen=True, slots=True)
class Case:
    """One kind of answer: how its values look and what the metadata declares."""

    name: str
    body: bytes
    block: Block
    data_types: Mapping[str, DataType | None]

    @property
    def point_count(self) -> int:
        return self.block.max_points


def make_block(aggregation: str = "mean") -> Block:
    indexes = tuple(str(100 + number) for number in range(SIGNAL_COUNT))
    end_us = START_US + WINDOW_COUNT * WINDOW_US
    return Block(3, aggregation, indexes, START_US, end_us, WINDOW_US)


def make_body(block: Block, value_of: Callable[[int, int], Any]) -> bytes:
    """A body with every signal in every window, mixed the way the server mixes them."""
    points = [
        {
            "index": index,
            "value": value_of(signal, window),
            "timestamp": format_wire(block.start_us + window * block.window_us),
        }
        for window in range(block.window_count)
        for signal, index in enumerate(block.indexes)
    ]
    # The stdlib writes integers of any size, which orjson refuses to.
    return json.dumps(points, separators=(",", ":")).encode()


def float_case(rng: random.Random) -> Case:
    block = make_block()
    body = make_body(block, lambda _signal, _window: rng.uniform(-1e4, 1e4))
    return Case("float", body, block, dict.fromkeys(block.indexes, DataType.FLOAT))


def whole_float_case(rng: random.Random) -> Case:
    """Float signals from a writer that prints whole floats without a fraction."""
    block = make_block()

    def value_of(_signal: int, _window: int) -> float | int:
        value = round(rng.uniform(-1e4, 1e4), 1)
        return int(value) if value.is_integer() else value

    body = make_body(block, value_of)
    data_types = dict.fromkeys(block.indexes, DataType.FLOAT)
    return Case("float, 5.0 sent as 5", body, block, data_types)


MIXED_KINDS: Final[list[DataType | None]] = [
    *[DataType.FLOAT] * 16,
    DataType.BOOL,
    DataType.STRING,
    DataType.INT,
    None,
]


def mixed_case(rng: random.Random) -> Case:
    """Floats with NaN as strings and gaps next to a flag, a state and a counter."""
    block = make_block("last")

    def value_of(signal: int, window: int) -> Any:
        kind = MIXED_KINDS[signal]
        if kind is DataType.BOOL:
            return window % 3 == 0
        if kind is DataType.STRING:
            return rng.choice(["running", "stopped", "fault"])
        if kind is DataType.INT:
            return rng.randrange(-(10**6), 10**6)
        if window % 97 == 0:
            return rng.choice(["NaN", None])
        return rng.uniform(-1e4, 1e4)

    body = make_body(block, value_of)
    data_types = dict(zip(block.indexes, MIXED_KINDS, strict=True))
    return Case("mixed types", body, block, data_types)


def huge_int_case(rng: random.Random) -> Case:
    """Counters that pass 64 bits now and then: the per-point path."""
    block = make_block("sum")

    def value_of(_signal: int, window: int) -> int:
        offset = 2**64 if window % 101 == 0 else 0
        return rng.randrange(10**12) + offset

    body = make_body(block, value_of)
    return Case(
        "int beyond 64 bits", body, block, dict.fromkeys(block.indexes, DataType.INT)
    )


def best_seconds(action: Callable[[], object], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.process_time()
        action()
        best = min(best, time.process_time() - started)

    return best


def measure(case: Case, rounds: int) -> None:
    points = case.point_count
    floor_s = best_seconds(lambda: orjson.loads(case.body), rounds)

    def decode() -> object:
        return decode_block(case.body, case.block, case.data_types, url=URL)

    def decode_generally() -> object:
        with (
            mock.patch.object(decoding, "read_compact", return_value=None),
            mock.patch.object(wire, "_read_quickly", return_value=None),
        ):
            return decode()

    decode_s = best_seconds(decode, rounds)
    general_s = best_seconds(decode_generally, rounds)
    print(
        f"{case.name:<22} {len(case.body) / 1e6:5.2f} MB  "
        f"orjson.loads {floor_s / points * 1e6:6.3f} us/point  "
        f"decode_block {decode_s / points * 1e6:6.3f} ({reader_of(case):<14}) "
        f"ratio {decode_s / floor_s:5.2f}  "
        f"general reader {general_s / points * 1e6:6.3f} "
        f"ratio {general_s / floor_s:5.2f}"
    )


def reader_of(case: Case) -> str:
    """Which reader decode_block takes the case with."""
    floats_only = float_signals_only(case.block, case.data_types)
    if floats_only and read_compact(case.body, case.block.indexes) is not None:
        return "compact"

    quick = wire._read_quickly(case.body, case.block.indexes, floats_only=floats_only)
    if quick is None:
        return "general"

    return "msgspec" if quick.floats is None else "msgspec floats"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="timed runs per case")
    parser.add_argument("--seed", type=int, default=7, help="seed of the values")
    arguments = parser.parse_args(argv)

    rng = random.Random(arguments.seed)
    shape = f"{SIGNAL_COUNT} signals x {WINDOW_COUNT} windows"
    print(f"{shape}, best of {arguments.rounds} rounds")
    for make_case in (float_case, whole_float_case, mixed_case, huge_int_case):
        measure(make_case(rng), arguments.rounds)


if __name__ == "__main__":
    main()
