"""How a signal's raw samples are made: the model type and the generic building blocks.

A :class:`Model` is a pure function from a request's sample times to one raw value per
sample. Site physics lives in ``_solar``, ``_wind`` and ``_substation``; here are the
parts any signal may use: per-sample jitter, slow waves, states that hold for hashed
blocks of time, the daily shape of an electrical load, and energy meters that
integrate an hourly profile.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from ..models import DataType
from ._grid import SAMPLE_PERIOD_US, RequestGrid
from ._hashing import (
    BlockPositions,
    FloatArray,
    IntArray,
    block_draws,
    hashed_below,
    smooth_noise,
    table_noise,
    unit_of,
)
from ._weather import HOURS_PER_YEAR, PROFILE_ORIGIN_US, US_PER_HOUR

Samples = npt.NDArray[Any]
"""Raw samples: floats, ints, bools, or ranks of words."""

US_PER_MINUTE: Final = 60_000_000
MAX_DELAY_US: Final = 2 * US_PER_MINUTE
LOCAL_OFFSET_US: Final = -5 * US_PER_HOUR
"""The site's standard time, UTC-5, as in the replayed weather."""


@dataclass(frozen=True, slots=True, eq=False)
class Model:
    """Raw samples of one signal: floats, ints, bools, or ranks in ``vocabulary``.

    The vocabulary of a string signal is sorted, so comparing ranks compares strings.
    """

    data_type: DataType
    sample: Callable[[RequestGrid], Samples]
    vocabulary: tuple[str, ...] = ()
    sample_at: Callable[[IntArray], Samples] | None = None
    """The same samples at any sample times, for a model whose value at a time
    depends on that time alone: an aggregation that reads one sample per window
    (``first``, ``last``) then computes those alone, not the 18,000 of a span."""

    def __post_init__(self) -> None:
        is_text = self.data_type is DataType.STRING
        if is_text != bool(self.vocabulary):
            raise ValueError(
                "Model.vocabulary must be given for string signals and only for them, "
                f"got {len(self.vocabulary)} words for a {self.data_type} signal"
            )

        if list(self.vocabulary) != sorted(set(self.vocabulary)):
            raise ValueError("Model.vocabulary must be sorted and free of repeats")


def jitter(grid: RequestGrid, key: int) -> FloatArray:
    """Independent noise in [-1, 1) for every raw sample: a sensor's own noise."""
    return table_noise(key, grid.sample_counters())


def wave(
    grid: RequestGrid, key: int, center: float, swing: float, knot_us: int
) -> FloatArray:
    """A value drifting smoothly within ``center ± swing``."""
    return center + swing * smooth_noise(key, grid.samples_us, knot_us)


def delayed_noise(
    grid: RequestGrid, shared_key: int, unit_key: int, knot_us: int
) -> FloatArray:
    """Smooth noise shared by many units, each seeing it late by its own delay.

    Unit ``u`` reads ``smooth_noise(shared_key, t + d_u)`` with ``d_u`` under two
    minutes, hashed from ``unit_key``: a gust or a load swing passing through a farm
    or a grid. One computation per request serves every unit as a slice, which keeps
    twenty turbines or feeders in one request about as cheap as one.
    """
    steps = MAX_DELAY_US // SAMPLE_PERIOD_US
    count = len(grid.samples_us)

    def compute() -> FloatArray:
        reach = np.arange(count + steps, dtype=np.int64) * SAMPLE_PERIOD_US
        return smooth_noise(shared_key, reach + grid.samples_us[0], knot_us)

    shared = grid.memo(("delayed", shared_key, knot_us), compute)
    delay = unit_key % steps
    return shared[delay : delay + count]


def held_unit(grid: RequestGrid, key: int, block_us: int) -> FloatArray:
    """A uniform draw that holds for each epoch-aligned block (a state, a fault)."""
    return grid.memo(
        (key, block_us), lambda: held_draws(key, grid.block_offsets(block_us))
    )


def held_draws(key: int, positions: BlockPositions) -> FloatArray:
    """:func:`held_unit` at the times whose blocks are ``positions``: the draw of
    each block depends on the block alone, so any times may be drawn for."""
    first, offsets = positions
    return block_draws(key, first, offsets)[offsets]


