"""What an export covers: its range, its signals, its format, where it goes and where
its data comes from.

A spec checks everything it can on construction, so an export that cannot run is
refused before a request is sent or a file is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

import orjson

from .._arguments import as_databases, as_indexes, as_moment
from .._redact import excerpt
from .._time import (
    format_duration,
    format_wire,
    from_epoch_us,
    parse_duration_us,
    parse_wire,
)
from .._words import plural
from ..client import PowerPClient
from ..errors import ConfigurationError
from ..models import MAX_SIGNALS_PER_QUERY, Measurement
from ..planning import TimeRange, max_slice_us
from ._formats import FORMATS, Format
from ._listing import list_through_outage
from ._manifest import read_manifest

DEFAULT_ROWS_PER_FLUSH: Final = 500_000

PARAMETERS_ADDED_LATER: Final[Mapping[str, Any]] = MappingProxyType(
    {"neutralise_formulas": False}
)
"""Plan parameters older journals lack, with the value they stood for then."""


@dataclass(frozen=True, slots=True)
class ExportSpec:
    """What to export and where.

    ``databases`` and ``indexes`` narrow the tenant (empty: everything); each value
    must match a signal listed (an index, in the databases asked for), or the export
    is refused before anything is fetched, naming the values that match none. The
    range is snapped to whole windows, as for :meth:`PowerPClient.fetch`.

    ``source`` names where the data comes from; by default it is the client's base URL
    with any credentials masked. The journal records it, and a resume refuses to mix in
    data from another source. Name it when the URL is not a stable identity, as for a
    simulator on a random port. ``source_details`` (JSON values) are recorded beside
    it, to be read back with :func:`recorded_source`, and are not compared.

    ``neutralise_formulas`` (CSV only) makes the files safe to open in a spreadsheet:
    a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return
    gets a leading ``'``. Numbers are never touched. Off by default, since it changes
    the text values; the journal records it, so a resume writes the same way.

    Example::

        spec = ExportSpec(
            out=Path("week-export"),
            start=datetime(2026, 11, 27, tzinfo=UTC),
            end=datetime(2026, 12, 4, tzinfo=UTC),
            window="1m",
            databases=(1,),
            format="csv",
        )
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
    source: str | None = None
    source_details: Mapping[str, Any] = field(default_factory=dict, hash=False)
    neutralise_formulas: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "out", _as_path(self.out))
        object.__setattr__(self, "databases", as_databases(self.databases))
        object.__setattr__(self, "indexes", as_indexes(self.indexes))
        _check_types(self)
        _check_format(self.format)
        if self.neutralise_formulas and self.format != "csv":
            raise ConfigurationError(
                "neutralise_formulas: applies to CSV only, but the format is "
                f"{self.format!r}"
            )

        TimeRange.snap(self.start, self.end, _window_us(self.window))
        _check_block_size(self.block_size)
        if self.rows_per_flush < 1:
            raise ConfigurationError(
                f"rows_per_flush: expected at least 1, got {self.rows_per_flush}"
            )

        if self.source is not None and not self.source.strip():
            raise ConfigurationError(
                "source: expected a description of where the data comes from, got "
                f"{self.source!r}"
            )

        # A read-only copy of exactly what the journal will hold.
        details = MappingProxyType(_as_json(self.source_details))
        object.__setattr__(self, "source_details", details)

    def __reduce__(self) -> tuple[object, ...]:
        # The read-only view of the details cannot be pickled, and a spec goes to
        # other processes (a process pool, Dask) and through copy.deepcopy: it is
        # made again from its fields, the details as a plain dict.
        fields = {name: getattr(self, name) for name in self.__dataclass_fields__}
        fields["source_details"] = dict(self.source_details)
        return (_spec_from_fields, (fields,))

    def plan_parameters(self, block_size: int) -> dict[str, Any]:
        span = self.time_range()
        return {
            "start": format_wire(span.start_us),
            "end": format_wire(span.end_us),
            "window": format_duration(span.window_us),
            "format": self.format,
            "block_size": block_size,
            # A set: repeating a database or an index selects nothing more.
            "databases": sorted(set(self.databases)),
            "indexes": sorted(set(self.indexes)),
            "neutralise_formulas": self.neutralise_formulas,
        }

    @classmethod
    def recorded(cls, out: Path) -> ExportSpec:
        """The spec an existing export folder was made with, read from its journal.

        Its ``source`` is left unset on purpose: a resume then compares the recorded
        source with where the client reads now. See :func:`recorded_source`.
        """
        parameters = read_manifest(out).header["parameters"]
        try:
            return cls(
                out=out,
                start=from_epoch_us(parse_wire(parameters["start"])),
                end=from_epoch_us(parse_wire(parameters["end"])),
                window=parameters["window"],
                format=parameters["format"],
                databases=tuple(parameters["databases"]),
                indexes=tuple(parameters["indexes"]),
                block_size=parameters["block_size"],
                neutralise_formulas=parameters.get(
                    "neutralise_formulas",
                    PARAMETERS_ADDED_LATER["neutralise_formulas"],
                ),
            )
        except (KeyError, TypeError, ValueError) as error:
            # ConfigurationError is a ValueError: a recorded value the checks refuse.
            reason = f"no {error}" if isinstance(error, KeyError) else str(error)
            raise ConfigurationError(
                f"the journal of {out} records parameters that cannot be read "
                f"({reason}): it was damaged or edited outside the export, so the "
                "folder cannot be resumed"
            ) from None

    def time_range(self) -> TimeRange:
        return TimeRange.snap(self.start, self.end, parse_duration_us(self.window))


