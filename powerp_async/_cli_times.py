"""Times on the command line: ``--start``, ``--end`` and ``--since``, with ``--tz``.

Times with an offset (or ``Z``) are taken as they are. Times without one are UTC, as
in the reference notebook, unless ``--tz`` names an IANA zone: they are then read as
that zone's wall clock, and a wall time that a clock change skips or repeats is
refused rather than guessed.
"""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ._time import from_epoch_us, parse_duration_us, parse_wire
from .errors import ConfigurationError


def time_range(options: argparse.Namespace) -> tuple[datetime, datetime]:
    zone = _zone(options.tz)
    end = _parse_time(options.end, "--end", zone) if options.end else datetime.now(UTC)
    if options.start:
        if options.since:
            raise ConfigurationError("give either --since or --start, not both")
        return _parse_time(options.start, "--start", zone), end
    since = options.since or options.default_since
    try:
        return end - timedelta(microseconds=parse_duration_us(since)), end
    except ValueError as error:
        raise ConfigurationError(f"--since: {error}") from None
    except OverflowError:
        raise ConfigurationError(
            f"--since: {since!r} reaches before the year 1; give a shorter duration"
        ) from None


def check_zone(name: str | None) -> None:
    """Refuse a ``--tz`` that names no zone, even where no time is read in it (a
    resume without --start): a mistyped option is told, not ignored."""
    _zone(name)


def _zone(name: str | None) -> tzinfo:
    if name is None:
        return UTC

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigurationError(
            f"--tz: expected an IANA time zone such as Europe/Berlin, got {name!r}"
        ) from None


def _parse_time(text: str, flag: str, zone: tzinfo) -> datetime:
    """A time from the command line; without an offset, a wall time in ``zone``."""
    try:
        moment = from_epoch_us(parse_wire(text))
    except ValueError as error:
        raise ConfigurationError(f"{flag}: {error}") from None

    if zone is UTC or _OFFSET.search(text.strip()):
        return moment

    return _wall_time(moment.replace(tzinfo=None), zone, flag)


_OFFSET: Final = re.compile(r"[T ]\d\d.*([Zz]|[+-]\d\d(:?\d\d){0,2}(\.\d+)?)$")
"""A time of day followed by ``Z`` or a numeric offset."""


def _wall_time(naive: datetime, zone: tzinfo, flag: str) -> datetime:
    """``naive`` as read on a clock in ``zone``, if it names exactly one instant."""
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    shown = f"{naive.isoformat()} in {zone}"
    if first.utcoffset() != second.utcoffset():
        round_trip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        offsets = " or ".join(_offset(m) for m in (first, second))
        if round_trip != naive:
            # Either offset names an instant: the clock read it an hour before or
            # after the jump, and only the user knows which was meant.
            raise ConfigurationError(
                f"{flag}: expected a time that exists, got {shown}, skipped when "
                f"the clocks went forward; add an offset ({offsets}) or give "
                "another time"
            )
        raise ConfigurationError(
            f"{flag}: expected a time that happened once, got {shown}, which "
            f"happened twice as the clocks went back; add the offset ({offsets})"
        )
    return first


def _offset(moment: datetime) -> str:
    return moment.isoformat()[-6:]
