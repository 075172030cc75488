"""The aiohttp application: the API's three endpoints and the stats endpoint.

Middlewares, outermost first: counting (so the stats see every answer, throttles from
policies included), JSON error bodies for routing errors, then the policies of the
settings followed by those of its scenario, which guard the API paths only.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import Callable, Mapping
from typing import Final

import orjson
from aiohttp import web

from ..errors import ConfigurationError
from ._answers import Sleep
from ._auth import AuthError, Credentials, TokenStore, client_credentials
from ._demo import demo_tenant
from ._exchange import (
    API_BASE,
    CONNECTION_RESET,
    MEASUREMENTS_PATH,
    POINTS,
    QUERY_PATH,
    SETTINGS,
    STATS,
    STATS_PATH,
    TENANT,
    TOKEN_PATH,
    TOKENS,
    parsed_query,
)
from ._grid import RequestGrid
from ._query import Query, QueryError
from ._render import render_points
from ._scenarios import scenario_policies
from ._settings import Handler, Policy, SimulatorSettings
from ._stats import RESET_STATUS, SimulatorStats
from ._tenant import Tenant

__all__ = [
    "API_BASE",
    "MEASUREMENTS_PATH",
    "POLICIES",
    "QUERY_PATH",
    "SETTINGS",
    "STATS",
    "STATS_PATH",
    "TENANT",
    "TOKENS",
    "TOKEN_PATH",
    "build_app",
    "error_response",
    "json_response",
]

logger = logging.getLogger("powerp_async.simulator")

_ENDPOINT_BY_PATH: Final = {
    TOKEN_PATH: "token",
    MEASUREMENTS_PATH: "measurements",
    QUERY_PATH: "query",
    QUERY_PATH.lower(): "query",
}
_FORM_TYPES: Final = ("application/x-www-form-urlencoded", "multipart/form-data")
_GZIP_LEVEL: Final = 1
"""Fastest compression: JSON of points still shrinks about tenfold."""

POLICIES: Final = web.AppKey("powerp_simulator_policies", tuple[Policy, ...])
WALL_CLOCK: Final = web.AppKey[Callable[[], float]]("powerp_simulator_wall_clock")
AnswerKey = tuple[int, tuple[str, ...], str, int, int, int]
ANSWERS: Final = web.AppKey(
    "powerp_simulator_answers", dict[AnswerKey, tuple[bytes, int]]
)


def build_app(
    settings: SimulatorSettings | None = None,
    *,
    tenant: Tenant | None = None,
    stats: SimulatorStats | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Sleep = asyncio.sleep,
    wall_clock: Callable[[], float] = time.time,
) -> web.Application:
    """The simulator as an aiohttp application.

    ``clock`` (monotonic seconds) times token expiry and the scenario's limits, whose
    run starts now; ``sleep`` is how the scenario waits (latency, holds).
    ``wall_clock`` (seconds since the epoch) is now for the data: as on a real
    server, no window that starts after it has any point yet.
    """
    settings = settings or SimulatorSettings()
    app = web.Application(middlewares=[_count, _json_routing_errors, _apply_policies])
    app[SETTINGS] = settings
    policies = settings.policies
    if settings.scenario is not None:
        # Built per application: a bucket or a counter is never shared by two servers.
        policies += scenario_policies(
            settings.scenario, clock=clock, seed=settings.seed, sleep=sleep
        )

    app[POLICIES] = policies
    app[TENANT] = tenant or demo_tenant(settings)
    app[WALL_CLOCK] = wall_clock
    check_retired_exist(app[TENANT], settings.retired)
    app[STATS] = stats or SimulatorStats()
    app[TOKENS] = TokenStore(settings.token_ttl_s, clock)
    if settings.cache_answers:
        app[ANSWERS] = {}

    app.router.add_post(TOKEN_PATH, _issue_token)
    app.router.add_get(MEASUREMENTS_PATH, _list_measurements)
    app.router.add_post(QUERY_PATH, _query)
    app.router.add_post(QUERY_PATH.lower(), _query)
    app.router.add_get(STATS_PATH, _stats)
    return app


@web.middleware
async def _count(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == STATS_PATH:
        return await handler(request)

    stats = request.app[STATS]
    endpoint = _ENDPOINT_BY_PATH.get(request.path, "other")
    try:
        response = await handler(request)
    except web.HTTPException as error:
        stats.record(endpoint, error.status)
        raise
    except Exception:
        stats.record(endpoint, 500)
        raise

    if request.get(CONNECTION_RESET, False):
        stats.record(endpoint, RESET_STATUS)
    else:
        stats.record(endpoint, response.status, request.get(POINTS, 0))

    return response


@web.middleware
async def _json_routing_errors(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Answer unknown paths and methods in JSON, like every other error of the API."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        known = ", ".join(sorted([*_ENDPOINT_BY_PATH, STATS_PATH]))
        message = f"no endpoint at {request.path}: expected one of {known}"
        return error_response(request, 404, "not_found", message)
    except web.HTTPMethodNotAllowed as error:
        allowed = ", ".join(sorted(error.allowed_methods))
        message = f"{request.method} is not allowed on {request.path}: use {allowed}"
        response = error_response(request, 405, "method_not_allowed", message)
        response.headers["Allow"] = allowed
        return response


@web.middleware
async def _apply_policies(request: web.Request, handler: Handler) -> web.StreamResponse:
    policies = request.app[POLICIES]
    if not policies or not request.path.startswith(API_BASE + "/"):
        return await handler(request)

    for policy in reversed(policies):
        handler = _chained(policy, handler)

    return await handler(request)


def _chained(policy: Policy, downstream: Handler) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        return await policy(request, downstream)

    return handle


async def _issue_token(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS]
    if request.content_type not in _FORM_TYPES:
        message = (
            "expected a form-encoded body (application/x-www-form-urlencoded), "
            f"got {request.content_type}"
        )
        return _auth_error(request, AuthError(400, "invalid_request", message))

    form = await request.post()
    fields = {name: value for name, value in form.items() if isinstance(value, str)}
    expected = Credentials(settings.client_id, settings.client_secret)
    try:
        client_credentials(fields, request.headers.get("Authorization"), expected)
    except AuthError as error:
        return _auth_error(request, error)

    token, expires_in_s = request.app[TOKENS].issue()
    request.app[STATS].tokens_issued += 1
    answer = {"access_token": token, "token_type": "Bearer", "expires_in": expires_in_s}
    # RFC 6749 §5.1: token answers must not be cached.
    headers = {"Cache-Control": "no-store", "Pragma": "no-cache"}
    return json_response(request, orjson.dumps(answer), headers=headers)


async def _list_measurements(request: web.Request) -> web.StreamResponse:
    denied = _authorize(request)
    if denied is not None:
        return denied

    return json_response(request, request.app[TENANT].metadata_json())


async def _query(request: web.Request) -> web.StreamResponse:
    denied = _authorize(request)
    if denied is not None:
        return denied

    try:
        query = await parsed_query(request)
    except QueryError as error:
        logger.debug("query refused (%s): %s", error.code, error.message)
        return error_response(request, 400, error.code, error.message)

    body, points = _answer(request.app, query)
    request[POINTS] = points
    logger.debug(
        "query of database %d, %d signals, %s: %d points",
        query.database_id,
        len(query.signals),
        query.aggregation,
        points,
    )
    return json_response(request, body)


def _answer(app: web.Application, query: Query) -> tuple[bytes, int]:
    """The rendered answer, from the cache of answers when the settings keep one:
    the tenant's points depend on the query alone, so a repeat is the same bytes."""
    now_us = int(app[WALL_CLOCK]() * 1_000_000)
    end_us = _served_end_us(query, now_us)
    if end_us <= query.start_us:
        return b"[]", 0

    tenant = app[TENANT]
    if now_us < end_us:
        # The window that holds now, from the samples recorded so far; an answer
        # that depends on now is not one to keep.
        grid = RequestGrid(
            query.start_us,
            end_us,
            query.window_us,
            tenant.label,
            samples_end_us=now_us + 1,
        )
        return render_points(tenant, query.signals, query.aggregation, grid)

    cache = app.get(ANSWERS)
    key = (
        query.database_id,
        tuple(index for index, _ in query.signals),
        query.aggregation,
        query.start_us,
        end_us,
        query.window_us,
    )
    if cache is not None and key in cache:
        return cache[key]

    grid = RequestGrid(query.start_us, end_us, query.window_us, tenant.label)
    answer = render_points(tenant, query.signals, query.aggregation, grid)
    if cache is not None:
        cache[key] = answer

    return answer


