"""The substation of database 3: frequency, busbar voltages, feeders, transformers.

It is mostly synthetic; only the ambient and oil temperatures follow the weather. Feeder
loads follow a daily shape in local time; an open breaker takes its feeder's
currents and power to zero. Breaker states, alarms and tap positions hold for hashed
blocks of time, so they change rarely, as such states do.

Each method taking ``(key, grid)`` is a sample function: ``key`` seeds the signal's own
sensor noise and ``grid`` carries the request's sample times.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final

import numpy as np

from ..models import DataType
from ._catalogue import Database, Kind, Row, counter_kind, float_kind, state_kind
from ._grid import RequestGrid
from ._hashing import (
    BoolArray,
    FloatArray,
    IntArray,
    block_positions,
    mix64,
    smooth_noise,
    unit_of,
)
from ._signals import (
    US_PER_MINUTE,
    Samples,
    daily_load,
    delayed_noise,
    held_choice,
    held_draws,
    held_unit,
    jitter,
    load_shape,
    rare_events,
    wave,
)
from ._tenant import SignalSpec
from ._weather import HOURS_PER_YEAR, US_PER_HOUR, Weather

_ROOT3: Final = float(np.sqrt(3.0))
_US_PER_DAY: Final = 24 * US_PER_HOUR
FEEDER_COUNT: Final = 30
_BUSBARS: Final = (("110 kV", 110_000.0), ("20 kV A", 20_000.0), ("20 kV B", 20_000.0))


def _alarm_table(
    weighted: tuple[tuple[str, float], ...],
) -> tuple[tuple[str, ...], FloatArray, IntArray]:
    """The sorted vocabulary, the cumulative weights, and each choice's rank."""
    texts = [text for text, _ in weighted]
    vocabulary = tuple(sorted(texts))
    cumulative = np.cumsum([weight for _, weight in weighted])
    ranks = np.array([vocabulary.index(text) for text in texts], dtype=np.int64)
    return vocabulary, cumulative / cumulative[-1], ranks


_ALARM_BLOCK_US: Final = 10 * US_PER_MINUTE
"""An alarm holds for each block of ten minutes."""

_BREAKER_BLOCK_US: Final = 6 * US_PER_HOUR
"""A feeder's breaker opens or closes only at the turn of a six-hour block."""

FEEDER_ALARMS, _FEEDER_WEIGHTS, _FEEDER_RANKS = _alarm_table(
    (
        ("Keine Störung", 0.9),
        ("Erdschluss, Abgang gestört", 0.03),
        ('Überstrom "I>" angeregt', 0.03),
        ("Kommunikation gestört \N{EN DASH} Feldgerät", 0.03),
        ("", 0.01),
    )
)
TRANSFORMER_ALARMS, _TRANSFORMER_WEIGHTS, _TRANSFORMER_RANKS = _alarm_table(
    (
        ("Keine Störung", 0.93),
        ('Buchholz-Warnung "Stufe 1"', 0.02),
        ("Öltemperatur hoch, Lüfter an", 0.04),
        ("Stufenschalter: Laufzeit überschritten", 0.01),
    )
)


@dataclass(frozen=True, slots=True, eq=False)
class Substation:
    weather: Weather
    key: int

    def frequency_hz(self, key: int, grid: RequestGrid) -> FloatArray:
        """One grid frequency for the whole site, seen by each meter with its noise."""

        def compute() -> FloatArray:
            slow = wave(grid, mix64(self.key, "f-slow"), 50.0, 0.035, 20_000_000)
            return slow + 0.008 * smooth_noise(
                mix64(self.key, "f"), grid.samples_us, 10**6
            )

        return grid.memo((self.key, "frequency"), compute) + 0.001 * jitter(grid, key)

    def busbar_voltage_v(
        self, nominal_v: float, key: int, grid: RequestGrid
    ) -> FloatArray:
        site = grid.memo(
            (self.key, "voltage"),
            lambda: smooth_noise(mix64(self.key, "u"), grid.samples_us, 5_000_000),
        )
        own = delayed_noise(grid, mix64(self.key, "u-own"), key, 60_000_000)
        deviation: FloatArray = 0.008 * own + 0.002 * site
        return nominal_v * (1.0 + deviation + 0.0003 * jitter(grid, key))

    def ambient_temp_c(self, key: int, grid: RequestGrid) -> FloatArray:
        return self.weather.channel(grid, "air_temp") + 0.05 * jitter(grid, key)