def _spec_from_fields(fields: dict[str, Any]) -> ExportSpec:
    return ExportSpec(**fields)


def check_call(client: object, spec: object, executor: object = None) -> None:
    """Refuse, naming the argument, a client, spec or executor of the wrong type,
    which would fail deep inside with an error about something else, or after the
    export's folder was made."""
    if executor is not None and not callable(getattr(executor, "run", None)):
        raise ConfigurationError(
            "executor: expected an executor, such as DaskExecutor(...), or None for "
            f"this process, got {type(executor).__name__}"
        )
    if not isinstance(client, PowerPClient):
        raise ConfigurationError(
            f"client: expected a PowerPClient, got {type(client).__name__}"
        )
    if not isinstance(spec, ExportSpec):
        raise ConfigurationError(
            "spec: expected an ExportSpec, such as ExportSpec(out=..., start=..., "
            f"end=...), got {type(spec).__name__}"
        )


def _as_path(out: object) -> Path:
    if isinstance(out, str | os.PathLike) and str(out).strip():
        return Path(out)

    raise ConfigurationError(f"out: expected a folder path, got {out!r:.60}")


def _check_types(spec: ExportSpec) -> None:
    """The fields that the checks after this one compare or parse."""
    for name in ("start", "end"):
        as_moment(name, getattr(spec, name))

    for name in ("window", "format"):
        if not isinstance(getattr(spec, name), str):
            raise ConfigurationError(
                f"{name}: expected a text, got {getattr(spec, name)!r:.60}"
            )

    for name in ("block_size", "rows_per_flush"):
        value = getattr(spec, name)
        whole = isinstance(value, int) and not isinstance(value, bool)
        optional = name == "block_size"
        if not whole and not (optional and value is None):
            raise ConfigurationError(f"{name}: expected an integer, got {value!r:.60}")

    if spec.source is not None and not isinstance(spec.source, str):
        raise ConfigurationError(
            f"source: expected a text or None, got {spec.source!r:.60}"
        )
    if not isinstance(spec.neutralise_formulas, bool):
        raise ConfigurationError(
            "neutralise_formulas: expected True or False, got "
            f"{spec.neutralise_formulas!r:.60}"
        )


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise ConfigurationError(
            f"format: expected one of {', '.join(FORMATS)}, got {fmt!r}"
        )


