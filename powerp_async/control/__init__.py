"""Adaptive rate control: pace requests at a rate discovered from the server's answers.

::

    AdaptivePacer            the queue every request waits in; hands out permits
    ├── RateController       finds the rate: start-up growth, one cut per episode,
    │                        cubic recovery, holds after Retry-After (window mode)
    ├── CircuitBreaker       stops sending while the server is down; probes for it
    ├── RetryBudget          how many retries of failed requests may go out
    └── Clock                MonotonicClock in use, FakeClock in tests

    SizeMemory               query sizes a 413 taught; the engine cuts blocks to fit
    TimeoutJudge             whether a query left unanswered was too large
    Packer                   cuts queries of that size across planned blocks
    PointsInFlight           bounds the points the engine fetches at once (memory)

:class:`ControlSnapshot` is the frozen state of all of them at one moment.
"""

from __future__ import annotations

from ._budget import BudgetSettings, RetryBudget
from ._circuit import CircuitBreaker, CircuitSettings, CircuitState
from ._clock import Clock, FakeClock, MonotonicClock
from ._controller import RateController, RateMode, RateSettings
from ._pacer import AdaptivePacer, ControlSnapshot, Permit
from ._packing import Packer, Piece, Segment
from ._points import PointsInFlight
from ._sizes import SizeMemory, cut_in_count, cut_in_time, cut_to_fit
from ._timeouts import TimeoutJudge

__all__ = [
    "AdaptivePacer",
    "BudgetSettings",
    "CircuitBreaker",
    "CircuitSettings",
    "CircuitState",
    "Clock",
    "ControlSnapshot",
    "FakeClock",
    "MonotonicClock",
    "Packer",
    "Permit",
    "Piece",
    "PointsInFlight",
    "RateController",
    "RateMode",
    "RateSettings",
    "RetryBudget",
    "Segment",
    "SizeMemory",
    "TimeoutJudge",
    "cut_in_count",
    "cut_in_time",
    "cut_to_fit",
]
