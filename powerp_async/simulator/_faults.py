"""The scenario's imperfections: latency, random failures and a full outage.

Random draws come from generators seeded by the simulator's seed, one per concern, so
a run that enables latency draws the same faults as one that does not. Sequential
requests therefore meet the same faults in every run; concurrent ones meet the same
sequence of faults in the order they arrive.

A ``reset`` writes the status line, the headers and part of the body of the real
answer (chunked, so the client cannot know the length in advance), then aborts the
connection: the client sees a 200 whose body breaks off, the failure that escapes
retry logic which looks at statuses only.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
import random
from typing import Final

from aiohttp import web

from ._answers import Answers, json_error, proxy_page
from ._exchange import CONNECTION_RESET, is_query, limited_query
from ._scenario import FaultKind, Faults, Latency, Outage
from ._schedule import RunClock
from ._settings import Handler

logger = logging.getLogger("powerp_async.simulator.faults")

UNAVAILABLE_RETRY_AFTER_S: Final = 1.0
"""What a random 503 asks a client to wait; an outage's 503 says when it ends."""


class FaultPicker:
    """Draws, per request, no fault (probability ``1 - rate``) or a kind by weight.

    One uniform draw decides both, so the share of each kind over a long run is
    ``rate * weight / total weight`` and the sequence depends on the seed only.
    """

    __slots__ = ("_bounds", "_kinds", "_rate", "_rng")

    def __init__(self, faults: Faults, rng: random.Random) -> None:
        self._rate = faults.rate
        self._rng = rng
        self._kinds = [kind for kind, _ in faults.mix]
        weights = list(itertools.accumulate(weight for _, weight in faults.mix))
        self._bounds = [faults.rate * bound / weights[-1] for bound in weights]

    def pick(self) -> FaultKind | None:
        draw = self._rng.random()
        if draw >= self._rate:
            return None

        position = bisect.bisect_right(self._bounds, draw)
        return self._kinds[min(position, len(self._kinds) - 1)]


class LatencyModel:
    """Seconds an answer takes: lognormal around the median, plus a cost per point."""

    __slots__ = ("_log_median", "_per_point_s", "_rng", "_spread")

    def __init__(self, latency: Latency, rng: random.Random) -> None:
        self._log_median = math.log(latency.median_ms / 1000)
        self._spread = latency.spread
        self._per_point_s = latency.per_point_us / 1_000_000
        self._rng = rng

    def sample_s(self, points: int) -> float:
        base_s = self._rng.lognormvariate(self._log_median, self._spread)
        return base_s + points * self._per_point_s


class Slowness:
    """Delays every API answer by a draw of the latency model before it is written."""

    __slots__ = ("_answers", "_model")

    def __init__(self, model: LatencyModel, answers: Answers) -> None:
        self._model = model
        self._answers = answers

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        query = await limited_query(request)
        points = query.cost_points if query is not None else 0
        await self._answers.hold(self._model.sample_s(points))
        return await handler(request)


class RandomFaults:
    """Fails a share of the queries that passed every limit, as the mix says."""

    __slots__ = ("_answers", "_picker")

    def __init__(self, picker: FaultPicker, answers: Answers) -> None:
        self._picker = picker
        self._answers = answers

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if not is_query(request):
            return await handler(request)

        kind = self._picker.pick()
        if kind is None:
            return await handler(request)

        logger.debug("injecting a %s fault", kind)
        if kind == "reset":
            return await _reset_mid_body(request, await handler(request))

        return self._answer(kind)

    def _answer(self, kind: FaultKind) -> web.Response:
        if kind == "500":
            return json_error(500, "internal_error", "the query failed on the server")

        if kind == "502":
            return proxy_page(502, "The backend sent an invalid answer.")

        if kind == "504":
            return proxy_page(504, "The backend did not answer in time.")

        message = "the service is overloaded; expected to accept queries again soon"
        headers = self._answers.retry_after(UNAVAILABLE_RETRY_AFTER_S)
        return json_error(503, "unavailable", message, headers)


class OutageWindow:
    """503 for every API request while the outage lasts, saying when it ends."""

    __slots__ = ("_answers", "_outage", "_run")

    def __init__(self, outage: Outage, run: RunClock, answers: Answers) -> None:
        self._outage = outage
        self._run = run
        self._answers = answers

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        elapsed_s = self._run.elapsed_s()
        if not self._outage.covers(elapsed_s):
            return await handler(request)

        left_s = self._outage.ends_s - elapsed_s
        message = (
            f"the service is down for maintenance; expected back in {left_s:.3f} s"
        )
        return await self._answers.refuse(503, "unavailable", message, left_s)


async def _reset_mid_body(
    request: web.Request, answer: web.StreamResponse
) -> web.StreamResponse:
    body = answer.body if isinstance(answer, web.Response) else None
    if not isinstance(body, bytes) or answer.status != 200 or request.transport is None:
        return answer  # an error answer or nothing to cut: send it whole

    stream = web.StreamResponse(status=200)
    for name in ("Content-Type", "Content-Encoding", "Vary"):
        if name in answer.headers:
            stream.headers[name] = answer.headers[name]

    stream.enable_chunked_encoding()
    await stream.prepare(request)
    await stream.write(body[: max(1, len(body) // 2)])
    request.transport.abort()
    request[CONNECTION_RESET] = True
    return stream