@dataclass(frozen=True, slots=True, eq=False)
class Feeder:
    """One outgoing line; its load and power factor swing with the whole grid's."""

    substation: Substation
    key: int
    base_current_a: float
    voltage_v: float

    def closed(self, key: int, grid: RequestGrid) -> BoolArray:
        """The breaker: open for a hashed 6 hours now and then."""
        return held_unit(grid, mix64(self.key, "breaker"), _BREAKER_BLOCK_US) >= 0.04

    def closed_at(self, key: int, times_us: IntArray) -> BoolArray:
        """:meth:`closed` at any sample times."""
        positions = block_positions(times_us, _BREAKER_BLOCK_US)
        return held_draws(mix64(self.key, "breaker"), positions) >= 0.04

    def _load_a(self, grid: RequestGrid) -> FloatArray:
        def compute() -> FloatArray:
            shape = daily_load(grid)
            shared = mix64(self.substation.key, "load")
            wander = delayed_noise(grid, shared, self.key, 30_000_000)
            closed = self.closed(self.key, grid)
            return np.where(
                closed, self.base_current_a * shape * (1 + 0.05 * wander), 0.0
            )

        return grid.memo((self.key, "load"), compute)

    def _power_factor(self, grid: RequestGrid) -> FloatArray:
        shared = mix64(self.substation.key, "cos")
        return 0.93 + 0.04 * delayed_noise(grid, shared, self.key, 300_000_000)

    def current_a(self, skew: float, key: int, grid: RequestGrid) -> FloatArray:
        load = self._load_a(grid)
        amps = load * (1.0 + skew) + 0.3 * jitter(grid, key)
        return np.where(load > 0.0, np.maximum(amps, 0.0), 0.0)

    def active_kw(self, key: int, grid: RequestGrid) -> FloatArray:
        volt_amps = _ROOT3 * self.voltage_v * self._load_a(grid)
        return (
            volt_amps
            * self._power_factor(grid)
            / 1000.0
            * (1 + 0.002 * jitter(grid, key))
        )

    def reactive_kvar(self, key: int, grid: RequestGrid) -> FloatArray:
        cos_phi = self._power_factor(grid)
        active = self.active_kw(key, grid)
        return active * np.tan(np.arccos(cos_phi))

    def power_factor(self, key: int, grid: RequestGrid) -> FloatArray:
        return np.where(self._load_a(grid) > 0.0, self._power_factor(grid), 0.0)

    def alarm(self, key: int, grid: RequestGrid) -> IntArray:
        return self.alarm_at(key, grid.samples_us)

    def alarm_at(self, key: int, times_us: IntArray) -> IntArray:
        positions = block_positions(times_us, _ALARM_BLOCK_US)
        alarm_key = mix64(self.key, "alarm")
        return held_choice(alarm_key, positions, _FEEDER_WEIGHTS, _FEEDER_RANKS)

    def operations(self, base: int, key: int, grid: RequestGrid) -> IntArray:
        """A switching counter: one more operation every few days."""
        period_us = (2 + self.key % 7) * _US_PER_DAY
        return base + grid.samples_us // period_us

    def hourly_kw(self) -> FloatArray:
        """Hour-mean power for the energy meter: the daily load shape at cos φ 0.93."""
        mid_hours = (np.arange(HOURS_PER_YEAR) % 24) + 0.5
        shape = load_shape(mid_hours.astype(np.float64))
        volt_amps = _ROOT3 * self.voltage_v * self.base_current_a * shape
        return volt_amps * 0.93 / 1000.0


@dataclass(frozen=True, slots=True, eq=False)
class Transformer:
    substation: Substation
    key: int
    rated_kva: float

    def _loading(self, grid: RequestGrid) -> FloatArray:
        def compute() -> FloatArray:
            wander = smooth_noise(mix64(self.key, "load"), grid.samples_us, 60_000_000)
            return 0.6 * daily_load(grid) * (1 + 0.03 * wander)

        return grid.memo((self.key, "loading"), compute)

    def tap_position(self, key: int, grid: RequestGrid) -> IntArray:
        drift = smooth_noise(
            mix64(self.key, "tap"), grid.samples_us, 30 * US_PER_MINUTE
        )
        steps: IntArray = np.rint(4.0 * drift).astype(np.int64)
        return steps + 9

    def load_kw(self, key: int, grid: RequestGrid) -> FloatArray:
        return (
            self.rated_kva
            * 0.95
            * self._loading(grid)
            * (1 + 0.002 * jitter(grid, key))
        )

    def oil_temp_c(self, key: int, grid: RequestGrid) -> FloatArray:
        ambient = self.substation.weather.channel(grid, "air_temp")
        oil: FloatArray = ambient + 25.0 + 18.0 * self._loading(grid)
        return oil + 0.05 * jitter(grid, key)

    def winding_temp_c(self, key: int, grid: RequestGrid) -> FloatArray:
        oil = self.oil_temp_c(mix64(key, "oil"), grid)
        winding: FloatArray = oil + 20.0 * self._loading(grid)
        return winding + 0.05 * jitter(grid, key)

    def alarm(self, key: int, grid: RequestGrid) -> IntArray:
        return self.alarm_at(key, grid.samples_us)

    def alarm_at(self, key: int, times_us: IntArray) -> IntArray:
        positions = block_positions(times_us, _ALARM_BLOCK_US)
        weights, ranks = _TRANSFORMER_WEIGHTS, _TRANSFORMER_RANKS
        return held_choice(mix64(self.key, "alarm"), positions, weights, ranks)


