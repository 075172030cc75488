"""How much decoding a Query answer costs beyond parsing its JSON.

Run as ``python -m benchmarks.bench_decode``. Each body holds 20 signals times 1,800
windows of 500 ms, a block as large as a client sends. The floor is ``orjson.loads`` of
the same bytes; ``decode_block`` parses them too, so the ratio shows the price of the
columns, the checks and the Arrow batch. Timings are the best of several rounds, which
is the least disturbed by other work on the machine.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson

from powerp_async._decode import decode_block
from powerp_async._time import format_wire, parse_wire
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
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)

    return best


def msgspec_loader() -> Callable[[bytes], object] | None:
    """msgspec's untyped decoder, when it happens to be installed; no dependency."""
    try:
        import msgspec  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None

    decoder = msgspec.json.Decoder()
    return decoder.decode  # type: ignore[no-any-return]


def measure(case: Case, rounds: int) -> None:
    points = case.point_count
    floor_s = best_seconds(lambda: orjson.loads(case.body), rounds)
    decode_s = best_seconds(
        lambda: decode_block(case.body, case.block, case.data_types, url=URL), rounds
    )
    print(
        f"{case.name:<22} {len(case.body) / 1e6:5.2f} MB  "
        f"orjson.loads {floor_s / points * 1e6:6.3f} us/point  "
        f"decode_block {decode_s / points * 1e6:6.3f} us/point  "
        f"ratio {decode_s / floor_s:5.2f}"
    )

    load_msgspec = msgspec_loader()
    if load_msgspec is not None:
        msgspec_s = best_seconds(lambda: load_msgspec(case.body), rounds)
        print(f"{'':<22} msgspec decode {msgspec_s / points * 1e6:6.3f} us/point")


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

    if msgspec_loader() is None:
        print("msgspec is not installed; its figures are left out")


if __name__ == "__main__":
    main()
