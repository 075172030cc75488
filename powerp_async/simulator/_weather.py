"""The replayed weather: a typical year at Greensboro, NC, as a repeating profile.

The hourly table (see ``data/README.md``) is read once. Each row describes the hour
ending at its stamp in local standard time (UTC-5), so a row's value is placed at the
middle of its hour and values in between are interpolated linearly. The year repeats
every 365 days from 2025-01-01 local midnight; it drifts by a day per leap year, which a
simulator can afford.
"""

from __future__ import annotations

import functools
import gzip
from dataclasses import dataclass
from importlib import resources
from typing import Final

import numpy as np

from .._time import US_PER_SECOND as _S
from ._grid import RequestGrid
from ._hashing import FloatArray, IntArray, mix64, smooth_noise

HOURS_PER_YEAR: Final = 8_760
US_PER_HOUR: Final = 3_600_000_000
YEAR_US: Final = HOURS_PER_YEAR * US_PER_HOUR
PROFILE_ORIGIN_US: Final = 1_735_707_600_000_000
"""2025-01-01T00:00-05:00, where the first row's hour begins."""

CHANNELS: Final = (
    "ghi",
    "dni",
    "dhi",
    "air_temp",
    "rel_humidity",
    "pressure",
    "wind_speed",
    "wind_dir",
)
_DATA_FILE: Final = "tmy3-greensboro-hourly.csv.gz"


@dataclass(frozen=True, slots=True)
class HourPosition:
    """Where sample times fall in the profile: the row before, and how far on."""

    row: IntArray
    next_row: IntArray
    fraction: FloatArray

    @classmethod
    def of(cls, times_us: IntArray) -> HourPosition:
        # Rows sit at the middle of their hour, hence the half-hour shift.
        since_origin = (times_us - PROFILE_ORIGIN_US - US_PER_HOUR // 2) % YEAR_US
        row = since_origin // US_PER_HOUR
        fraction = (since_origin - row * US_PER_HOUR) * (1.0 / US_PER_HOUR)
        return cls(row, (row + 1) % HOURS_PER_YEAR, fraction)


@dataclass(frozen=True, slots=True, eq=False)
class WeatherProfile:
    """The hourly table as one float array per channel, 8,760 rows each."""

    hourly: dict[str, FloatArray]

    def __post_init__(self) -> None:
        for channel in CHANNELS:
            rows = self.hourly.get(channel)
            if rows is None or rows.shape != (HOURS_PER_YEAR,):
                shape = None if rows is None else rows.shape
                raise ValueError(
                    f"weather channel {channel!r} must have {HOURS_PER_YEAR} hourly "
                    f"rows, got {shape}"
                )

    def at(self, channel: str, position: HourPosition) -> FloatArray:
        """The channel interpolated at the sample times of ``position``."""
        rows = self.hourly[channel]
        low = rows[position.row]
        step = rows[position.next_row] - low
        if channel == "wind_dir":
            # Directions turn the short way round: 350° to 10° passes north.
            step = (step + 180.0) % 360.0 - 180.0
            return (low + step * position.fraction) % 360.0

        return low + step * position.fraction


@functools.cache
def load_profile() -> WeatherProfile:
    """Read the packaged table once per process."""
    source = resources.files(__package__).joinpath("data").joinpath(_DATA_FILE)
    with source.open("rb") as packed, gzip.open(packed, "rt", encoding="ascii") as text:
        table = np.loadtxt(text, delimiter=",", skiprows=1, usecols=range(2, 10))

    return WeatherProfile({name: table[:, i].copy() for i, name in enumerate(CHANNELS)})


@dataclass(frozen=True, slots=True, eq=False)
class Weather:
    """The site's weather at sample times: the hourly profile plus finer detail.

    The detail is seeded noise shared by every signal of the site, so the inverters of
    the plant see the same passing clouds and the turbines the same gusts. Each channel
    is computed once per request.
    """

    profile: WeatherProfile
    key: int

    def channel(self, grid: RequestGrid, name: str) -> FloatArray:
        return grid.memo((self.key, name), lambda: self._detailed(grid, name))

    def _hourly(self, grid: RequestGrid, name: str) -> FloatArray:
        position = grid.memo("hour_position", lambda: HourPosition.of(grid.samples_us))
        return grid.memo(
            (self.key, name, "hourly"), lambda: self.profile.at(name, position)
        )

    def _noise(self, grid: RequestGrid, name: str, knot_us: int) -> FloatArray:
        return smooth_noise(mix64(self.key, name), grid.samples_us, knot_us)

    def _detailed(self, grid: RequestGrid, name: str) -> FloatArray:
        base = self._hourly(grid, name)
        if name in ("ghi", "dni", "dhi"):
            return self._irradiance(grid, name, base)

        if name == "wind_speed":
            gusts = self._noise(grid, "gusts", 4 * _S)
            turbulence = self._noise(grid, "turbulence", _S)
            return np.maximum(base * (1.0 + 0.12 * gusts + 0.05 * turbulence), 0.0)

        if name == "wind_dir":
            return (base + 6.0 * self._noise(grid, name, 10 * _S)) % 360.0

        amplitude, knot_us, low, high = _SLOW_DETAIL[name]
        detailed = base + amplitude * self._noise(grid, name, knot_us)
        return np.clip(detailed, low, high)

    def _irradiance(self, grid: RequestGrid, name: str, base: FloatArray) -> FloatArray:
        """Clouds: the more diffuse the hour, the more the light flickers."""

        def cloudiness() -> FloatArray:
            ghi = self._hourly(grid, "ghi")
            diffuse = np.divide(
                self._hourly(grid, "dhi"), ghi, out=np.zeros_like(ghi), where=ghi > 1.0
            )
            drift = self._noise(grid, "clouds", 20 * _S)
            flicker = self._noise(grid, "flicker", 3 * _S)
            return np.clip(diffuse, 0.0, 1.0) * (drift + 0.3 * flicker)

        clouds = grid.memo((self.key, "clouds"), cloudiness)
        return np.maximum(base * (1.0 + _CLOUD_GAIN[name] * clouds), 0.0)


_CLOUD_GAIN: Final = {"ghi": 0.25, "dni": 0.5, "dhi": -0.15}
# channel: noise amplitude, knot spacing, physical bounds
_SLOW_DETAIL: Final[dict[str, tuple[float, int, float, float]]] = {
    "air_temp": (0.15, 120 * _S, -60.0, 60.0),
    "rel_humidity": (0.5, 300 * _S, 0.0, 100.0),
    "pressure": (0.05, 60 * _S, 800.0, 1100.0),
}
