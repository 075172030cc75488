"""The PV plant of database 1 and its met station, replaying the Greensboro weather.

PV output follows global irradiance with a temperature loss and is capped by the
inverter's rating and by the grid operator's setpoint; a faulted inverter (hashed per
10-minute block) reads zero power and reports the fault in its status text.

Each method taking ``(key, grid)`` is a sample function: ``key`` seeds the signal's own
sensor noise and ``grid`` carries the request's sample times.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np

from ..models import DataType
from ._catalogue import (
    Database,
    Kind,
    Row,
    channel_kind,
    counter_kind,
    float_kind,
    held_state,
)
from ._grid import RequestGrid
from ._hashing import BoolArray, FloatArray, IntArray, mix64, unit_of
from ._signals import US_PER_MINUTE, Samples, held_unit, jitter
from ._tenant import SignalSpec
from ._weather import US_PER_HOUR, Weather

INVERTER_STATES: Final = (
    "Einspeisung (MPP)",
    "Leistungsbegrenzung, EVU-Vorgabe",
    "Nacht",
    'Störung \N{EN DASH} Netzüberwachung "U<"',
)
INVERTER_COUNT: Final = 84
MET_STATION_SIZE: Final = 9
"""The first signals of database 1; they never have gaps or a late start."""

_NIGHT_OUTPUT: Final = 0.002
_ROOT3: Final = float(np.sqrt(3.0))

_SIDES: Final = ("Nord-Ost", "Ost", "West", "Süd")


def module_output(irradiance: FloatArray, air_temp: FloatArray) -> FloatArray:
    """PV output per kW of rating, from irradiance (W/m²) and air temperature (°C)."""
    cell_temp = air_temp + 0.028 * irradiance
    relative = irradiance * (1.08 / 1000.0) * (1.0 - 0.0037 * (cell_temp - 25.0))
    return np.clip(relative, 0.0, 1.15)


@dataclass(frozen=True, slots=True, eq=False)
class PvPlant:
    """The site-wide part of the PV plant: module output and the operator's setpoint."""

    weather: Weather
    key: int

    def output_per_kw(self, grid: RequestGrid) -> FloatArray:
        def compute() -> FloatArray:
            ghi = self.weather.channel(grid, "ghi")
            return module_output(ghi, self.weather.channel(grid, "air_temp"))

        return grid.memo((self.key, "output"), compute)

    def setpoint_pct(self, grid: RequestGrid) -> FloatArray:
        """Mostly 100 %; now and then the grid operator caps feed-in for 15 minutes."""

        def compute() -> FloatArray:
            draw = held_unit(grid, mix64(self.key, "setpoint"), 15 * US_PER_MINUTE)
            return np.where(draw < 0.9, 100.0, np.where(draw < 0.97, 60.0, 30.0))

        return grid.memo((self.key, "setpoint"), compute)

    def cell_temp_c(self, grid: RequestGrid) -> FloatArray:
        def compute() -> FloatArray:
            ghi = self.weather.channel(grid, "ghi")
            cell: FloatArray = self.weather.channel(grid, "air_temp") + 0.028 * ghi
            return cell

        return grid.memo((self.key, "cell"), compute)

    def module_temp_c(self, key: int, grid: RequestGrid) -> FloatArray:
        return self.cell_temp_c(grid) + 0.05 * jitter(grid, key)

    def hourly_output_per_kw(self) -> FloatArray:
        hourly = self.weather.profile.hourly
        return module_output(hourly["ghi"], hourly["air_temp"])


@dataclass(frozen=True, slots=True, eq=False)
class Inverter:
    """One inverter; its power, voltages and status share its fault blocks."""

    plant: PvPlant
    key: int
    rating_kw: float
    efficiency: float

    def _faulted(self, grid: RequestGrid) -> BoolArray:
        return held_unit(grid, mix64(self.key, "fault"), 10 * US_PER_MINUTE) < 0.02

    def _available_kw(self, grid: RequestGrid) -> FloatArray:
        output = self.plant.output_per_kw(grid)
        return self.rating_kw * self.efficiency * output

    def _limit_kw(self, grid: RequestGrid) -> FloatArray:
        return self.rating_kw * self.plant.setpoint_pct(grid) / 100.0

    def power_kw(self, key: int, grid: RequestGrid) -> FloatArray:
        noisy = self._available_kw(grid) * (1.0 + 0.01 * jitter(grid, key))
        capped = np.minimum(noisy, self._limit_kw(grid))
        return np.where(self._faulted(grid), 0.0, capped)

    def dc_voltage_v(self, key: int, grid: RequestGrid) -> FloatArray:
        output = self.plant.output_per_kw(grid)
        cell_temp = self.plant.cell_temp_c(grid)
        volts = 560.0 + 140.0 * np.minimum(output * 4.0, 1.0) - 1.8 * (cell_temp - 25.0)
        lit = (output > _NIGHT_OUTPUT) & ~self._faulted(grid)
        return np.where(lit, volts + 1.5 * jitter(grid, key), 0.0)

    def ac_current_a(self, key: int, grid: RequestGrid) -> FloatArray:
        power = self.power_kw(mix64(key, "power"), grid)
        amps = power * (1000.0 / (_ROOT3 * 400.0)) + 0.2 * jitter(grid, key)
        return np.where(power > 0.0, np.maximum(amps, 0.0), 0.0)

    def status(self, key: int, grid: RequestGrid) -> IntArray:
        night = self.plant.output_per_kw(grid) <= _NIGHT_OUTPUT
        limited = self._available_kw(grid) > self._limit_kw(grid)
        conditions = [self._faulted(grid), night, limited]
        # Ranks in INVERTER_STATES: fault 3, night 2, curtailed 1, else feeding 0.
        return np.select(conditions, [3, 2, 1], default=0).astype(np.int64)

    def hourly_kw(self) -> FloatArray:
        """Hour-mean power for the energy meter, without faults and curtailment."""
        scale = self.rating_kw * self.efficiency
        return scale * self.plant.hourly_output_per_kw()


