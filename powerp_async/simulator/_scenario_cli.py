"""``powerp simulate`` options for limits and faults, turned into a :class:`Scenario`.

``--scenario`` picks a preset; each individual option then replaces one value of it,
or adds the limit it belongs to. A limit that is added from scratch needs its main
option (``--burst`` alone has no rate to go with), and the message says which.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Final

from ..errors import ConfigurationError
from ._scenario import (
    FAULT_KINDS,
    OVERSIZE_ANSWERS,
    RETRY_AFTER_FORMS,
    CostQuota,
    Faults,
    Latency,
    Outage,
    RequestLimit,
    Scenario,
    SizeLimit,
)
from ._scenarios import PRESET_EXAMPLES, named_scenario

_PART_OPTIONS: Final[tuple[tuple[str, type[Any], dict[str, str]], ...]] = (
    # (scenario field, its part, {part field: option dest}); the first option is the
    # one a part added from scratch cannot do without.
    (
        "requests",
        RequestLimit,
        {"rate_per_s": "rate", "burst": "burst", "window_s": "window_s"},
    ),
    (
        "cost",
        CostQuota,
        {"points_per_s": "quota_points", "burst_points": "quota_burst_points"},
    ),
    (
        "size",
        SizeLimit,
        {"max_points": "max_points", "answer": "oversize", "hold_s": "oversize_hold_s"},
    ),
    (
        "latency",
        Latency,
        {
            "median_ms": "latency_ms",
            "spread": "latency_spread",
            "per_point_us": "latency_per_point_us",
            "refusal_ms": "refusal_latency_ms",
        },
    ),
    ("faults", Faults, {"rate": "fault_rate", "mix": "fault_mix"}),
    ("outage", Outage, {"at_s": "outage_at", "duration_s": "outage_s"}),
)
_OTHER_OPTIONS: Final = (
    ("max_in_flight", "max_in_flight"),
    ("retry_after", "retry_after_form"),
    ("schedule", "schedule"),
)


def _mix(text: str) -> tuple[tuple[str, float], ...]:
    try:
        pairs = [item.split("=") for item in text.split(",")]
        return tuple((kind.strip(), float(weight)) for kind, weight in pairs)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected kind=weight pairs such as 500=2,reset=1, got {text!r}"
        ) from None


def _schedule(text: str) -> tuple[tuple[float, float], ...]:
    try:
        steps = [item.split(":") for item in text.split(",")]
        return tuple((float(offset), float(factor)) for offset, factor in steps)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected offset:factor pairs such as 30:0.5,60:1.5, got {text!r}"
        ) from None


_OPTIONS: Final[tuple[tuple[str, Any, str], ...]] = (
    ("--rate", float, "queries per second allowed"),
    ("--burst", int, "token bucket size (default 1)"),
    ("--window-s", float, "count queries in fixed windows of this many seconds"),
    ("--quota-points", float, "points (signals x windows) allowed per second"),
    ("--quota-burst-points", int, "points bucket size (default: one second's)"),
    ("--max-points", int, "largest query answered, in points"),
    ("--oversize-hold-s", float, "how long --oversize timeout holds (default 90)"),
    ("--max-in-flight", int, "queries answered at once before 429"),
    ("--latency-ms", float, "median answer time; 0 answers at once"),
    ("--latency-spread", float, "sigma of the log of latency (default 0.69)"),
    ("--latency-per-point-us", float, "time added per point asked for"),
    ("--refusal-latency-ms", float, "time a 429, 413 or outage 503 takes (default 2)"),
    ("--fault-rate", float, "share of admitted queries that fail, 0 to 1"),
    (
        "--fault-mix",
        _mix,
        f"weights by kind, e.g. 500=2,reset=1 ({', '.join(FAULT_KINDS)})",
    ),
    (
        "--outage-at",
        float,
        "seconds after the simulator starts (not after a client does) when an "
        "outage starts",
    ),
    ("--outage-s", float, "how long the outage lasts, in seconds"),
    (
        "--schedule",
        _schedule,
        "limit factors over time, in seconds after the simulator starts: "
        "30:0.5,60:1.5 halves the rates at 30 s and makes them 1.5 times the "
        "configured ones at 60 s",
    ),
)


def add_scenario_options(parser: argparse.ArgumentParser) -> None:
    """The options of limits and faults, in a group of their own."""
    group = parser.add_argument_group(
        "limits and faults", "hidden from clients; individual options refine --scenario"
    )
    group.add_argument(
        "--scenario",
        help="a preset: "
        + ", ".join(PRESET_EXAMPLES)
        + " (the numbers in bucket-N, window-Ns and the like may be any); "
        "--list-scenarios says what each does",
    )
    for flag, kind, text in _OPTIONS:
        group.add_argument(flag, type=kind, help=text)

    group.add_argument(
        "--oversize",
        choices=OVERSIZE_ANSWERS,
        help="answer to larger queries: 413, or hold then 504 (default: 413)",
    )
    group.add_argument(
        "--retry-after-form",
        choices=RETRY_AFTER_FORMS,
        help="how 429 and 503 say when to retry (default: seconds)",
    )


def scenario_from_options(options: argparse.Namespace) -> Scenario | None:
    """The scenario the options describe; ``None`` when none was asked for.

    A value the scenario refuses is named by its option, as typed, rather than by
    the field it fills; a preset's own values keep their field names.
    """
    base = named_scenario(options.scenario) if options.scenario else Scenario()
    try:
        return _refined(base, options)
    except ConfigurationError as error:
        raise ConfigurationError(_in_option_words(str(error))) from None


def _in_option_words(message: str) -> str:
    """``message`` with each field an option fills, as messages name it, replaced
    by that option."""
    fields = [("RequestLimit.rate_per_s * window_s", "--rate * --window-s")]
    fields += [
        (f"{kind.__name__}.{name}", _flag(dest))
        for _, kind, dests in _PART_OPTIONS
        for name, dest in dests.items()
    ]
    fields += [(f"Scenario.{name}", _flag(dest)) for name, dest in _OTHER_OPTIONS]
    for field, flag in fields:
        message = message.replace(field, flag)

    return message


def _refined(base: Scenario, options: argparse.Namespace) -> Scenario | None:
    changes: dict[str, Any] = {}
    for field, kind, dests in _PART_OPTIONS:
        given = {
            name: getattr(options, dest)
            for name, dest in dests.items()
            if getattr(options, dest) is not None
        }
        if given:
            changes[field] = _part(kind, getattr(base, field), given, dests)

    for field, dest in _OTHER_OPTIONS:
        if getattr(options, dest) is not None:
            changes[field] = getattr(options, dest)

    if not changes:
        return base if options.scenario else None

    name = f"{base.name} (refined)" if options.scenario else "custom"
    return dataclasses.replace(base, name=name, **changes)


def _part(
    kind: type[Any], base: Any, given: dict[str, Any], dests: dict[str, str]
) -> object:
    if kind is Latency and given.get("median_ms") == 0:
        return None

    if base is not None:
        return dataclasses.replace(base, **given)

    missing = [
        name for name in _required_fields(kind) if name not in given and name in dests
    ]
    if missing:
        options = ", ".join(_flag(dests[name]) for name in given)
        needed = " and ".join(_flag(dests[name]) for name in missing)
        raise ConfigurationError(f"{options} needs {needed} as well")

    return kind(**given)


def _required_fields(kind: type[Any]) -> list[str]:
    """The fields of a dataclass that have no default."""
    return [
        field.name
        for field in dataclasses.fields(kind)
        if field.default is dataclasses.MISSING
        and field.default_factory is dataclasses.MISSING
    ]


def _flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")