def substation(seed: int, weather: Weather) -> list[SignalSpec]:
    """Database 3: busbars, ambient, two transformers, eleven signals per feeder."""
    db = Database(3, seed, "2024-01-01T00:00:00Z")
    site = Substation(weather, db.key("site"))
    for bus, (bus_name, nominal_v) in enumerate(_BUSBARS):
        db.add_rows(9000 + 10 * bus, _busbar_rows(site, bus_name, nominal_v))

    ambient = float_kind(site.ambient_temp_c)
    db.add(9100, Row("Außentemperatur", "mean", "°C", ambient, 2))
    for number in (1, 2):
        transformer = Transformer(site, db.key("transformer", number), 40_000.0)
        db.add_rows(9200 + 10 * number, _transformer_rows(number, transformer))

    for number in range(1, FEEDER_COUNT + 1):
        key = db.key("feeder", number)
        base_a = 80.0 + 240.0 * unit_of(mix64(key, "load"))
        feeder = Feeder(site, key, base_a, 20_000.0)
        db.add_rows(100 * number, _feeder_rows(number, feeder))

    return db.signals


def _busbar_rows(site: Substation, bus_name: str, nominal_v: float) -> list[Row]:
    def volts(key: int, grid: RequestGrid) -> Samples:
        return site.busbar_voltage_v(nominal_v, key, grid)

    name = f"Sammelschiene {bus_name} \N{EN DASH} "
    bounds = (0.8 * nominal_v, 1.2 * nominal_v)
    frequency = float_kind(site.frequency_hz)
    return [
        Row(name + "Frequenz", "mean", "Hz", frequency, 3, (47.5, 52.5)),
        *(
            Row(name + f"Spannung {phase}", "mean", "V", float_kind(volts), 1, bounds)
            for phase in ("L1-L2", "L2-L3", "L3-L1")
        ),
    ]


def _transformer_rows(number: int, transformer: Transformer) -> list[Row]:
    name = f"Trafo T{number}, "
    tap = Kind(DataType.INT, transformer.tap_position)
    alarm = state_kind(transformer.alarm, transformer.alarm_at, TRANSFORMER_ALARMS)
    oil, winding = transformer.oil_temp_c, transformer.winding_temp_c
    return [
        Row(name + "Stufenstellung", "last", None, tap, 0, (1, 17)),
        Row(name + "Öltemperatur", "max", "°C", float_kind(oil), 1),
        Row(name + "Wicklungstemperatur", "max", "°C", float_kind(winding), 1),
        Row(name + "Wirkleistung", "mean", "kW", float_kind(transformer.load_kw), 2),
        Row(name + "Meldung", "" if number == 1 else None, None, alarm),
    ]


def _feeder_rows(number: int, feeder: Feeder) -> list[Row]:
    name = f"Abgang {number:02d} „Ortsnetz {number}“, "

    def phase(skew: float) -> Kind:
        return float_kind(functools.partial(feeder.current_a, skew))

    def operations(key: int, grid: RequestGrid) -> Samples:
        return feeder.operations(int(1000 * unit_of(key)), key, grid)

    def events(key: int, grid: RequestGrid) -> Samples:
        return rare_events(grid, key, 0.002)

    alarm = state_kind(feeder.alarm, feeder.alarm_at, FEEDER_ALARMS)
    breaker = state_kind(feeder.closed, feeder.closed_at)
    energy = counter_kind(feeder.hourly_kw(), feeder.key)
    power, reactive = float_kind(feeder.active_kw), float_kind(feeder.reactive_kvar)
    cos_phi = float_kind(feeder.power_factor)
    return [
        Row(name + "Strom L1", "max", "A", phase(0.02), 2),
        Row(name + "Strom L2", "mean", "A", phase(-0.01), 2),
        Row(name + "Strom L3", "mean", "A", phase(-0.01), 2),
        Row(name + "Wirkleistung", "mean", "kW", power, 2),
        Row(name + "Blindleistung", "mean", "kvar", reactive, 2),
        Row(name + "cos φ", "median", None, cos_phi, 3, (0.0, 1.0)),
        Row(name + "Leistungsschalter ein", None, None, breaker),
        Row(name + "Energiezähler", "last", "kWh", energy, 1, (0.0, None)),
        Row(name + "Erdschlusswischer", "sum", None, Kind(DataType.INT, events)),
        Row(name + "Schaltspiele", "max", None, Kind(DataType.INT, operations)),
        Row(name + "Meldung", "count" if number % 5 == 0 else None, None, alarm),
    ]
