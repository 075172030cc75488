"""Settings of the simulator, and the policy seam for limits and faults.

A policy stands in front of the API handlers the way an aiohttp middleware does: it
receives the request and the next handler, and either answers itself (a 429, a 503, a
413) or passes the request on, possibly after a delay. Policies see only the API
endpoints, never ``/_simulator/stats``, and the stats count whatever they answer.

``scenario`` describes the built-in limits and faults (rate limits, cost quotas, size
limits, latency, failures, outages); each server builds its own policies from it, in
front of any given in ``policies``. The default has none.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Literal, TypeAlias, get_args

from aiohttp import web

from ..errors import ConfigurationError
from ._grid import Label
from ._scenario import Scenario

Handler: TypeAlias = Callable[[web.Request], Awaitable[web.StreamResponse]]
Policy: TypeAlias = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]
"""``async def policy(request, handler) -> response``: answer, or ``await handler``."""

DEFAULT_CLIENT_ID: Final = "demo"
DEFAULT_CLIENT_SECRET: Final = "demo-secret"
MAX_COPIES: Final = 100
MAX_TOKEN_TTL_S: Final = 1_000_000_000
"""About 31 years."""
ANCHOR_RANGE_US: Final = (0, 7_258_118_400_000_000)
"""From 1970-01-01 to 2200-01-01, in epoch microseconds."""
_LABELS: Final = get_args(Label)


@dataclass(frozen=True, slots=True)
class SimulatorSettings:
    """How the simulated tenant behaves; every field is checked on construction.

    ``label`` picks which side of a window names it (Flux uses the stop).
    ``anchor_us`` is the reference time of the signals that start recently; ``None``
    means the current UTC hour, floored, taken when the tenant is built.
    ``gzip_min_bytes`` is the smallest body compressed for a client that accepts gzip;
    ``None`` never compresses. ``scenario`` adds hidden limits and faults; the
    random ones are drawn from ``seed``. ``copies`` repeats the demo tenant's three
    databases under new ids (copy ``k`` holds databases ``3k + 1`` to ``3k + 3``), for
    tenants of up to some 100,000 signals. ``cache_answers`` keeps each distinct
    query's answer and serves a repeat of it from memory: the same bytes, without the
    CPU time of rendering them, for benchmarks that measure the client; memory grows
    with every distinct query. ``retired`` signals, as ``(database id, index)``, are
    listed but refused by every query that asks for them (400, ``retired_index``), as
    a server refuses a signal taken out of service: the whole query fails, whatever
    else it asks for.
    """

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = field(default=DEFAULT_CLIENT_SECRET, repr=False)
    token_ttl_s: float = 3600.0
    label: Literal["stop", "start"] = "stop"
    anchor_us: int | None = None
    seed: int = 0
    gzip_min_bytes: int | None = 1024
    policies: tuple[Policy, ...] = ()
    scenario: Scenario | None = None
    copies: int = 1
    cache_answers: bool = False
    retired: frozenset[tuple[int, str]] = frozenset()

    def __post_init__(self) -> None:
        _check_text("client_id", self.client_id)
        _check_text("client_secret", self.client_secret, shown=False)
        _check_ttl(self.token_ttl_s)
        if self.label not in _LABELS:
            raise ConfigurationError(
                f"SimulatorSettings.label must be 'stop' or 'start', got {self.label!r}"
            )

        _check_int("anchor_us", self.anchor_us, optional=True)
        _check_anchor(self.anchor_us)
        _check_int("seed", self.seed)
        if not 0 <= self.seed < 2**64:
            raise ConfigurationError(
                f"SimulatorSettings.seed must be 0 to 2**64 - 1, got {self.seed}"
            )

        _check_int("gzip_min_bytes", self.gzip_min_bytes, optional=True)
        if self.gzip_min_bytes is not None and self.gzip_min_bytes < 0:
            raise ConfigurationError(
                "SimulatorSettings.gzip_min_bytes must be >= 0 or None, "
                f"got {self.gzip_min_bytes}"
            )

        _check_int("copies", self.copies)
        if not 1 <= self.copies <= MAX_COPIES:
            raise ConfigurationError(
                f"SimulatorSettings.copies must be 1 to {MAX_COPIES}, got {self.copies}"
            )

        _check_retired(self.retired)
        _check_policies(self.policies)
        if self.scenario is not None and not isinstance(self.scenario, Scenario):
            raise ConfigurationError(
                "SimulatorSettings.scenario must be a Scenario or None, got "
                f"{type(self.scenario).__name__}"
            )


def _check_text(name: str, value: object, *, shown: bool = True) -> None:
    if not isinstance(value, str) or not value:
        # A wrong secret is described by its type only: its text must never be shown.
        if shown:
            got = repr(value)
        else:
            got = "an empty string" if value == "" else f"a {type(value).__name__}"

        raise ConfigurationError(
            f"SimulatorSettings.{name} must be a non-empty string, got {got}"
        )


def _check_ttl(value: object) -> None:
    # ``expires_in`` is whole seconds, and a 64-bit integer in JSON.
    if isinstance(value, bool) or not isinstance(value, int | float):
        pass
    elif 1 <= value <= MAX_TOKEN_TTL_S:
        return

    raise ConfigurationError(
        f"SimulatorSettings.token_ttl_s must be from 1 to {MAX_TOKEN_TTL_S:,} "
        f"seconds, got {value!r}"
    )


def _check_anchor(value: int | None) -> None:
    if value is not None and not ANCHOR_RANGE_US[0] <= value < ANCHOR_RANGE_US[1]:
        raise ConfigurationError(
            "SimulatorSettings.anchor_us must be a time from 1970 to 2199 in epoch "
            f"microseconds, got {value!r}"
        )


def _check_int(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return

    if isinstance(value, bool) or not isinstance(value, int):
        expected = "an integer or None" if optional else "an integer"
        raise ConfigurationError(
            f"SimulatorSettings.{name} must be {expected}, got {value!r}"
        )


def _check_retired(retired: object) -> None:
    def signal(entry: object) -> bool:
        return (
            isinstance(entry, tuple)
            and len(entry) == 2
            and isinstance(entry[0], int)
            and not isinstance(entry[0], bool)
            and isinstance(entry[1], str)
        )

    if not isinstance(retired, frozenset) or not all(map(signal, retired)):
        raise ConfigurationError(
            "SimulatorSettings.retired must be a frozenset of (database id, index) "
            f"pairs, got {retired!r}"
        )


def _check_policies(policies: object) -> None:
    if not isinstance(policies, tuple) or not all(callable(p) for p in policies):
        raise ConfigurationError(
            "SimulatorSettings.policies must be a tuple of callables "
            "policy(request, handler), got "
            f"{type(policies).__name__}"
        )