def solar_park(seed: int, weather: Weather) -> list[SignalSpec]:
    """Database 1: the met station (indexes 1 to 9), plant totals, the inverters."""
    db = Database(1, seed, "2023-06-01T00:00:00Z")
    plant = PvPlant(weather, db.key("plant"))
    db.add_rows(1, _met_station_rows(weather, plant))
    inverters = [_inverter(db, plant, n) for n in range(1, INVERTER_COUNT + 1)]
    db.add_rows(10, _plant_rows(plant, inverters))
    for number, inverter in enumerate(inverters, start=1):
        db.add_rows(100 + 5 * number, _inverter_rows(number, inverter))

    return db.signals


def _met_station_rows(weather: Weather, plant: PvPlant) -> list[Row]:
    met = functools.partial(channel_kind, weather)
    sun = (0.0, 1400.0)
    cell = float_kind(plant.module_temp_c)
    return [
        Row("Globalstrahlung GHI", "mean", "W/m²", met("ghi"), 1, sun),
        Row("Lufttemperatur", "mean", "°C", met("air_temp"), 2, (-30.0, 50.0)),
        Row("Direktnormalstrahlung DNI", "mean", "W/m²", met("dni"), 1, sun),
        Row("Diffusstrahlung DHI", "mean", "W/m²", met("dhi"), 1, sun),
        Row("Relative Luftfeuchte", "mean", "%", met("rel_humidity"), 1, (0.0, 100.0)),
        Row("Luftdruck", "median", "hPa", met("pressure"), 1, (800.0, 1100.0)),
        Row("Windgeschwindigkeit 10 m", "max", "m/s", met("wind_speed"), 2),
        Row("Windrichtung 10 m", "last", "°", met("wind_dir"), 1, (0.0, 360.0)),
        Row("Modultemperatur Referenzzelle", "mean", "°C", cell, 2),
    ]


def _inverter(db: Database, plant: PvPlant, number: int) -> Inverter:
    key = db.key("inverter", number)
    rating_kw = (50.0, 100.0, 110.0, 250.0)[number % 4]
    efficiency = 0.94 + 0.04 * unit_of(mix64(key, "efficiency"))
    return Inverter(plant, key, rating_kw, efficiency)


def _plant_rows(plant: PvPlant, inverters: list[Inverter]) -> list[Row]:
    rated_kw = sum(inverter.rating_kw for inverter in inverters)
    usable_kw = sum(inverter.rating_kw * inverter.efficiency for inverter in inverters)

    def park_power(key: int, grid: RequestGrid) -> Samples:
        available = usable_kw * plant.output_per_kw(grid)
        limit = rated_kw * plant.setpoint_pct(grid) / 100.0
        power: Samples = np.minimum(available, limit)
        return power

    def setpoint(key: int, grid: RequestGrid) -> Samples:
        return plant.setpoint_pct(grid)

    closed = held_state(6 * US_PER_HOUR, 0.99)
    power = float_kind(park_power)
    return [
        Row("Parkleistung gesamt", "mean", "kW", power, 2, (0.0, rated_kw)),
        Row("Wirkleistungsvorgabe EVU", "", "%", float_kind(setpoint), 0, (0.0, 100.0)),
        Row("Übergabeschalter geschlossen", None, None, closed),
    ]


def _inverter_rows(number: int, inverter: Inverter) -> list[Row]:
    name = f'Wechselrichter {number}, "{_SIDES[number % 4]}" \N{EN DASH} '
    rating = inverter.rating_kw
    status = Kind(DataType.STRING, inverter.status, INVERTER_STATES)
    energy = counter_kind(inverter.hourly_kw(), inverter.key)
    power = float_kind(inverter.power_kw)
    return [
        Row(name + "Leistung", "mean", "kW", power, 2, (0.0, rating)),
        Row(name + "Energiezähler", "last", "kWh", energy, 1, (0.0, None)),
        Row(name + "DC-Spannung", "median", "V", float_kind(inverter.dc_voltage_v), 1),
        Row(name + "AC-Strom", "max", "A", float_kind(inverter.ac_current_a), 2),
        Row(name + "Status", None, None, status),
    ]
