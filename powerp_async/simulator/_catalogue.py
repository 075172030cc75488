"""Building blocks of a tenant catalogue: rows of signals added to databases.

A catalogue reads as a table: each :class:`Row` names a signal, its default aggregation,
unit, resolution and bounds, and the :class:`Kind` of value it carries with the function
that samples it. :class:`Database` numbers the rows and gives each signal its own key,
derived from the seed, for its sensor noise.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Final, NamedTuple

from .._time import parse_wire
from ..models import DataType
from ._grid import RequestGrid
from ._hashing import FloatArray, IntArray, block_positions, mix64
from ._signals import EnergyCounter, Model, Samples, held_draws, held_unit
from ._tenant import SignalSpec
from ._weather import Weather

SampleFunction = Callable[[int, RequestGrid], Samples]
"""``sample(key, grid)``: raw samples at the grid's times, noise seeded by ``key``."""

PointFunction = Callable[[int, IntArray], Samples]
"""``sample_at(key, times_us)``: the same samples at any sorted sample times, for a
value that depends on its time alone."""

_NO_BOUNDS: Final = (None, None)


class Kind(NamedTuple):
    """A value type with its sample function (and vocabulary, for strings), and the
    same function of sample times alone where the value depends on nothing else."""

    data_type: DataType
    sample: SampleFunction
    vocabulary: tuple[str, ...] = ()
    sample_at: PointFunction | None = None


class Row(NamedTuple):
    """One line of a catalogue: a signal's metadata and how it is sampled."""

    name: str
    default_agg: str | None
    unit: str | None
    kind: Kind
    decimals: int = 0
    bounds: tuple[float | None, float | None] = _NO_BOUNDS


def float_kind(sample: SampleFunction) -> Kind:
    return Kind(DataType.FLOAT, sample)


class Database:
    """Collects the signals of one database; ``numbered`` lists indexes as numbers."""

    def __init__(
        self, database_id: int, seed: int, first_data: str, *, numbered: bool = False
    ) -> None:
        self.database_id = database_id
        self.seed = seed
        self.first_data_us = parse_wire(first_data)
        self.numbered = numbered
        self.signals: list[SignalSpec] = []

    def key(self, *parts: int | str) -> int:
        return mix64(self.seed, self.database_id, *parts)

    def add(self, index: int, row: Row) -> None:
        key = self.key("signal", index)
        sample = functools.partial(row.kind.sample, key)
        sample_at = row.kind.sample_at
        if sample_at is not None:
            sample_at = functools.partial(sample_at, key)
        spec = SignalSpec(
            database_id=self.database_id,
            index=str(index),
            name=row.name,
            default_agg=row.default_agg,
            unit_symbol=row.unit,
            model=Model(row.kind.data_type, sample, row.kind.vocabulary, sample_at),
            first_data_us=self.first_data_us,
            decimals=row.decimals,
            min_value=row.bounds[0],
            max_value=row.bounds[1],
            index_is_number=self.numbered,
        )
        self.signals.append(spec)

    def add_rows(self, first_index: int, rows: Sequence[Row]) -> None:
        for offset, row in enumerate(rows):
            self.add(first_index + offset, row)


def channel_kind(weather: Weather, name: str, factor: float = 1.0) -> Kind:
    """A weather channel as measured on site, scaled by ``factor``."""

    def sample(key: int, grid: RequestGrid) -> Samples:
        return weather.channel(grid, name) * factor

    return float_kind(sample)


def counter_kind(hourly_kw: FloatArray, key: int) -> Kind:
    """An energy meter integrating ``hourly_kw``; ``key`` seeds its start reading."""
    counter = EnergyCounter.from_profile(hourly_kw, key)
    return Kind(DataType.FLOAT, counter.reading, sample_at=counter.reading_at)


def state_kind(
    sample: SampleFunction, sample_at: PointFunction, vocabulary: tuple[str, ...] = ()
) -> Kind:
    """A bool, or a word of ``vocabulary``, that depends on its time alone."""
    data_type = DataType.STRING if vocabulary else DataType.BOOL
    return Kind(data_type, sample, vocabulary, sample_at)


def held_state(block_us: int, true_share: float) -> Kind:
    """A bool that holds for each block, true for ``true_share`` of the blocks."""

    def sample(key: int, grid: RequestGrid) -> Samples:
        return held_unit(grid, key, block_us) < true_share

    def sample_at(key: int, times_us: IntArray) -> Samples:
        return held_draws(key, block_positions(times_us, block_us)) < true_share

    return state_kind(sample, sample_at)
