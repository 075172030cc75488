"""What the engine reports as it works, for dashboards, metrics and tests.

Pass ``on_event=`` to :class:`~powerp_async.PowerPClient` to receive a frozen record for
every request answered, every retry scheduled, every block finished or given up, every
change of the pace the rate controller holds, of its mode or of the circuit breaker's
state, and every query size learnt from a 413. The hook is called on the event
loop, in the order things happen, so it must be quick; an exception it raises is
logged and otherwise ignored, so an observer can never break a run.

>>> def show(event: Event) -> None:                          # doctest: +SKIP
...     if isinstance(event, PaceChanged):
...         print(f"pace {event.previous_rate:.1f} -> {event.rate:.1f} req/s")
>>> client = PowerPClient(config, on_event=show)            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, TypeAlias

from ._hooks import ShieldedHook
from .models import Block

PACE_CHANGE: Final = 0.05
"""A pace that moved by less than this fraction is not reported again."""


@dataclass(frozen=True, slots=True)
class RequestDone:
    """One query answered; ``status`` is None when no answer came (reset, timeout)."""

    block: Block
    status: int | None
    latency_s: float


@dataclass(frozen=True, slots=True)
class RetryScheduled:
    """A block goes again after ``delay_s``; ``reason`` says why (status or error)."""

    block: Block
    reason: str
    delay_s: float
    attempt: int


@dataclass(frozen=True, slots=True)
class BlockDone:
    """A block's points are decoded and on their way to the caller."""

    block: Block
    points: int


@dataclass(frozen=True, slots=True)
class BlockFailed:
    """A block was given up; ``error`` says why. Nothing else stops."""

    block: Block
    error: Exception


@dataclass(frozen=True, slots=True)
class PaceChanged:
    """The rate controller moved the pace, in requests per second."""

    rate: float
    previous_rate: float


@dataclass(frozen=True, slots=True)
class ControlChanged:
    """The rate controller changed mode (``startup``, ``recovery``, ``window``) or
    the circuit breaker its state (``closed``, ``open``, ``half-open``)."""

    mode: str
    circuit: str
    rate: float
    """Requests per second allowed at the change."""
    in_flight: int
    concurrency_limit: int
    throttles: int
    """429 answers so far."""


@dataclass(frozen=True, slots=True)
class BlockSizeLearned:
    """After a 413: the largest query of one database and aggregation known to be
    taken, in points (signals times windows); later blocks are cut to fit it."""

    database_id: int
    aggregation: str
    max_points: int | None
    """``None`` while only refusals are known and queries are being halved."""


Event: TypeAlias = (
    RequestDone
    | RetryScheduled
    | BlockDone
    | BlockFailed
    | PaceChanged
    | ControlChanged
    | BlockSizeLearned
)
EventHook: TypeAlias = Callable[[Event], None]


class EventSink:
    """Delivers events to a hook, shielding the run from the hook's own failures."""

    def __init__(self, hook: EventHook | None) -> None:
        self._hook = None if hook is None else ShieldedHook("on_event", hook)
        self._pace = 0.0

    def emit(self, event: Event) -> None:
        if self._hook is not None:
            self._hook(event)

    def pace(self, rate: float) -> None:
        """Report the pace if it moved enough since it was last reported."""
        if self._hook is None or abs(rate - self._pace) <= PACE_CHANGE * self._pace:
            return
        previous, self._pace = self._pace, rate
        self.emit(PaceChanged(rate=rate, previous_rate=previous))
