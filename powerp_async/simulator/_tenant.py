"""The tenant: its signals, their metadata, and the points the server answers.

A point is a pure function of (seed, signal, aggregation, clipped window): the signal's
raw samples inside the window, less those before its first data point or inside one of
its offline intervals, aggregated. :meth:`Tenant.points` is that function, exposed so
tests can compare a client's export with what the server must have sent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from ..models import AGGREGATIONS, DataType
from ._aggregate import AVERAGING, NUMERIC_ONLY, ONE_SAMPLE, aggregate, sample_counts
from ._grid import Label, RequestGrid, format_timestamp
from ._hashing import IntArray, hashed_unit, mix64
from ._signals import Model

AnyArray = npt.NDArray[Any]

OUTAGE_BLOCK_US: Final = 10 * 60_000_000
"""Signals with gaps may go offline once per epoch-aligned 10-minute block."""

_OUTAGE_CHANCE: Final = 0.3
_MEAN_DECIMALS: Final = 2
"""Resolution of the mean and median of integer signals."""


@dataclass(frozen=True, slots=True, eq=False)
class SignalSpec:
    """One signal: what ``GET /v1/measurements`` lists, and how its samples are made.

    ``decimals`` is the resolution of a float signal's raw samples. ``gap_key`` seeds
    the signal's offline intervals; ``None`` means the signal never goes offline.
    ``index_is_number`` makes the metadata carry the index as a JSON number.
    """

    database_id: int
    index: str
    name: str
    default_agg: str | None
    unit_symbol: str | None
    model: Model
    first_data_us: int
    decimals: int = 0
    min_value: float | None = None
    max_value: float | None = None
    index_is_number: bool = False
    gap_key: int | None = None

    def __post_init__(self) -> None:
        if not self.index or (self.index_is_number and not self.index.isdigit()):
            raise ValueError(
                f"SignalSpec.index must be a numeric id, got {self.index!r}"
            )

        if self.default_agg not in (None, "") and self.default_agg not in AGGREGATIONS:
            raise ValueError(
                f"SignalSpec.default_agg of {self.index!r} must be a Flux aggregation, "
                f"empty or None, got {self.default_agg!r}"
            )

        if not 0 <= self.decimals <= 6:
            raise ValueError(f"SignalSpec.decimals must be 0 to 6, got {self.decimals}")

        check_aggregation(self, self.default_agg or "last")

    @property
    def data_type(self) -> DataType:
        return self.model.data_type

    def metadata(self) -> dict[str, object]:
        """The signal as ``GET /v1/measurements`` lists it."""
        return {
            "index": int(self.index) if self.index_is_number else self.index,
            "name": self.name,
            "databaseId": self.database_id,
            "defaultAgg": self.default_agg,
            "dataType": self.data_type.value,
            "unitSymbol": self.unit_symbol,
            "firstDataPoint": format_timestamp(self.first_data_us),
            "minValue": self.min_value,
            "maxValue": self.max_value,
        }


def check_aggregation(spec: SignalSpec, aggregation: str) -> None:
    """Raise ``ValueError`` unless ``aggregation`` is a Flux name fit for the signal."""
    if aggregation not in AGGREGATIONS:
        raise ValueError(
            f"unknown aggregation {aggregation!r}: expected one of "
            f"{', '.join(sorted(AGGREGATIONS))}"
        )

    if aggregation in NUMERIC_ONLY and spec.data_type in (
        DataType.BOOL,
        DataType.STRING,
    ):
        allowed = ", ".join(sorted(AGGREGATIONS - NUMERIC_ONLY))
        raise ValueError(
            f"aggregation {aggregation!r} needs numbers, but signal {spec.index!r} of "
            f"database {spec.database_id} is {spec.data_type.value}: "
            f"use one of {allowed}"
        )


@dataclass(frozen=True, slots=True, eq=False)
class Series:
    """The points of one signal in one request: window positions and their values.

    ``values`` holds floats, ints or bools as the API renders them, or ranks in
    ``vocabulary`` for strings.
    """

    windows: IntArray
    values: AnyArray
    vocabulary: tuple[str, ...] = ()

    def python_values(self) -> list[object]:
        if self.vocabulary:
            return [self.vocabulary[rank] for rank in self.values.tolist()]

        return list(self.values.tolist())


class Tenant:
    """The signals of a tenant, looked up by (database, index)."""

    __slots__ = (
        "_by_id",
        "_metadata_json",
        "anchor_us",
        "databases",
        "label",
        "signals",
    )

    def __init__(
        self, signals: Iterable[SignalSpec], *, label: Label, anchor_us: int
    ) -> None:
        self.signals = tuple(signals)
        self.label: Label = label
        self.anchor_us = anchor_us
        self._by_id = {(s.database_id, s.index): s for s in self.signals}
        if len(self._by_id) != len(self.signals):
            raise ValueError("Tenant signals must have distinct (databaseId, index)")

        self.databases = frozenset(spec.database_id for spec in self.signals)

        rows = [spec.metadata() for spec in self.signals]
        self._metadata_json = orjson.dumps(rows)

    def signal(self, database_id: int, index: str) -> SignalSpec:
        """The signal, or ``KeyError`` if the database has no such index."""
        return self._by_id[(database_id, index)]

    def metadata_json(self) -> bytes:
        """The body of ``GET /v1/measurements``, rendered once."""
        return self._metadata_json

    def series(self, spec: SignalSpec, aggregation: str, grid: RequestGrid) -> Series:
        """The points of one signal in a request (``aggregation`` already checked)."""
        # A count is a number whatever the signal's type; only other strings are words.
        vocabulary = () if aggregation == "count" else spec.model.vocabulary
        kept = self._kept_samples(spec, grid)
        if grid.window_count == 0 or (kept is not None and len(kept) == 0):
            return Series(np.empty(0, dtype=np.int64), np.empty(0), vocabulary)

        if kept is None:
            windows = np.arange(grid.window_count, dtype=np.int64)
            first = grid.window_first_sample
            present = len(grid.samples_us)
        else:
            windows, first = _segments(grid.sample_windows()[kept])
            present = len(kept)

        # Sampling a signal is most of the cost of a query, so what reads few
        # samples or none computes no more.
        if aggregation == "count":
            return Series(windows, sample_counts(first, present), vocabulary)
        if aggregation in ONE_SAMPLE and spec.model.sample_at is not None:
            read = _read_sample(aggregation, first, present)
            at = read if kept is None else kept[read]
            raw = _as_integers(spec, spec.model.sample_at(grid.samples_us[at]))
            return Series(windows, _to_api_values(spec, aggregation, raw), vocabulary)

        raw = _as_integers(spec, spec.model.sample(grid))
        if kept is not None:
            raw = raw[kept]
        values = _to_api_values(spec, aggregation, aggregate(raw, first, aggregation))
        return Series(windows, values, vocabulary)

    def points(
        self,
        database_id: int,
        index: str,
        aggregation: str,
        start_us: int,
        end_us: int,
        window_us: int,
    ) -> list[tuple[int, object]]:
        """The (timestamp label, value) pairs the server answers for one signal.

        Raises ``KeyError`` for an unknown signal and ``ValueError`` for an aggregation
        the signal does not support or an empty range; the span is not limited here.
        """
        spec = self.signal(database_id, index)
        check_aggregation(spec, aggregation)
        grid = RequestGrid(start_us, end_us, window_us, self.label)
        series = self.series(spec, aggregation, grid)
        labels = grid.labels_us[series.windows].tolist()
        return list(zip(labels, series.python_values(), strict=True))

    def offline_intervals(
        self, database_id: int, index: str, start_us: int, end_us: int
    ) -> list[tuple[int, int]]:
        """The half-open intervals in which the signal has no samples (gaps only)."""
        spec = self.signal(database_id, index)
        if spec.gap_key is None:
            return []

        starts, stops = _outages(spec.gap_key, start_us, end_us)
        pairs = zip(starts.tolist(), stops.tolist(), strict=True)
        return [(a, b) for a, b in pairs if a < b and a < end_us and b > start_us]

    def _kept_samples(self, spec: SignalSpec, grid: RequestGrid) -> IntArray | None:
        """Indexes of the samples the signal has, or ``None`` when it has them all."""
        samples = grid.samples_us
        if len(samples) == 0:
            return None

        present = (
            samples >= spec.first_data_us if spec.first_data_us > samples[0] else None
        )
        if spec.gap_key is not None:
            online = ~_offline_mask(spec.gap_key, samples)
            present = online if present is None else present & online

        return None if present is None else np.flatnonzero(present)


def _read_sample(aggregation: str, first: IntArray, present: int) -> IntArray:
    """Which of the ``present`` samples each window's ``first`` or ``last`` is."""
    if aggregation == "first":
        return first
    return first + sample_counts(first, present) - 1


