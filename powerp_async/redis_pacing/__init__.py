"""One tenant's pace shared by several processes through Redis (the ``redis`` extra).

::

    RedisPacer          a Pacer of a known rate: books each send on the shared
    │                   schedule, waits, sends; alone at its share while Redis is away
    └── SharedSchedule  one atomic Lua script per booking, on the Redis server's clock

    AdaptiveRedisPacer  a Pacer of a rate found from every process's answers; an
    │                   AdaptivePacer from its share while Redis is away
    └── SharedRate      one atomic Lua script per booking reports the answers since
                        the last one, cuts or grows the rate, and books

A fixed shared pace: ``ClientConfig(rate_backend="redis://HOST:PORT/DB",
adaptive=False, max_rate=R)``, or ``powerp export --fixed-rate R --rate-backend URL``.
An adaptive one: ``ClientConfig(rate_backend=...)``, or ``powerp export
--rate-backend URL`` (``--max-rate`` bounds it). Nothing else in the package imports
this module, so Redis is needed only where a pace is shared.
"""

from __future__ import annotations

from .._rate_backend import tenant_key
from ._adaptive import AdaptiveRedisPacer
from ._pacer import MEMBER_TTL_S, REDIS_TIMEOUT_S, REJOIN_EVERY_S, RedisPacer
from ._schedule import Booking, SharedSchedule, schedule_keys, spacing_us
from ._shared_rate import RateBounds, Reservation, SharedRate, Throttle, state_key

__all__ = [
    "MEMBER_TTL_S",
    "REDIS_TIMEOUT_S",
    "REJOIN_EVERY_S",
    "AdaptiveRedisPacer",
    "Booking",
    "RateBounds",
    "RedisPacer",
    "Reservation",
    "SharedRate",
    "SharedSchedule",
    "Throttle",
    "schedule_keys",
    "spacing_us",
    "state_key",
    "tenant_key",
]