def _served_end_us(query: Query, now_us: int) -> int:
    """Where the windows end for ``query``: its end, or the end of the window that
    holds now, whichever is earlier. A historian has no point of a window that starts
    after now; the one that holds now has a point, from the samples up to now."""
    return min(query.end_us, now_us - now_us % query.window_us + query.window_us)


async def _stats(request: web.Request) -> web.StreamResponse:
    """The counters; ``?since=<unix second>`` keeps only the seconds from then on,
    ``?endpoint=query`` (or ``token``, ``measurements``) only that endpoint's."""
    since = request.query.get("since")
    if since is not None and not since.isdigit():
        message = (
            f"since must be a whole number of seconds since the epoch, got {since!r}"
        )
        return error_response(request, 400, "invalid_parameter", message)

    endpoint = request.query.get("endpoint")
    known = sorted({*_ENDPOINT_BY_PATH.values(), "other"})
    if endpoint is not None and endpoint not in known:
        message = f"endpoint must be one of {', '.join(known)}, got {endpoint!r}"
        return error_response(request, 400, "invalid_parameter", message)

    first = None if since is None else int(since)
    snapshot = request.app[STATS].snapshot(first, endpoint)
    return json_response(request, orjson.dumps(snapshot))


def _authorize(request: web.Request) -> web.Response | None:
    try:
        request.app[TOKENS].check(request.headers.get("Authorization"))
    except AuthError as error:
        return _auth_error(request, error)

    return None


