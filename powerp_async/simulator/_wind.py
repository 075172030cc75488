"""The wind farm of database 2, on the same weather, with its indexes as JSON numbers.

Turbine output follows a cubic power curve between cut-in and rated wind speed and
stops above cut-out; a turbine in service (hashed per hour) stands still, feathered.

Each method taking ``(key, grid)`` is a sample function: ``key`` seeds the signal's own
sensor noise and ``grid`` carries the request's sample times.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np

from ..models import DataType
from ._catalogue import Database, Kind, Row, channel_kind, counter_kind, float_kind
from ._grid import RequestGrid
from ._hashing import BoolArray, FloatArray, IntArray, mix64, unit_of
from ._signals import delayed_noise, held_unit, jitter
from ._tenant import SignalSpec
from ._weather import US_PER_HOUR, Weather

TURBINE_STATES: Final = (
    "Betrieb",
    "Sturmabschaltung",
    "Warten auf Wind",
    'Wartung "Service-Einsatz"',
)
CUT_IN_M_S: Final = 3.0
RATED_WIND_M_S: Final = 12.5
CUT_OUT_M_S: Final = 25.0
TURBINE_COUNT: Final = 25
_TURBINE_SITES: Final = ("Am Hang", "Köhlerwald", "Zur Mühle", "Eichenöd", "Heide")


def power_curve(wind_m_s: FloatArray) -> FloatArray:
    """Turbine output as a share of its rating."""
    ramp = np.clip((wind_m_s - CUT_IN_M_S) / (RATED_WIND_M_S - CUT_IN_M_S), 0.0, 1.0)
    running = (wind_m_s >= CUT_IN_M_S) & (wind_m_s < CUT_OUT_M_S)
    # ramp * ramp * ramp: numpy's power() has no fast path for cubes.
    return np.where(running, ramp * ramp * ramp, 0.0)


@dataclass(frozen=True, slots=True, eq=False)
class Turbine:
    """One turbine; ``shear`` scales the site's 10 m wind up to its hub height."""

    weather: Weather
    key: int
    rated_kw: float
    shear: float
    nacelle_offset_deg: float

    def _hub_wind(self, grid: RequestGrid) -> FloatArray:
        def compute() -> FloatArray:
            site = self.weather.channel(grid, "wind_speed") * self.shear
            turbulence = mix64(self.weather.key, "turbulence")
            own = delayed_noise(grid, turbulence, self.key, 2_000_000)
            return np.maximum(site * (1.0 + 0.06 * own), 0.0)

        return grid.memo((self.key, "hub"), compute)

    def hub_wind_m_s(self, key: int, grid: RequestGrid) -> FloatArray:
        """The nacelle anemometer: the hub-height wind plus the sensor's own noise."""
        return np.maximum(self._hub_wind(grid) + 0.02 * jitter(grid, key), 0.0)

    def _available(self, grid: RequestGrid) -> BoolArray:
        return held_unit(grid, mix64(self.key, "service"), US_PER_HOUR) >= 0.03

    def _running(self, grid: RequestGrid) -> BoolArray:
        wind = self._hub_wind(grid)
        inside = (wind >= CUT_IN_M_S) & (wind < CUT_OUT_M_S)
        return inside & self._available(grid)

    def power_kw(self, key: int, grid: RequestGrid) -> FloatArray:
        share = power_curve(self._hub_wind(grid)) * (1.0 + 0.005 * jitter(grid, key))
        return np.where(self._available(grid), self.rated_kw * share, 0.0)

    def rotor_rpm(self, key: int, grid: RequestGrid) -> FloatArray:
        wind = self._hub_wind(grid)
        ramp = (wind - CUT_IN_M_S) / (RATED_WIND_M_S - CUT_IN_M_S)
        rpm = np.minimum(6.0 + 10.0 * ramp, 16.0) + 0.05 * jitter(grid, key)
        return np.where(self._running(grid), rpm, 0.0)

    def pitch_deg(self, key: int, grid: RequestGrid) -> FloatArray:
        wind = self._hub_wind(grid)
        feathered = ~self._available(grid) | (wind >= CUT_OUT_M_S)
        working = np.clip(1.0 + (wind - RATED_WIND_M_S) * 2.2, 1.0, 30.0)
        pitch: FloatArray = np.where(feathered, 88.0, working)
        return pitch + 0.05 * jitter(grid, key)

    def nacelle_deg(self, key: int, grid: RequestGrid) -> FloatArray:
        wind_dir = self.weather.channel(grid, "wind_dir")
        yaw_lag = delayed_noise(grid, mix64(self.weather.key, "yaw"), key, 30_000_000)
        lag = 2.0 * yaw_lag
        return (wind_dir + self.nacelle_offset_deg + lag) % 360.0

    def generator_temp_c(self, key: int, grid: RequestGrid) -> FloatArray:
        load = self.power_kw(mix64(key, "power"), grid) / self.rated_kw
        air = self.weather.channel(grid, "air_temp")
        temp: FloatArray = air + 18.0 + 40.0 * load + 0.1 * jitter(grid, key)
        return temp

    def available(self, key: int, grid: RequestGrid) -> BoolArray:
        return self._available(grid)

    def status(self, key: int, grid: RequestGrid) -> IntArray:
        wind = self._hub_wind(grid)
        conditions = [~self._available(grid), wind >= CUT_OUT_M_S, wind < CUT_IN_M_S]
        # Ranks in TURBINE_STATES: service 3, storm 1, no wind 2, else running 0.
        return np.select(conditions, [3, 1, 2], default=0).astype(np.int64)

    def hourly_kw(self) -> FloatArray:
        """Hour-mean power for the energy meter, at a typical 97 % availability."""
        hourly_wind = self.weather.profile.hourly["wind_speed"] * self.shear
        return self.rated_kw * power_curve(hourly_wind) * 0.97


