"""Seeded integer hashing: the only source of randomness in the simulator.

Every simulated value is a pure function of the seed, the signal and the time, so the
server needs no state and two requests for the same window always agree. Python's
``hash()`` is salted per process and ``random`` has state, so both are out; instead a
splitmix64 finaliser mixes 64-bit integers, on Python ints for the few per-signal keys
and on numpy ``uint64`` arrays (whose arithmetic wraps silently) for per-sample noise.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Final

import numpy as np
import numpy.typing as npt

_MASK64: Final = (1 << 64) - 1
_GOLDEN: Final = 0x9E3779B97F4A7C15
_MIX1: Final = 0xBF58476D1CE4E5B9
_MIX2: Final = 0x94D049BB133111EB
# An odd multiplier spreads consecutive counters over all 64 bits before the mix.
_SPREAD: Final = 0xD1342543DE82EF95
_UNIT_SCALE: Final = 1.0 / (1 << 53)
NOISE_TABLE_SIZE: Final = 1 << 16

FloatArray = npt.NDArray[np.floating[Any]]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def _splitmix(value: int) -> int:
    z = (value + _GOLDEN) & _MASK64
    z = ((z ^ (z >> 30)) * _MIX1) & _MASK64
    z = ((z ^ (z >> 27)) * _MIX2) & _MASK64
    return z ^ (z >> 31)


def mix64(*parts: int | str) -> int:
    """Combine integers and short labels into one well-mixed 64-bit key."""
    key = 0
    for part in parts:
        number = part if isinstance(part, int) else int.from_bytes(part.encode(), "big")
        key = _splitmix(key ^ (number & _MASK64))

    return key


def unit_of(key: int) -> float:
    """A uniform float in [0, 1) for one key."""
    return (_splitmix(key) >> 11) * _UNIT_SCALE


def hashed_u64(key: int, counters: IntArray) -> npt.NDArray[np.uint64]:
    """One 64-bit hash per counter, keyed: the array form of :func:`mix64`."""
    z = counters.astype(np.uint64)
    z *= np.uint64(_SPREAD)
    z += np.uint64((key + _GOLDEN) & _MASK64)
    z ^= z >> np.uint64(30)
    z *= np.uint64(_MIX1)
    z ^= z >> np.uint64(27)
    z *= np.uint64(_MIX2)
    z ^= z >> np.uint64(31)
    return z


def hashed_unit(key: int, counters: IntArray) -> FloatArray:
    """Uniform floats in [0, 1), one per counter."""
    return (hashed_u64(key, counters) >> np.uint64(11)).astype(np.float64) * _UNIT_SCALE


def hashed_below(key: int, counters: IntArray, chance: float) -> BoolArray:
    """``hashed_unit(key, counters) < chance``, compared as integers: a unit is the
    hash's top 53 bits times 2**-53, exactly, so it lies below ``chance`` exactly
    when those bits lie below ``chance * 2**53`` rounded up. Skipping the floats
    saves a third of the work of a rare event drawn at every sample."""
    threshold = np.uint64(min(max(math.ceil(chance * (1 << 53)), 0), 1 << 53))
    below: BoolArray = (hashed_u64(key, counters) >> np.uint64(11)) < threshold
    return below


def hashed_symmetric(key: int, counters: IntArray) -> FloatArray:
    """Uniform floats in [-1, 1), one per counter."""
    return hashed_unit(key, counters) * 2.0 - 1.0


def smooth_noise(key: int, times_us: IntArray, knot_us: int) -> FloatArray:
    """Noise in [-1, 1) that moves linearly between hashed knots every ``knot_us``.

    Only the knots inside the span are hashed, so the cost per sample is a few
    arithmetic steps whatever the knot spacing.
    """
    knots = times_us // knot_us
    first = int(knots[0])
    heights = hashed_symmetric(key, np.arange(first, int(knots[-1]) + 2))
    offset = knots - first
    low = heights[offset]
    high = heights[offset + 1]
    fraction = (times_us - knots * knot_us) * (1.0 / knot_us)
    return low + (high - low) * fraction


BlockPositions = tuple[int, IntArray]
"""The epoch-aligned block of the first of some sorted times, and each time's block
counted from it."""


def block_positions(times_us: IntArray, block_us: int) -> BlockPositions:
    """Where sorted ``times_us`` (at least one) fall in blocks of ``block_us``."""
    blocks = times_us // block_us
    first = int(blocks[0])
    blocks -= first
    return first, blocks


def block_draws(key: int, first: int, offsets: IntArray) -> FloatArray:
    """One uniform float per block, from block ``first`` to the last of ``offsets``
    (sorted block numbers less ``first``)."""
    return hashed_unit(key, np.arange(first, first + int(offsets[-1]) + 1))


@functools.cache
def _noise_table() -> FloatArray:
    return hashed_symmetric(mix64("sensor noise"), np.arange(NOISE_TABLE_SIZE))


def table_noise(key: int, counters: IntArray) -> FloatArray:
    """Per-sample noise in [-1, 1) read from a fixed table of hashed draws.

    Each key walks the table with its own odd stride and offset, so consecutive samples
    land on independent draws and the sequence repeats only after 65,536 samples (109
    minutes at 10 Hz). It costs a third of hashing every sample, which matters: sensor
    noise is drawn for every raw sample of every signal of a request.
    """
    stride = (key & (NOISE_TABLE_SIZE - 1)) | 1
    offset = (key >> 16) & (NOISE_TABLE_SIZE - 1)
    positions = counters * stride
    positions += offset
    positions &= NOISE_TABLE_SIZE - 1
    return _noise_table().take(positions)
