"""How the scenario's refusals and failures are written.

Throttles (429) and unavailability (503) carry ``Retry-After`` in the scenario's form:
whole seconds rounded up, fractional seconds to the millisecond rounded up, an HTTP
date (RFC 9110 section 10.2.3) with a ``Date`` header to measure it against, or no
header at all. Rounding is always up, so a client that waits what it is told is never
early. Errors a proxy would write (502, 504) come as HTML, the others as the JSON the
API uses for its own errors.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate
from http import HTTPStatus
from typing import Final

import orjson
from aiohttp import web

from ._scenario import RetryAfterForm
from ._schedule import RunClock

Sleep = Callable[[float], Awaitable[None]]

_PROXY_PAGE: Final = (
    "<!DOCTYPE html>\n<html><head><title>{status} {reason}</title></head>\n"
    "<body><h1>{status} {reason}</h1><p>{text}</p><hr><p>edge proxy</p></body>"
    "</html>\n"
)


class Answers:
    """Writes refusals and failures; sleeps ``refusal_s`` before each refusal.

    HTTP dates are counted from a whole wall-clock second taken at construction plus
    the run's elapsed time, so they follow a fake clock in tests. They may lag the real
    time by under a second; ``Date`` and ``Retry-After`` lag together, so the wait a
    client computes from the two is unaffected.
    """

    __slots__ = ("_form", "_refusal_s", "_run", "_sleep", "_wall_origin_s")

    def __init__(
        self,
        form: RetryAfterForm,
        run: RunClock,
        *,
        refusal_s: float = 0.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._form = form
        self._run = run
        self._refusal_s = refusal_s
        self._sleep = sleep
        self._wall_origin_s = math.floor(time.time())

    def retry_after(self, wait_s: float) -> dict[str, str]:
        """The headers that tell a client to wait ``wait_s`` seconds."""
        if self._form == "seconds":
            return {"Retry-After": str(max(1, math.ceil(wait_s - 1e-9)))}

        if self._form == "fractional":
            milliseconds = max(1, math.ceil(wait_s * 1000 - 1e-6))
            return {"Retry-After": f"{milliseconds / 1000:.3f}"}

        if self._form == "http-date":
            now_s = self._wall_origin_s + self._run.elapsed_s()
            return {
                "Date": formatdate(math.floor(now_s), usegmt=True),
                "Retry-After": formatdate(math.ceil(now_s + wait_s), usegmt=True),
            }

        return {}

    async def hold(self, seconds: float) -> None:
        """Keep a request waiting, as a backend that is slow to give up does."""
        await self._sleep(seconds)

    async def refuse(
        self, status: int, code: str, message: str, wait_s: float | None = None
    ) -> web.Response:
        """A fast JSON refusal, with ``Retry-After`` when ``wait_s`` is given."""
        if self._refusal_s > 0:
            await self._sleep(self._refusal_s)

        headers = self.retry_after(wait_s) if wait_s is not None else None
        return json_error(status, code, message, headers)


def json_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """``{"error": code, "message": message}``, the API's own error shape."""
    body = orjson.dumps({"error": code, "message": message})
    return web.Response(
        body=body, status=status, content_type="application/json", headers=headers
    )


def proxy_page(status: int, text: str) -> web.Response:
    """An HTML error page such as a reverse proxy writes when the backend fails it."""
    reason = HTTPStatus(status).phrase
    page = _PROXY_PAGE.format(status=status, reason=reason, text=text)
    return web.Response(text=page, status=status, content_type="text/html")
