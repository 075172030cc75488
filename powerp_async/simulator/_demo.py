"""The demo tenant: a PV plant, a wind farm and a substation, 1,016 signals in all.

Database 1 replays the Greensboro weather as a met station and a PV plant; its first
two indexes, ``"1"`` and ``"2"``, are float signals with a numeric default aggregation,
which the reference notebook relies on. Database 2 is a wind farm on the same weather
and carries its indexes as JSON numbers. Database 3 is a substation, mostly synthetic.

Everything is derived from the seed: ratings, offsets, which signals have gaps and
which started recently. Names carry commas, quotes and non-ASCII letters on purpose,
as real tenants do, so exports and CSV writers are exercised.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Final

from ._hashing import mix64
from ._settings import SimulatorSettings
from ._solar import MET_STATION_SIZE, solar_park
from ._substation import substation
from ._tenant import SignalSpec, Tenant
from ._weather import US_PER_HOUR, Weather, load_profile
from ._wind import wind_farm

GAP_SHARE: Final = 0.10
"""Share of signals (outside the met station) that go offline now and then."""

LATE_SHARE: Final = 0.05
"""Share of signals whose data starts a few 20-minute steps before the anchor."""

LATE_STEP_US: Final = 20 * 60_000_000


def demo_tenant(settings: SimulatorSettings | None = None) -> Tenant:
    """Build the demo tenant for the settings' seed, label and anchor."""
    settings = settings or SimulatorSettings()
    anchor_us = settings.anchor_us
    if anchor_us is None:
        now_us = time.time_ns() // 1_000
        anchor_us = now_us - now_us % US_PER_HOUR

    weather = Weather(load_profile(), mix64(settings.seed, "weather"))
    databases = [
        *solar_park(settings.seed, weather),
        *wind_farm(settings.seed, weather),
        *substation(settings.seed, weather),
    ]
    signals = _copied(databases, settings.copies)
    signals = _with_irregularities(signals, settings.seed, anchor_us)
    return Tenant(signals, label=settings.label, anchor_us=anchor_us)


def _copied(signals: list[SignalSpec], copies: int) -> list[SignalSpec]:
    """The signals, then ``copies - 1`` more of them under databases of their own.

    A copy's samples equal the original's, which keeps a large tenant as cheap to
    build as the small one; its gaps and late starts are its own (drawn afterwards).
    """
    offset = max(signal.database_id for signal in signals)
    return [
        dataclasses.replace(signal, database_id=signal.database_id + copy * offset)
        for copy in range(copies)
        for signal in signals
    ]


def _with_irregularities(
    signals: list[SignalSpec], seed: int, anchor_us: int
) -> list[SignalSpec]:
    """Give a seeded few signals gaps, and a few others a recent first data point.

    The met station is spared, so the signals the reference notebook reads by index
    always have data.
    """
    eligible = range(MET_STATION_SIZE, len(signals))

    def ranked(purpose: str) -> list[int]:
        def rank(i: int) -> int:
            return mix64(seed, purpose, signals[i].database_id, signals[i].index)

        return sorted(eligible, key=rank)

    gappy = ranked("gaps")[: round(GAP_SHARE * len(signals))]
    late = ranked("late")[: round(LATE_SHARE * len(signals))]
    changed = list(signals)
    for i in gappy:
        gap_key = mix64(seed, "gap-key", signals[i].database_id, signals[i].index)
        changed[i] = dataclasses.replace(changed[i], gap_key=gap_key)

    for i in late:
        steps = 1 + mix64(seed, "late-steps", i) % 6
        changed[i] = dataclasses.replace(
            changed[i], first_data_us=anchor_us - steps * LATE_STEP_US
        )

    return changed
