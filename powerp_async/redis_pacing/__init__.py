"""One tenant's pace shared by several processes through Redis (the ``redis`` extra).

::

    RedisPacer          a Pacer: books each send on the shared schedule, waits, sends;
    │                   paces alone at its share while Redis is away
    └── SharedSchedule  one atomic Lua script per booking, on the Redis server's clock

Give a client one with ``ClientConfig(rate_backend="redis://HOST:PORT/DB",
adaptive=False, max_rate=R)``, or ``powerp export --fixed-rate R --rate-backend
redis://HOST:PORT/DB``. Nothing else in the package imports this module, so Redis is
needed only where a pace is shared.
"""

from __future__ import annotations

from .._rate_backend import tenant_key
from ._pacer import MEMBER_TTL_S, REDIS_TIMEOUT_S, REJOIN_EVERY_S, RedisPacer
from ._schedule import Booking, SharedSchedule, schedule_keys, spacing_us

__all__ = [
    "MEMBER_TTL_S",
    "REDIS_TIMEOUT_S",
    "REJOIN_EVERY_S",
    "Booking",
    "RedisPacer",
    "SharedSchedule",
    "schedule_keys",
    "spacing_us",
    "tenant_key",
]