def held_choice(
    key: int,
    positions: BlockPositions,
    cumulative_weights: FloatArray,
    choices: IntArray,
) -> IntArray:
    """One of ``choices`` by its weight, held for each block of ``positions``.

    The same as picking from :func:`held_draws` time by time, but picked once per
    block: a request of 18,000 samples holds only a few blocks.
    """
    first, offsets = positions
    draws = block_draws(key, first, offsets)
    picked: IntArray = choices[pick(draws, cumulative_weights)]
    return picked[offsets]


def rare_events(grid: RequestGrid, key: int, chance: float) -> IntArray:
    """1 where an event is counted in a sample, else 0."""
    return hashed_below(key, grid.sample_counters(), chance).astype(np.int64)


def pick(draws: FloatArray, cumulative_weights: FloatArray) -> IntArray:
    """Map uniform draws to choices by their cumulative weights (last one is 1.0)."""
    return np.searchsorted(cumulative_weights, draws, side="right").astype(np.int64)


def local_hours(times_us: IntArray) -> FloatArray:
    """Hour of the local standard day, 0 to 24, as a float."""
    day_us = 24 * US_PER_HOUR
    return ((times_us + LOCAL_OFFSET_US) % day_us) * (1.0 / US_PER_HOUR)


def load_shape(hours: FloatArray) -> FloatArray:
    """Relative electrical load over a day: low at night, peaks at 11:00 and 18:30."""
    evening = np.cos(2 * np.pi * (hours - 18.5) / 24.0)
    midday = np.cos(2 * np.pi * (hours - 11.0) / 12.0)
    shape: FloatArray = 0.55 + 0.3 * evening + 0.12 * midday
    return shape


def daily_load(grid: RequestGrid) -> FloatArray:
    """The load shape at the request's samples, shared by every feeder."""
    return grid.memo("daily_load", lambda: load_shape(local_hours(grid.samples_us)))


@dataclass(frozen=True, slots=True, eq=False)
class EnergyCounter:
    """A meter that integrates an hourly power profile: never decreases.

    ``hourly_kw[r]`` is the mean power of profile row ``r`` (the hour starting ``r``
    hours after the profile origin); the reading grows linearly inside each hour and by
    a full year's energy every 365 days. ``base_kwh`` keeps readings positive for the
    years before the profile origin.
    """

    hourly_kw: FloatArray
    base_kwh: float
    before_hour_kwh: FloatArray = field(init=False, repr=False)
    yearly_kwh: float = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.hourly_kw.shape != (HOURS_PER_YEAR,) or self.hourly_kw.min() < 0:
            raise ValueError(
                f"EnergyCounter.hourly_kw must be {HOURS_PER_YEAR} non-negative values"
            )

        running_total = np.cumsum(self.hourly_kw)
        before = np.concatenate(([0.0], running_total[:-1]))
        object.__setattr__(self, "before_hour_kwh", before)
        object.__setattr__(self, "yearly_kwh", float(running_total[-1]))

    @classmethod
    def from_profile(cls, hourly_kw: FloatArray, key: int) -> EnergyCounter:
        """A meter whose reading stays positive back to four years before the origin."""
        yearly_kwh = float(hourly_kw.sum())
        return cls(hourly_kw, round(4 * yearly_kwh + 10_000 * unit_of(key), 1))

    def reading(self, key: int, grid: RequestGrid) -> FloatArray:
        """The meter at each sample (``key`` is unused: the reading has no noise)."""
        return self.reading_at(key, grid.samples_us)

    def reading_at(self, key: int, times_us: IntArray) -> FloatArray:
        """The meter at each of ``times_us`` (``key`` is unused, as above)."""
        since_origin = times_us - PROFILE_ORIGIN_US
        hours = since_origin // US_PER_HOUR
        years, row = np.divmod(hours, HOURS_PER_YEAR)
        before_hour = self.before_hour_kwh[row]
        within_hour = (since_origin - hours * US_PER_HOUR) * (1.0 / US_PER_HOUR)
        return (
            self.base_kwh
            + years * self.yearly_kwh
            + before_hour
            + self.hourly_kw[row] * within_hour
        )
