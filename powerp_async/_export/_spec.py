"""What an export covers: its range, its signals, its format and where it goes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from .._time import (
    format_duration,
    format_wire,
    from_epoch_us,
    parse_duration_us,
    parse_wire,
)
from ..client import PowerPClient
from ..errors import ConfigurationError
from ..models import Measurement
from ..planning import TimeRange
from ._formats import FORMATS, Format
from ._manifest import read_manifest

DEFAULT_ROWS_PER_FLUSH: Final = 1_000_000


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What to export and where.

    ``databases`` and ``indexes`` narrow the tenant (empty: everything). The range is
    snapped to whole windows, as for :meth:`PowerPClient.fetch`.
    """

    out: Path
    start: datetime
    end: datetime
    window: str = "1s"
    format: Format = "parquet"
    databases: tuple[int, ...] = ()
    indexes: tuple[str, ...] = ()
    block_size: int | None = None
    rows_per_flush: int = DEFAULT_ROWS_PER_FLUSH

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ConfigurationError(
                f"format: expected one of {', '.join(FORMATS)}, got {self.format!r}"
            )
        try:
            window_us = parse_duration_us(self.window)
        except ValueError as error:
            raise ConfigurationError(f"window: {error}") from None
        TimeRange.snap(self.start, self.end, window_us)
        if self.rows_per_flush < 1:
            raise ConfigurationError("rows_per_flush: expected at least 1")

    def plan_parameters(self, block_size: int) -> dict[str, Any]:
        span = self.time_range()
        return {
            "start": format_wire(span.start_us),
            "end": format_wire(span.end_us),
            "window": format_duration(span.window_us),
            "format": self.format,
            "block_size": block_size,
            "databases": sorted(self.databases),
            "indexes": sorted(self.indexes),
        }

    @classmethod
    def recorded(cls, out: Path) -> ExportSpec:
        """The spec an existing export folder was made with, read from its journal."""
        parameters = read_manifest(out).header["parameters"]
        return cls(
            out=out,
            start=from_epoch_us(parse_wire(parameters["start"])),
            end=from_epoch_us(parse_wire(parameters["end"])),
            window=parameters["window"],
            format=parameters["format"],
            databases=tuple(parameters["databases"]),
            indexes=tuple(parameters["indexes"]),
            block_size=parameters["block_size"],
        )

    def time_range(self) -> TimeRange:
        return TimeRange.snap(self.start, self.end, parse_duration_us(self.window))


async def select_signals(client: PowerPClient, spec: ExportSpec) -> list[Measurement]:
    """The signals an export covers: the listing, narrowed by its selection."""
    signals = await client.measurements()
    if spec.databases:
        signals = [m for m in signals if m.database_id in spec.databases]
    if spec.indexes:
        signals = [m for m in signals if m.index in spec.indexes]
    if not signals:
        raise ConfigurationError(
            "no signal matches the selection (check --database and --index)"
        )
    return signals