def _segments(sample_windows: IntArray) -> tuple[IntArray, IntArray]:
    """Window positions and first-sample offsets of the windows that kept samples."""
    changes = np.flatnonzero(sample_windows[1:] != sample_windows[:-1]) + 1
    first = np.concatenate((np.zeros(1, dtype=np.int64), changes))
    return sample_windows[first], first


def _outages(gap_key: int, start_us: int, end_us: int) -> tuple[IntArray, IntArray]:
    """Per 10-minute block touching the range: outage start and stop (equal if none)."""
    blocks = np.arange(start_us // OUTAGE_BLOCK_US, (end_us - 1) // OUTAGE_BLOCK_US + 1)
    happens = hashed_unit(mix64(gap_key, "chance"), blocks) < _OUTAGE_CHANCE
    offset_s = (hashed_unit(mix64(gap_key, "offset"), blocks) * 540).astype(np.int64)
    length_s = 5 + (hashed_unit(mix64(gap_key, "length"), blocks) * 355).astype(
        np.int64
    )
    starts = blocks * OUTAGE_BLOCK_US + offset_s * 1_000_000
    stops = np.minimum(starts + length_s * 1_000_000, (blocks + 1) * OUTAGE_BLOCK_US)
    return starts, np.where(happens, stops, starts)


def _offline_mask(gap_key: int, samples_us: IntArray) -> npt.NDArray[np.bool_]:
    starts, stops = _outages(gap_key, int(samples_us[0]), int(samples_us[-1]) + 1)
    block = samples_us // OUTAGE_BLOCK_US - samples_us[0] // OUTAGE_BLOCK_US
    offline: npt.NDArray[np.bool_] = samples_us >= starts[block]
    offline &= samples_us < stops[block]
    return offline


def _as_integers(spec: SignalSpec, raw: AnyArray) -> IntArray:
    """Quantise float samples to their resolution; everything else is already whole."""
    if spec.data_type is DataType.FLOAT:
        return np.rint(raw * 10.0**spec.decimals).astype(np.int64)

    return raw.astype(np.int64)


def _to_api_values(spec: SignalSpec, aggregation: str, result: AnyArray) -> AnyArray:
    """Turn integer-domain results into what the API renders for the signal's type."""
    if aggregation == "count":
        return result

    data_type = spec.data_type
    if data_type is DataType.FLOAT:
        scale = 10.0**spec.decimals
        whole = np.rint(result) if aggregation in AVERAGING else result
        return whole / scale

    if data_type is DataType.INT and aggregation in AVERAGING:
        scale = 10.0**_MEAN_DECIMALS
        return np.rint(result * scale) / scale

    if data_type is DataType.BOOL:
        flags: npt.NDArray[np.bool_] = result != 0
        return flags

    return result
