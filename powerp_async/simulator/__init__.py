"""A faithful, deterministic and fast simulator of the PowerP Real-Time API.

It speaks the API as ``powerp-api.md`` describes it (OAuth2 client credentials,
``GET /v1/measurements``, ``POST /v1/Query`` with Flux window semantics) over a demo
tenant of about a thousand signals, part of them replaying a real weather year. Every
point is a pure function of (seed, signal, aggregation, clipped window), which
:meth:`Tenant.points` exposes so tests can check exports against it.

>>> async with Simulator(SimulatorSettings(seed=1)) as simulator:  # doctest: +SKIP
...     print(simulator.base_url)  # give this to a client, with demo / demo-secret
...     expected = simulator.tenant.points(1, "1", "mean", start_us, end_us, 1_000_000)
"""

from __future__ import annotations

from ._app import build_app
from ._ceiling import Ceiling, ceiling
from ._demo import demo_tenant
from ._grid import SAMPLE_PERIOD_US, format_timestamp
from ._scenario import (
    CostQuota,
    Faults,
    Latency,
    Outage,
    RequestLimit,
    Scenario,
    SizeLimit,
)
from ._scenarios import named_scenario
from ._server import Simulator
from ._settings import Handler, Policy, SimulatorSettings
from ._stats import SimulatorStats
from ._tenant import SignalSpec, Tenant

__all__ = [
    "SAMPLE_PERIOD_US",
    "Ceiling",
    "CostQuota",
    "Faults",
    "Handler",
    "Latency",
    "Outage",
    "Policy",
    "RequestLimit",
    "Scenario",
    "SignalSpec",
    "Simulator",
    "SimulatorSettings",
    "SimulatorStats",
    "SizeLimit",
    "Tenant",
    "build_app",
    "ceiling",
    "demo_tenant",
    "format_timestamp",
    "named_scenario",
]
