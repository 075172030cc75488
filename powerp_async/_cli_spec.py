"""The export a command line asks for, or the one ``--resume`` continues.

A resume takes its parameters from the journal; options typed with ``--resume`` are
compared with what it recorded, and only those, so a default (the range's end being
now, say) never makes a resume look different from the export it continues.
"""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from ._cli_times import check_zone, time_range
from ._export import ExportSpec, Format
from .config import DEFAULT_BLOCK_SIZE
from .errors import ConfigurationError


def export_spec(options: argparse.Namespace) -> ExportSpec:
    """The export asked for; on --resume, the one recorded in --out."""
    if options.resume:
        return _resumed_spec(options)

    start, end = time_range(options)
    return ExportSpec(
        out=options.out,
        start=start,
        end=end,
        window=options.window or "1s",
        format=_export_format(options),
        databases=tuple(options.databases),
        indexes=tuple(options.indexes),
        block_size=options.block_size,
        rows_per_flush=options.flush_points,
        neutralise_formulas=options.csv_for_spreadsheets,
    )


def _resumed_spec(options: argparse.Namespace) -> ExportSpec:
    """The recorded export, if every parameter the user gave agrees with it.

    Only what was typed is compared: a default (the range's end is now, say) would
    never match a journal written earlier, and the user did not ask for it.
    """
    recorded = ExportSpec.recorded(options.out)
    if options.csv_for_spreadsheets and not recorded.neutralise_formulas:
        raise ConfigurationError(
            f"cannot resume into {options.out} with --csv-for-spreadsheets: its "
            "files so far were written exactly; resume without the flag"
        )

    check_zone(options.tz)
    given = _given_parameters(options)
    _check_range(options, recorded, given)
    try:
        asked = dataclasses.replace(recorded, **given)
    except ConfigurationError as error:
        flags = list(_given_flags(options))
        raise ConfigurationError(
            f"cannot resume into {options.out} with {' and '.join(flags)}: {error}; "
            f"resume without {_it_or_them(flags)}, or export into a new folder"
        ) from None

    before, after = (
        spec.plan_parameters(spec.block_size or DEFAULT_BLOCK_SIZE)
        for spec in (recorded, asked)
    )
    wrong = {
        flag: key
        for flag, key in _given_flags(options).items()
        if before[key] != after[key]
    }
    if wrong:
        raise ConfigurationError(_mismatch(options.out, wrong, before, after))

    return dataclasses.replace(recorded, rows_per_flush=options.flush_points)


def _check_range(
    options: argparse.Namespace, recorded: ExportSpec, given: dict[str, Any]
) -> None:
    """Refuse a start or end typed with --resume that leaves the recorded export's
    range empty (--since 10m against an export that ended hours ago, say), naming
    where each end of that range came from."""
    if "start" not in given and "end" not in given:
        return

    start, end = given.get("start", recorded.start), given.get("end", recorded.end)
    if end > start:
        return

    flags = [f for f, key in _given_flags(options).items() if key in ("start", "end")]
    origin = {key: "given" if key in given else "recorded" for key in ("start", "end")}
    raise ConfigurationError(
        f"cannot resume into {options.out} with {' and '.join(flags)}: the range "
        f"would run from {_shown(start)} ({origin['start']}) to {_shown(end)} "
        f"({origin['end']}), which is empty; resume without {_it_or_them(flags)}, "
        "or export into a new folder"
    )


def _it_or_them(flags: list[str]) -> str:
    return "it" if len(flags) == 1 else "them"


def _given_parameters(options: argparse.Namespace) -> dict[str, Any]:
    """The ExportSpec fields the command line sets explicitly, and their values."""
    given: dict[str, Any] = {}
    if options.window:
        given["window"] = options.window
    if options.format or options.csv_for_spreadsheets:
        given["format"] = _export_format(options)
        if given["format"] != "csv":
            given["neutralise_formulas"] = False
    if options.databases:
        given["databases"] = tuple(options.databases)
    if options.indexes:
        given["indexes"] = tuple(options.indexes)
    if options.block_size is not None:
        given["block_size"] = options.block_size
    if options.start or options.since or options.end:
        start, end = time_range(options)
        if options.start or options.since:
            given["start"] = start
        if options.end:
            given["end"] = end
    return given


_PARAMETER_OF_FLAG: Final = {
    "since": ("--since", "start"),
    "start": ("--start", "start"),
    "end": ("--end", "end"),
    "window": ("--window", "window"),
    "format": ("--format", "format"),
    "databases": ("--database", "databases"),
    "indexes": ("--index", "indexes"),
    "block_size": ("--block-size", "block_size"),
}
"""The options a resume compares, by ``dest``: the flag and the plan key it sets."""


def _given_flags(options: argparse.Namespace) -> dict[str, str]:
    """The flags given on the command line that set a plan key, with that key."""
    return {
        flag: key
        for dest, (flag, key) in _PARAMETER_OF_FLAG.items()
        if getattr(options, dest) not in (None, [])
    }


def _mismatch(
    out: Path, wrong: dict[str, str], before: dict[str, Any], after: dict[str, Any]
) -> str:
    details = "; ".join(
        f"{flag}: recorded {_shown(before[key])}, given {_shown(after[key])}"
        for flag, key in wrong.items()
    )
    return (
        f"cannot resume into {out}: it was made with other parameters ({details}); "
        f"resume without {' and '.join(wrong)}, or export into a new folder"
    )


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(map(str, value)) or "all"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


def _export_format(options: argparse.Namespace) -> Format:
    """The format asked for; --csv-for-spreadsheets alone means CSV."""
    if not options.csv_for_spreadsheets:
        return options.format or "parquet"

    if options.format not in (None, "csv"):
        raise ConfigurationError(
            "--csv-for-spreadsheets: expected --format csv or no --format, got "
            f"--format {options.format}"
        )
    return "csv"
