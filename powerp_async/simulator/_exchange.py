"""What the handlers and the scenario's policies share about one API request.

The paths and application keys live here rather than in ``_app`` so that policies can
read them without importing the application. A query body is parsed once per request
and the outcome kept on the request: the size limit, the cost quota, the latency and
the handler all need it, and parsing it four times would cost more than the policies.
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ._auth import AuthError, TokenStore
from ._query import Query, QueryError, parse_query
from ._settings import SimulatorSettings
from ._stats import SimulatorStats
from ._tenant import Tenant

API_BASE: Final = "/rt-api/api"
STATS_PATH: Final = "/_simulator/stats"
TOKEN_PATH: Final = f"{API_BASE}/v1/auth/token"
MEASUREMENTS_PATH: Final = f"{API_BASE}/v1/measurements"
QUERY_PATH: Final = f"{API_BASE}/v1/Query"
QUERY_PATHS: Final = frozenset({QUERY_PATH, QUERY_PATH.lower()})

SETTINGS: Final = web.AppKey("powerp_simulator_settings", SimulatorSettings)
TENANT: Final = web.AppKey("powerp_simulator_tenant", Tenant)
STATS: Final = web.AppKey("powerp_simulator_stats", SimulatorStats)
TOKENS: Final = web.AppKey("powerp_simulator_tokens", TokenStore)

PARSED_QUERY: Final = web.RequestKey[Query | QueryError]("powerp_simulator_query")
POINTS: Final = web.RequestKey("powerp_simulator_points", int)
"""Points the handler put in a successful answer; counted once the answer is sent."""

CONNECTION_RESET: Final = web.RequestKey("powerp_simulator_reset", bool)
"""Set when the answer was cut off by closing the connection mid-body."""


def is_query(request: web.Request) -> bool:
    """Whether the request is for ``POST /v1/Query`` (either spelling of the path)."""
    return request.path in QUERY_PATHS and request.method == "POST"


def is_authorized(request: web.Request) -> bool:
    """Whether the request carries a valid token; the handler answers 401 otherwise."""
    try:
        request.app[TOKENS].check(request.headers.get("Authorization"))
    except AuthError:
        return False

    return True


async def parsed_query(request: web.Request) -> Query:
    """The request's query, parsed once; raises the same ``QueryError`` each time."""
    if PARSED_QUERY not in request:
        try:
            request[PARSED_QUERY] = parse_query(
                await request.read(),
                request.app[TENANT],
                request.app[SETTINGS].retired,
            )
        except QueryError as error:
            request[PARSED_QUERY] = error

    outcome = request[PARSED_QUERY]
    if isinstance(outcome, QueryError):
        raise outcome

    return outcome


async def limited_query(request: web.Request) -> Query | None:
    """The query if limits apply to this request: a valid query with a valid token.

    Anything else passes the limits untouched and gets its 400 or 401 from the handler,
    as a server that authenticates and validates before it meters would answer.
    """
    if not is_query(request) or not is_authorized(request):
        return None

    try:
        return await parsed_query(request)
    except QueryError:
        return None
