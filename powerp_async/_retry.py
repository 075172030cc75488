"""When to try again: ``Retry-After`` parsing and full-jitter exponential backoff."""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

from .errors import ServerUnavailableError

MAX_RETRY_AFTER_S: Final = 300.0
"""Longer waits are capped: the run goes on and the wait is logged as such."""

BACKOFF_BASE_S: Final = 0.5
BACKOFF_CAP_S: Final = 30.0


def parse_retry_after(
    headers: Mapping[str, str], *, now: datetime | None = None
) -> float | None:
    """Seconds to wait according to ``Retry-After`` (RFC 9110 section 10.2.3).

    Accepts whole or fractional seconds and HTTP dates. An HTTP date is measured
    against the response's own ``Date`` header when there is one, so a skewed local
    clock cannot turn it into a long sleep or none at all. Returns ``None`` for a
    missing, negative, non-finite or unparseable value, so the caller falls back to its
    own backoff instead of looping tightly; caps absurdly long values.
    """
    raw = headers.get("Retry-After")
    if raw is None:
        return None

    seconds = _as_seconds(raw.strip())
    if seconds is None:
        seconds = _until_date(raw, headers.get("Date"), now)
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_S)


def _as_seconds(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _until_date(
    raw: str, date_header: str | None, now: datetime | None
) -> float | None:
    target = _http_date(raw)
    if target is None:
        return None

    reference = _http_date(date_header) if date_header else None
    if reference is None:
        reference = now or datetime.now(UTC)
    return (target - reference).total_seconds()


def _http_date(text: str) -> datetime | None:
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def backoff_s(
    attempt: int,
    *,
    base_s: float = BACKOFF_BASE_S,
    cap_s: float = BACKOFF_CAP_S,
    rng: random.Random | None = None,
) -> float:
    """Full jitter: uniform in ``[0, min(cap, base * 2**attempt))``.

    Full jitter spreads the retries of many workers that failed together, so they do
    not return to a struggling server in one wave.
    """
    ceiling = min(cap_s, base_s * 2 ** min(attempt, 30))
    return (rng or random).uniform(0, ceiling)


def throttled_error(
    refused_s: float,
    stopped: str,
    advice: str,
    *,
    held_s: float = 0.0,
    limit_s: float | None = None,
) -> ServerUnavailableError:
    """The error that ends a run the server refused every request of, as too many,
    for ``refused_s``; ``stopped`` tells what was fetched before. ``held_s`` is what
    remains of a wait the server asked for (``Retry-After``), during which nothing
    is sent: said too, since a long one may be the whole reason. ``limit_s`` is
    given where that wait alone ends the run, reaching past the ``max_outage_s`` a
    run waits."""
    refused = (
        f"refused every request as too many (429) for {refused_s:.0f} s"
        if refused_s >= 1
        else "refused a request as too many (429)"
    )
    asked = ""
    if held_s >= 1:
        # Said as held rather than as asked: a longer wait was cut to the most
        # this client takes, and the server's own figure is no longer known here.
        asked = (
            f", and its Retry-After holds every request {held_s:.0f} s more (a longer "
            f"wait asked for is cut to {MAX_RETRY_AFTER_S:.0f} s, plus up to 10 % "
            "that spreads clients out)"
        )
    if limit_s is not None:
        asked += f", past the {limit_s:.0f} s a run waits (max_outage_s, --max-outage)"
    return ServerUnavailableError(
        f"the server {refused}{asked}; stopped {stopped}. {advice}",
        outage_s=refused_s,
    )


def outage_error(
    outage_s: float,
    stopped: str,
    advice: str,
    *,
    timeout_s: float | None = None,
    last: str | None = None,
) -> ServerUnavailableError:
    """The error that ends a run the server failed for ``outage_s``, in mid-run or as
    it started: one wording for both; ``stopped`` tells what was fetched before, and
    ``last`` is the latest failure, which says what the failures were.

    ``timeout_s`` is given when every failure was a request left unanswered until
    the client's timeout: a server may hold queries too large for it so rather than
    refuse them, and the user can make them smaller."""
    silence = hint = ""
    if timeout_s is not None:
        silence = (
            f", each request left unanswered until the client's timeout of "
            f"{timeout_s:g} s"
        )
        hint = (
            "A server that holds queries too large for it until they time out "
            "looks like this: fewer signals per query (block_size, --block-size) or "
            "a coarser window makes each query smaller. "
        )
    elif last is not None:
        silence = f" (the last: {last})"
    return ServerUnavailableError(
        f"the server failed every request for {outage_s:.0f} s{silence}; stopped "
        f"{stopped}. {hint}{advice}",
        outage_s=outage_s,
    )
