"""What a scenario asks of the simulated server: its hidden limits and its faults.

A :class:`Scenario` is a plain description, frozen and checked on construction; the
stateful limiters are built from it for each running server (``_scenarios``), so two
servers never share a bucket. Every part is optional and the empty scenario changes
nothing. The client is told none of it: it sees only statuses, ``Retry-After`` headers,
latency and broken connections, as it would from the real service.

Limits count per client id. The simulator serves one client id, so they count every
authorized query, whichever token it carries.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias, get_args

from ..errors import ConfigurationError

RetryAfterForm: TypeAlias = Literal["seconds", "fractional", "http-date", "missing"]
FaultKind: TypeAlias = Literal["500", "502", "503", "504", "reset"]
OversizeAnswer: TypeAlias = Literal["413", "timeout"]

RETRY_AFTER_FORMS: Final[tuple[str, ...]] = get_args(RetryAfterForm)
FAULT_KINDS: Final[tuple[str, ...]] = get_args(FaultKind)
OVERSIZE_ANSWERS: Final[tuple[str, ...]] = get_args(OversizeAnswer)
EVEN_FAULT_MIX: Final[tuple[tuple[FaultKind, float], ...]] = tuple(
    (kind, 1.0) for kind in get_args(FaultKind)
)
DEFAULT_HOLD_S: Final = 90.0
"""Longer than the 30 s timeout of the reference notebook and the 60 s of the client."""


_PER_WINDOW: Final = "RequestLimit.rate_per_s * window_s"


@dataclass(frozen=True, slots=True)
class RequestLimit:
    """Requests per second on ``/v1/Query``: a token bucket, or fixed windows.

    As a bucket it holds ``burst`` requests and refills at ``rate_per_s``. With
    ``window_s`` set it admits ``rate_per_s * window_s`` requests per window instead,
    windows counted from the start of the run, and ``burst`` is not used.
    """

    rate_per_s: float
    burst: int = 1
    window_s: float | None = None

    def __post_init__(self) -> None:
        _require_positive("RequestLimit", "rate_per_s", self.rate_per_s)
        _require_count("RequestLimit", "burst", self.burst)
        if self.window_s is None:
            return

        _require_positive("RequestLimit", "window_s", self.window_s)
        per_window = self.rate_per_s * self.window_s
        if per_window < 1:
            raise ConfigurationError(
                f"{_PER_WINDOW} must allow at least one request per window, got "
                f"{self.rate_per_s:g} * {self.window_s:g}"
            )

        # A window admits whole requests: 2.5 would quietly become 2.
        whole = math.isfinite(per_window) and per_window < 2**53
        if not whole or abs(per_window - round(per_window)) > 1e-9 * per_window:
            raise ConfigurationError(
                f"{_PER_WINDOW} must be a whole number of requests per window, got "
                f"{self.rate_per_s:g} * {self.window_s:g} = {per_window:g}"
            )

    @property
    def per_window(self) -> int:
        """Requests admitted in one window before any schedule factor."""
        return math.floor(self.rate_per_s * (self.window_s or 1.0) + 1e-9)


@dataclass(frozen=True, slots=True)
class CostQuota:
    """Points per second, a query costing its signals times its windows.

    A token bucket of points holding ``burst_points`` (one second's worth when
    ``None``); a query costing more than the whole bucket is answered 413.
    """

    points_per_s: float
    burst_points: int | None = None

    def __post_init__(self) -> None:
        _require_positive("CostQuota", "points_per_s", self.points_per_s)
        if self.burst_points is not None:
            _require_count("CostQuota", "burst_points", self.burst_points)

    @property
    def capacity_points(self) -> float:
        if self.burst_points is None:
            return float(self.points_per_s)

        return float(self.burst_points)


@dataclass(frozen=True, slots=True)
class SizeLimit:
    """The largest query answered, in points (signals times windows), and with
    ``max_signals`` in signals too, however short its range.

    Above it the server answers 413, or with ``answer="timeout"`` holds the request
    for ``hold_s`` and then answers 504, as a backend that gives up would.
    """

    max_points: int
    answer: OversizeAnswer = "413"
    hold_s: float = DEFAULT_HOLD_S
    max_signals: int | None = None

    def __post_init__(self) -> None:
        _require_count("SizeLimit", "max_points", self.max_points)
        if self.max_signals is not None:
            _require_count("SizeLimit", "max_signals", self.max_signals)
        _require_choice("SizeLimit", "answer", self.answer, OVERSIZE_ANSWERS)
        _require_positive("SizeLimit", "hold_s", self.hold_s)


MAX_SPREAD: Final = 3.0
"""The widest latency spread: its 99th percentile is about 1,000 times the median."""


@dataclass(frozen=True, slots=True)
class Latency:
    """How long answers take: lognormal around ``median_ms``, plus a cost per point.

    ``spread`` is the standard deviation of the logarithm; 0.69 puts the 99th
    percentile near five times the median. Refusals (429, 413, outage 503s) skip the
    work and take ``refusal_ms``.
    """

    median_ms: float = 100.0
    spread: float = 0.69
    per_point_us: float = 0.0
    refusal_ms: float = 2.0

    def __post_init__(self) -> None:
        _require_positive("Latency", "median_ms", self.median_ms)
        spread = _number(self.spread)
        # Beyond a few, the lognormal's tail holds answers of years (and overflows).
        if spread is None or not 0 <= spread <= MAX_SPREAD:
            raise ConfigurationError(
                f"Latency.spread must be a number from 0 to {MAX_SPREAD:g}, got "
                f"{self.spread!r}"
            )
        _require_non_negative("Latency", "per_point_us", self.per_point_us)
        _require_non_negative("Latency", "refusal_ms", self.refusal_ms)


@dataclass(frozen=True, slots=True)
class Faults:
    """A share ``rate`` of admitted queries fails, the kinds drawn by ``mix`` weight.

    ``502`` answers with an HTML page, as a proxy does; ``reset`` starts a 200 answer
    and closes the connection halfway through its body.
    """

    rate: float
    mix: tuple[tuple[FaultKind, float], ...] = EVEN_FAULT_MIX

    def __post_init__(self) -> None:
        rate = _number(self.rate)
        if rate is None or not 0 <= rate <= 1:
            raise ConfigurationError(
                f"Faults.rate must be a share from 0 to 1, got {self.rate!r}"
            )

        _check_mix(self.mix)


@dataclass(frozen=True, slots=True)
class Outage:
    """Every API request answers 503 from ``at_s`` into the run for ``duration_s``."""

    at_s: float
    duration_s: float

    def __post_init__(self) -> None:
        _require_non_negative("Outage", "at_s", self.at_s)
        _require_positive("Outage", "duration_s", self.duration_s)

    @property
    def ends_s(self) -> float:
        return self.at_s + self.duration_s

    def covers(self, elapsed_s: float) -> bool:
        return self.at_s <= elapsed_s < self.ends_s


@dataclass(frozen=True, slots=True)
class Scenario:
    """The hidden behaviour of one simulated server; the empty scenario has none.

    ``schedule`` changes the request limit and the cost quota during the run: each
    ``(offset_s, factor)`` multiplies the configured rates from that offset on, so
    ``((30, 0.5), (60, 1.5))`` turns 100/s into 50/s at 30 s and 150/s at 60 s.
    """

    name: str = "custom"
    requests: RequestLimit | None = None
    cost: CostQuota | None = None
    size: SizeLimit | None = None
    max_in_flight: int | None = None
    latency: Latency | None = None
    faults: Faults | None = None
    outage: Outage | None = None
    retry_after: RetryAfterForm = "seconds"
    schedule: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ConfigurationError(
                f"Scenario.name must be a non-empty string, got {self.name!r}"
            )

        _require_parts(self)
        if self.max_in_flight is not None:
            _require_count("Scenario", "max_in_flight", self.max_in_flight)

        _require_choice("Scenario", "retry_after", self.retry_after, RETRY_AFTER_FORMS)
        _check_schedule(self.schedule)

    @property
    def max_points(self) -> int | None:
        """The largest query the limits let through, in points; ``None`` if any size."""
        sizes = [self.size.max_points] if self.size else []
        if self.cost:
            sizes.append(math.floor(self.cost.capacity_points))

        return min(sizes, default=None)

    def describe(self) -> str:
        """One line naming every limit and fault that is set."""
        parts = [_describe_part(part) for part in _parts(self) if part is not None]
        if self.max_in_flight is not None:
            parts.append(f"at most {self.max_in_flight} queries in flight")

        if self.schedule:
            steps = ", ".join(f"x{f:g} at {t:g} s" for t, f in self.schedule)
            parts.append(f"limits {steps}")

        if not parts:
            return f"{self.name}: no limits, no faults"

        return f"{self.name}: " + "; ".join(parts) + f"; Retry-After {self.retry_after}"


_Part: TypeAlias = RequestLimit | CostQuota | SizeLimit | Latency | Faults | Outage


def _parts(scenario: Scenario) -> tuple[_Part | None, ...]:
    return (
        scenario.requests,
        scenario.cost,
        scenario.size,
        scenario.latency,
        scenario.faults,
        scenario.outage,
    )


def _require_parts(scenario: Scenario) -> None:
    kinds = (RequestLimit, CostQuota, SizeLimit, Latency, Faults, Outage)
    names = ("requests", "cost", "size", "latency", "faults", "outage")
    for name, kind, part in zip(names, kinds, _parts(scenario), strict=True):
        if part is not None and not isinstance(part, kind):
            raise ConfigurationError(
                f"Scenario.{name} must be a {kind.__name__} or None, "
                f"got {type(part).__name__}"
            )


def _describe_part(part: _Part) -> str:
    if isinstance(part, RequestLimit):
        if part.window_s is None:
            return f"{part.rate_per_s:g} queries/s, burst {part.burst}"

        return f"{part.per_window} queries per {part.window_s:g} s window"

    if isinstance(part, CostQuota):
        return f"{part.points_per_s:g} points/s, burst {part.capacity_points:g}"

    if isinstance(part, SizeLimit):
        otherwise = "413" if part.answer == "413" else f"held {part.hold_s:g} s, 504"
        signals = (
            f" and {part.max_signals} signals" if part.max_signals is not None else ""
        )
        return f"at most {part.max_points} points{signals} per query, else {otherwise}"

    if isinstance(part, Latency):
        per_point = f" + {part.per_point_us:g} us/point" if part.per_point_us else ""
        return f"latency median {part.median_ms:g} ms{per_point}"

    if isinstance(part, Faults):
        return f"{part.rate:.1%} faults"

    return f"outage {part.duration_s:g} s from {part.at_s:g} s"


def _number(value: object) -> float | None:
    """The value as a finite number, or ``None`` (booleans are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None

    return float(value) if math.isfinite(value) else None


def _require_positive(owner: str, name: str, value: object) -> None:
    number = _number(value)
    if number is None or number <= 0:
        raise ConfigurationError(
            f"{owner}.{name} must be a positive number, got {value!r}"
        )


def _require_non_negative(owner: str, name: str, value: object) -> None:
    number = _number(value)
    if number is None or number < 0:
        raise ConfigurationError(f"{owner}.{name} must be a number >= 0, got {value!r}")


def _require_count(owner: str, name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(
            f"{owner}.{name} must be a whole number >= 1, got {value!r}"
        )


def _require_choice(
    owner: str, name: str, value: object, choices: tuple[str, ...]
) -> None:
    if value not in choices:
        expected = ", ".join(repr(choice) for choice in choices)
        raise ConfigurationError(
            f"{owner}.{name} must be one of {expected}, got {value!r}"
        )


def _check_mix(mix: object) -> None:
    expected = (
        "Faults.mix must be a non-empty tuple of (kind, weight) pairs with kinds from "
        f"{', '.join(FAULT_KINDS)} and positive weights"
    )
    if not isinstance(mix, tuple) or not mix:
        raise ConfigurationError(f"{expected}, got {mix!r}")

    for pair in mix:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise ConfigurationError(f"{expected}, got the item {pair!r}")

        kind, weight = pair
        number = _number(weight)
        if kind not in FAULT_KINDS or number is None or number <= 0:
            raise ConfigurationError(f"{expected}, got the item {pair!r}")


def _check_schedule(schedule: object) -> None:
    expected = (
        "Scenario.schedule must be a tuple of (offset_s, factor) pairs with offsets "
        ">= 0 in increasing order and positive factors"
    )
    if not isinstance(schedule, tuple):
        raise ConfigurationError(f"{expected}, got {type(schedule).__name__}")

    previous = -math.inf
    for step in schedule:
        if not isinstance(step, tuple) or len(step) != 2:
            raise ConfigurationError(f"{expected}, got the step {step!r}")

        offset_s, factor = (_number(value) for value in step)
        if offset_s is None or factor is None or factor <= 0:
            raise ConfigurationError(f"{expected}, got the step {step!r}")

        if offset_s < 0 or offset_s <= previous:
            raise ConfigurationError(f"{expected}, got the step {step!r}")

        previous = offset_s
