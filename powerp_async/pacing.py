"""How fast requests leave: the pacer seam the engine talks to.

Before each send the engine takes a permit from its :class:`Pacer`, and reports on it
how the answer went (accepted, throttled or failed). Before re-sending a block that
failed, it asks :meth:`Pacer.before_retry`, so a pacer can hold retries back when the
server struggles. Two pacers ship:

- :class:`~powerp_async.control.AdaptivePacer` (the default) discovers the server's
  limit from its answers and follows it as it changes;
- :class:`FixedPacer` holds a constant rate that the caller knows to be right.
"""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol, runtime_checkable

from aiolimiter import AsyncLimiter

from .errors import ConfigurationError


class Permit(Protocol):
    """One request's right to be sent; told exactly once how it went."""

    @property
    def sent_at(self) -> float:
        """Monotonic time at which the permit was granted."""

    def succeeded(self, latency_s: float | None = None) -> None:
        """Answered with a success status after ``latency_s`` seconds."""

    def throttled(self, retry_after_s: float | None = None) -> None:
        """Answered 429, with ``Retry-After`` in seconds if the server gave one."""

    def failed(self, *, connection: bool = False) -> None:
        """Answered 5xx, or (``connection``) not answered at all."""

    def unused(self) -> None:
        """Not sent after all: the pacer may give the slot to the next request."""


@runtime_checkable
class Pacer(Protocol):
    """Decides when each request may be sent.

    Give a client your own with ``PowerPClient(config, pacer=...)``.

    >>> isinstance(FixedPacer(5), Pacer)
    True
    """

    def permit(self) -> AbstractAsyncContextManager[Permit]:
        """Wait until one more request may be sent; hold a permit while it is."""

    async def before_retry(self, *, after_timeout: bool) -> None:
        """Wait until a failed block may be sent again."""

    @property
    def rate(self) -> float:
        """The current pace in requests per second."""

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet."""

    @property
    def outage_s(self) -> float:
        """How long the server has been taken as down (0 when it is not)."""


class TimedPermit:
    """A permit that only remembers when it was granted, for pacers that learn
    nothing from answers."""

    def __init__(self) -> None:
        self.sent_at = time.monotonic()

    def succeeded(self, latency_s: float | None = None) -> None:
        pass

    def throttled(self, retry_after_s: float | None = None) -> None:
        pass

    def failed(self, *, connection: bool = False) -> None:
        pass

    def unused(self) -> None:
        # The limiter's slot is spent; a fixed rate loses one slot, nothing more.
        pass


class FixedPacer:
    """A constant rate of ``max_rate`` requests per second, whatever the server says.

    Retries are still delayed by the engine (backoff, ``Retry-After``), but the pace
    itself never changes: use it when the server's limit is known and fixed.
    Created per client, never shared across event loops.

    >>> pacer = FixedPacer(20)
    >>> pacer.rate, pacer.in_flight
    (20, 0)

    ``ClientConfig(..., adaptive=False, max_rate=20)`` gives a client the same.
    """

    def __init__(self, max_rate: float) -> None:
        # The same bounds as ClientConfig's max_rate: a negative or NaN rate would
        # never let a request go, silently.
        if not (_is_number(max_rate) and 0.001 <= max_rate < math.inf):
            raise ConfigurationError(
                "FixedPacer: max_rate must be requests per second from 0.001 up, got "
                f"{max_rate!r}"
            )
        # A one-second bucket of ``max_rate`` would let that many out at once at the
        # start; a bucket of one request every 1/max_rate s keeps the pace even.
        self._limiter = AsyncLimiter(1, 1 / max_rate)
        self._rate = max_rate
        self._in_flight = 0

    def __repr__(self) -> str:
        return f"<FixedPacer {self._rate:g} req/s>"

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        await self._limiter.acquire()
        self._in_flight += 1
        try:
            yield TimedPermit()
        finally:
            self._in_flight -= 1

    async def before_retry(self, *, after_timeout: bool) -> None:
        pass

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @property
    def outage_s(self) -> float:
        return 0.0


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