def _window_us(window: str) -> int:
    """The window in microseconds, if a query of one window stays under 30 minutes."""
    try:
        window_us = parse_duration_us(window)
    except ValueError as error:
        raise ConfigurationError(f"window: {error}") from None

    try:
        max_slice_us(window_us)
    except ConfigurationError as error:
        raise ConfigurationError(
            f"window: {str(error).removeprefix('window ')}"
        ) from None
    return window_us


def _check_block_size(block_size: int | None) -> None:
    if block_size is not None and not 1 <= block_size <= MAX_SIGNALS_PER_QUERY:
        raise ConfigurationError(
            f"block_size: expected 1 to {MAX_SIGNALS_PER_QUERY} signals per query, "
            f"got {block_size}"
        )


def _as_json(details: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of ``details`` as JSON gives it back, or a ConfigurationError."""
    try:
        copied: dict[str, Any] = orjson.loads(orjson.dumps(dict(details)))
    except (TypeError, ValueError) as error:
        raise ConfigurationError(
            f"source_details: expected string keys and JSON values, got {error}"
        ) from None

    return copied


@dataclass(frozen=True, slots=True)
class RecordedSource:
    """Where an export folder's data came from, as its journal recorded it."""

    source: str
    details: Mapping[str, Any]


def recorded_source(out: Path) -> RecordedSource:
    """The source an existing export folder was made from, read from its journal.

    A caller that names its source (a demo simulator, say) can read the details back
    to set up the same source again before resuming.
    """
    header = read_manifest(out).header
    details = header.get("source_details") or {}
    return RecordedSource(header["source"], MappingProxyType(details))


async def select_signals(client: PowerPClient, spec: ExportSpec) -> list[Measurement]:
    """The signals an export covers: the listing, narrowed by its selection."""
    listed = await list_through_outage(client)
    signals = listed
    if spec.databases:
        signals = [m for m in signals if m.database_id in spec.databases]
    if spec.indexes:
        signals = [m for m in signals if m.index in spec.indexes]
    if not signals:
        raise ConfigurationError(_nothing_selected(spec, listed))

    unmatched = _unmatched(spec, listed)
    if unmatched:
        raise ConfigurationError(_some_unmatched(unmatched, listed))
    return signals


def _unmatched(spec: ExportSpec, listed: list[Measurement]) -> list[str]:
    """The databases and indexes asked for that match no signal listed, an index
    counting only in the databases asked for: a typo is told, never a partial
    dataset exported without a word."""
    asked = spec.databases
    in_databases = [m for m in listed if not asked or m.database_id in asked]
    databases = sorted(set(spec.databases) - {m.database_id for m in listed})
    indexes = sorted(set(spec.indexes) - {m.index for m in in_databases})
    unmatched = []
    if databases:
        unmatched.append(_named("database", map(str, databases)))
    if indexes:
        unmatched.append(_named("index", map(repr, indexes), "indexes"))
    return unmatched


def _named(noun: str, values: Iterable[str], nouns: str | None = None) -> str:
    shown = list(values)
    word = noun if len(shown) == 1 else nouns or f"{noun}s"
    return f"{word} {', '.join(shown)}"


def _some_unmatched(unmatched: list[str], listed: list[Measurement]) -> str:
    databases = _named("database", map(str, sorted({m.database_id for m in listed})))
    return excerpt(
        "expected every database and index asked for to match a signal, but none "
        f"of the {plural(len(listed), 'signal')} listed (in {databases}) matches "
        f"{' or '.join(unmatched)}; nothing was fetched: check the databases and "
        "indexes asked for (--database and --index)",
        400,
    )


def _nothing_selected(spec: ExportSpec, listed: list[Measurement]) -> str:
    asked = []
    if spec.databases:
        asked.append("database " + ", ".join(map(str, sorted(spec.databases))))
    if spec.indexes:
        asked.append("index " + ", ".join(sorted(spec.indexes)))
    databases = ", ".join(map(str, sorted({m.database_id for m in listed}))) or "none"
    return excerpt(
        f"expected signals of {' and '.join(asked) or 'any database'}, but none of "
        f"the signals listed matches ({len(listed):,} in databases {databases}); "
        "check the databases and indexes asked for (--database and --index)",
        400,
    )
