"""The set of committed blocks a resume skips, held compactly.

A block's unit id is the hex form of a 12-byte BLAKE2b digest of what it asks for
(:attr:`~powerp_async.models.Block.unit_id`). A Python set of those strings costs
about 100 bytes a block: for a year of a 10,000-signal tenant (some 8.7 million blocks)
a resume held 930 MB before fetching anything. Here each id is kept as its 12 raw bytes
in one sorted array: the same ids, compared in full, so membership answers exactly as
the set did, in 105 MB (200 MB at the peak, while sorting). Answering costs more CPU
than a set, about 2 microseconds an id, asked in batches. ``python -m
benchmarks.resume_memory`` measures both.

Ids are gathered in a byte buffer while a journal is read, and sorted once, when first
asked about.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

UNIT_ID_BYTES: Final = 12
_KEY_DTYPE: Final = f"S{UNIT_ID_BYTES}"
_BATCH: Final = 4096
"""Ids converted at a time, so a long iterable is never held as one list."""


class UnitSet:
    """Unit ids, added in bulk, asked about one at a time or many at once."""

    __slots__ = ("_added", "_sorted")

    def __init__(self, unit_ids: Iterable[str] = ()) -> None:
        self._added = bytearray()
        self._sorted: npt.NDArray[np.bytes_] = np.empty(0, dtype=_KEY_DTYPE)
        self.update(unit_ids)

    def update(self, unit_ids: Iterable[str]) -> None:
        """Add ids; raises ``ValueError`` for text that is not a unit id."""
        ids = iter(unit_ids)
        while batch := list(itertools.islice(ids, _BATCH)):
            self._added += _packed(batch)

    def __len__(self) -> int:
        return len(self._keys())

    def __contains__(self, unit_id: object) -> bool:
        if not isinstance(unit_id, str):
            return False

        return bool(self.contains([unit_id])[0])

    def __iter__(self) -> Iterator[str]:
        return (key.ljust(UNIT_ID_BYTES, b"\0").hex() for key in self._keys())

    def __repr__(self) -> str:
        return f"<UnitSet of {len(self)} units>"

    def contains(self, unit_ids: Sequence[str]) -> npt.NDArray[np.bool_]:
        """Whether each of ``unit_ids`` is in the set, answered in one pass."""
        keys = self._keys()
        asked = np.frombuffer(_packed(unit_ids), dtype=_KEY_DTYPE)
        if not len(keys):
            return np.zeros(len(asked), dtype=np.bool_)

        positions = np.searchsorted(keys, asked)
        found: npt.NDArray[np.bool_] = (
            keys[np.minimum(positions, len(keys) - 1)] == asked
        )
        return found

    def _keys(self) -> npt.NDArray[np.bytes_]:
        if self._added:
            added = np.frombuffer(self._added, dtype=_KEY_DTYPE)
            merged = np.concatenate([self._sorted, added])
            del added
            self._added = bytearray()
            # Sorted in place and deduplicated by neighbours: numpy's unique would
            # hold several times the array at once for byte strings.
            merged.sort()
            self._sorted = _distinct(merged)

        return self._sorted


def _distinct(ordered: npt.NDArray[np.bytes_]) -> npt.NDArray[np.bytes_]:
    """``ordered`` without repeats, copied only if it has any."""
    if len(ordered) < 2:
        return ordered

    first = np.empty(len(ordered), dtype=np.bool_)
    first[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=first[1:])
    return ordered if first.all() else ordered[first]


def _packed(unit_ids: Sequence[str]) -> bytes:
    """The ids' bytes, end to end, or a ``ValueError`` naming the first bad one."""
    try:
        packed = bytes.fromhex("".join(unit_ids))
    except (TypeError, ValueError):
        packed = b""

    if len(packed) != UNIT_ID_BYTES * len(unit_ids):
        _check_each(unit_ids)

    return packed


def _check_each(unit_ids: Sequence[str]) -> None:
    for unit_id in unit_ids:
        try:
            key = bytes.fromhex(unit_id)
        except (TypeError, ValueError):
            key = b""

        if len(key) != UNIT_ID_BYTES:
            raise ValueError(
                f"expected a unit id of {2 * UNIT_ID_BYTES} hex digits, got {unit_id!r}"
            )