def wind_farm(seed: int, weather: Weather) -> list[SignalSpec]:
    """Database 2: the met mast (indexes 101 to 106), then nine signals per turbine."""
    db = Database(2, seed, "2022-03-15T00:00:00Z", numbered=True)
    db.add_rows(101, _met_mast_rows(weather))
    for number in range(1, TURBINE_COUNT + 1):
        key = db.key("turbine", number)
        turbine = Turbine(
            weather,
            key,
            rated_kw=(2000.0, 3000.0, 3600.0)[number % 3],
            shear=1.25 + 0.15 * unit_of(mix64(key, "shear")),
            nacelle_offset_deg=round(6.0 * unit_of(mix64(key, "yaw")) - 3.0, 1),
        )
        db.add_rows(1000 + 10 * number, _turbine_rows(number, turbine))

    return db.signals


def _met_mast_rows(weather: Weather) -> list[Row]:
    met = functools.partial(channel_kind, weather)
    # Hub height sees more wind than the 10 m station: a typical shear factor.
    hub_wind, gusts = met("wind_speed", 1.25), met("wind_speed", 1.4)
    return [
        Row("Messmast Wind 80 m", "mean", "m/s", hub_wind, 2, (0.0, 80.0)),
        Row("Messmast Windrichtung 80 m", "last", "°", met("wind_dir"), 1),
        Row("Messmast Lufttemperatur", "mean", "°C", met("air_temp"), 2),
        Row("Messmast Luftdruck", "mean", "hPa", met("pressure"), 1),
        Row("Messmast Luftfeuchte", "min", "%", met("rel_humidity"), 1),
        Row("Messmast Böe 80 m", "max", "m/s", gusts, 2, (0.0, 90.0)),
    ]


def _turbine_rows(number: int, turbine: Turbine) -> list[Row]:
    name = f'WEA {number:02d} "{_TURBINE_SITES[number % 5]}", '
    rated = (0.0, turbine.rated_kw)
    status = Kind(DataType.STRING, turbine.status, TURBINE_STATES)
    available = Kind(DataType.BOOL, turbine.available)
    energy = counter_kind(turbine.hourly_kw(), turbine.key)
    generator_temp = float_kind(turbine.generator_temp_c)
    return [
        Row(name + "Leistung", "mean", "kW", float_kind(turbine.power_kw), 2, rated),
        Row(name + "Gondel-Wind", "mean", "m/s", float_kind(turbine.hub_wind_m_s), 2),
        Row(name + "Gondelposition", "first", "°", float_kind(turbine.nacelle_deg), 1),
        Row(name + "Energiezähler", "last", "kWh", energy, 1, (0.0, None)),
        Row(name + "verfügbar", "", None, available),
        Row(name + "Betriebszustand", None, None, status),
        Row(name + "Blattwinkel", "min", "°", float_kind(turbine.pitch_deg), 2),
        Row(name + "Generatortemperatur", "max", "°C", generator_temp, 1),
        Row(name + "Rotordrehzahl", "mean", "rpm", float_kind(turbine.rotor_rpm), 2),
    ]