def _auth_error(request: web.Request, error: AuthError) -> web.Response:
    body = {"error": error.code, "error_description": error.description}
    headers = {"WWW-Authenticate": error.challenge} if error.challenge else None
    return json_response(request, orjson.dumps(body), error.status, headers)


def error_response(
    request: web.Request, status: int, code: str, message: str
) -> web.Response:
    """A JSON error answer: ``{"error": code, "message": message}``."""
    body = orjson.dumps({"error": code, "message": message})
    return json_response(request, body, status)


def json_response(
    request: web.Request,
    body: bytes,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    """A JSON answer, gzip-compressed when large and the client accepts gzip."""
    response = web.Response(
        body=body, status=status, content_type="application/json", headers=headers
    )
    min_bytes = request.app[SETTINGS].gzip_min_bytes
    if min_bytes is None or len(body) < min_bytes:
        return response

    if _accepts_gzip(request.headers.get("Accept-Encoding", "")):
        packer = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
        response.body = packer.compress(body) + packer.flush()
        response.headers["Content-Encoding"] = "gzip"

    response.headers["Vary"] = "Accept-Encoding"
    return response


def _accepts_gzip(accept_encoding: str) -> bool:
    """Whether ``gzip`` (or ``*``) is listed without ``q=0`` (RFC 9110 §12.5.3)."""
    for item in accept_encoding.split(","):
        coding, _, parameters = item.partition(";")
        if coding.strip().lower() not in ("gzip", "*"):
            continue

        quality = parameters.strip().removeprefix("q=").strip() or "1"
        try:
            return float(quality) > 0
        except ValueError:
            return False

    return False


def check_retired_exist(tenant: Tenant, retired: frozenset[tuple[int, str]]) -> None:
    """A retired signal the tenant does not list would change nothing: a typo."""
    for database_id, index in sorted(retired):
        try:
            tenant.signal(database_id, index)
        except KeyError:
            raise ConfigurationError(
                f"cannot retire index {index!r} of database {database_id}: the "
                "tenant lists no such signal"
            ) from None
