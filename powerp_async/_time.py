"""Times, durations and the window grid, shared by the client and the simulator.

The API takes ISO-8601 UTC times with a ``Z`` suffix and Flux-style durations such as
``200ms`` or ``7s``. Aggregation windows are aligned to the Unix epoch in multiples of
the window period, so every request boundary must lie on that grid: a boundary inside a
window would make the server aggregate that window twice, from two halves.

All arithmetic here is done in integer microseconds since the epoch, which is exact for
every duration the API accepts and avoids float rounding at grid boundaries.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final

US_PER_SECOND: Final = 1_000_000
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_UNIT_US: Final[dict[str, int]] = {
    "us": 1,
    "ms": 1_000,
    "s": US_PER_SECOND,
    "m": 60 * US_PER_SECOND,
    "h": 3_600 * US_PER_SECOND,
    "d": 86_400 * US_PER_SECOND,
    "w": 7 * 86_400 * US_PER_SECOND,
}
_DURATION_PART: Final = re.compile(r"(\d+)(us|ms|s|m|h|d|w)")
_DURATION: Final = re.compile(r"(?:\d+(?:us|ms|s|m|h|d|w))+")


def parse_duration_us(text: str) -> int:
    """Parse a Flux duration such as ``200ms``, ``7s`` or ``1h30m`` into microseconds.

    >>> parse_duration_us("1m30s")
    90000000
    """
    if not isinstance(text, str) or not _DURATION.fullmatch(text.strip()):
        raise ValueError(
            f"invalid duration {text!r}: expected a number with a unit "
            "(us, ms, s, m, h, d, w), such as '200ms', '1s' or '1h30m'"
        )
    total = sum(
        int(amount) * _UNIT_US[unit]
        for amount, unit in _DURATION_PART.findall(text.strip())
    )
    if total <= 0:
        raise ValueError(f"invalid duration {text!r}: it must be longer than zero")
    return total


def format_duration(us: int) -> str:
    """Microseconds as the shortest exact Flux duration (``90000000`` -> ``90s``)."""
    for unit in ("d", "h", "m", "s", "ms"):
        if us % _UNIT_US[unit] == 0:
            return f"{us // _UNIT_US[unit]}{unit}"
    return f"{us}us"


def to_utc(moment: datetime) -> datetime:
    """Return an aware UTC datetime; naive input is taken as UTC, as in the notebook."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def to_epoch_us(moment: datetime) -> int:
    """Microseconds since the Unix epoch, exactly (no float on the way)."""
    delta = to_utc(moment) - EPOCH
    return (delta.days * 86_400 + delta.seconds) * US_PER_SECOND + delta.microseconds


def from_epoch_us(us: int) -> datetime:
    """The aware UTC datetime for a count of microseconds since the epoch."""
    return EPOCH + timedelta(microseconds=us)


def format_wire(us: int) -> str:
    """The API's time format: ``2026-12-04T10:00:00Z``, with microseconds if any.

    Never ``+00:00Z``: the offset is replaced by ``Z``, not followed by it.
    """
    moment = from_epoch_us(us)
    text = moment.replace(tzinfo=None).isoformat()
    return text + "Z"


def parse_wire(text: str) -> int:
    """Parse an ISO-8601 time into epoch microseconds.

    Accepts a ``Z`` or numeric offset, and up to nine fractional digits (digits past
    the microsecond are truncated). A time without an offset is taken as UTC.
    """
    us, _ = parse_wire_zoned(text)
    return us


def parse_wire_zoned(text: str) -> tuple[int, bool]:
    """``parse_wire``, and whether the text gave its offset (or ``Z``)."""
    stripped = text.strip()
    match = _FRACTION.search(stripped)
    if match and len(match.group(1)) > 6:
        stripped = stripped[: match.start(1) + 6] + stripped[match.end(1) :]
    if stripped.endswith(("Z", "z")):
        stripped = stripped[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(stripped)
    except ValueError:
        raise ValueError(
            f"invalid time {text[:40]!r}: expected ISO-8601 such as "
            "'2026-12-04T10:00:00Z'"
        ) from None
    return to_epoch_us(moment), moment.tzinfo is not None


_FRACTION: Final = re.compile(r"T\d\d:\d\d:\d\d\.(\d+)")


def floor_to_grid(us: int, period_us: int) -> int:
    """The window boundary at or before ``us`` (the grid starts at the epoch)."""
    return us - us % period_us


def ceil_to_grid(us: int, period_us: int) -> int:
    """The window boundary at or after ``us``."""
    return -floor_to_grid(-us, period_us)
