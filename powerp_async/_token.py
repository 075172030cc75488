"""OAuth2 client-credentials tokens: fetched once, shared, renewed before they expire.

Many workers ask for a token at once; only the first triggers a request and the others
wait for its result (single flight). A token is renewed a little before ``expires_in``
runs out, and at once when the server refuses it with a 401, but only if nobody renewed
it in the meantime, so a burst of 401s from in-flight requests causes one renewal.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from typing import Final, TypeGuard

import aiohttp
import anyio
import orjson

from ._http import AnswerTooLongError, error_for, send
from ._redact import excerpt, mask_url, remember_secret
from ._retry import backoff_s
from .errors import (
    AuthenticationError,
    MalformedResponseError,
    ServerError,
    ThrottledError,
    TransportError,
)

logger = logging.getLogger("powerp_async.token")

RENEW_MARGIN_S: Final = 60.0
TOKEN_ATTEMPTS: Final = 4
MAX_TOKEN_ANSWER_BYTES: Final = 1 << 20
"""A token answer is a few kilobytes; one that runs on is not read to the end."""
_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f]")


class TokenManager:
    """Holds the bearer token of one client; never shows it in a repr or a log."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        timeout_s: float = 30.0,
        max_wait_s: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._session = session
        self._token_url = token_url
        self._client_id = client_id
        self._client_secret = client_secret
        remember_secret(client_secret)
        self._timeout_s = timeout_s
        # The token endpoint's retries wait no longer in all than queries would for a
        # server that fails everything (``max_outage_s``), however long its Retry-After.
        self._max_wait_s = max_wait_s
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._expires_at = 0.0
        self._lock = anyio.Lock()
        self.requests_made = 0

    def __repr__(self) -> str:
        state = "held" if self._token else "none"
        return f"<TokenManager {mask_url(self._token_url)} token={state}>"

    async def token(self) -> str:
        """A valid token, from the cache or freshly fetched."""
        current = self._token
        if current is not None and self._clock() < self._renew_at:
            return current

        async with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                await self._renew()
            assert self._token is not None
            return self._token

    async def renew_after_rejection(self, rejected: str) -> str:
        """After a 401: renew, unless another caller already replaced ``rejected``."""
        token, _ = await self.replace(rejected)
        return token

    async def replace(self, rejected: str) -> tuple[str, bool]:
        """After a 401: the token to try next, and whether this call fetched it.

        A token another caller fetched may itself be old enough to expire on the
        way; only a token fetched for this very rejection proves, when it is refused
        too, that the credentials cannot query.
        """
        async with self._lock:
            renewed = self._token is None or self._token == rejected
            if renewed:
                logger.info("token refused by the server; renewing it")
                await self._renew()
            assert self._token is not None
            return self._token, renewed

    def refused(self, token: str) -> None:
        """The server answered ``token`` with a 401: whoever asks next for a token
        gets a new one, rather than sending this one again while the request refused
        waits for its next turn."""
        if token == self._token:
            self._renew_at = min(self._renew_at, self._clock())

    def outlived(self, token: str) -> bool:
        """Whether ``token`` may have expired by now: replaced since, or its lifetime
        over. A refusal of such a token says nothing about the credentials."""
        return token != self._token or self._clock() >= self._expires_at

    def secrets(self) -> tuple[str | None, ...]:
        """What must never be shown: used to scrub text before it leaves the client."""
        return (self._client_secret, self._token)

    async def _renew(self) -> None:
        started_at = self._clock()
        for attempt in range(TOKEN_ATTEMPTS):
            try:
                requested_at = self._clock()
                self._store(await self._request(), requested_at)
                return
            except (ServerError, ThrottledError, TransportError) as error:
                # Requests that waited for their timeout count too: an endpoint that
                # never answers costs a whole timeout per try.
                waited_s = self._clock() - started_at
                if attempt == TOKEN_ATTEMPTS - 1 or waited_s >= self._max_wait_s:
                    raise
                delay = min(_retry_delay(error, attempt), self._max_wait_s - waited_s)
                logger.warning(
                    "token request failed (%s); retrying in %.1f s", error, delay
                )
                await anyio.sleep(delay)

    async def _request(self) -> dict[str, object]:
        form = {
            "client_id": self._client_id,
            "client_secret": self._client_secret,
            "grant_type": "client_credentials",
        }
        self.requests_made += 1
        try:
            response = await send(
                self._session,
                "POST",
                self._token_url,
                headers={"Accept": "application/json"},
                form=form,
                timeout_s=self._timeout_s,
                max_bytes=MAX_TOKEN_ANSWER_BYTES,
            )
        except AnswerTooLongError as error:
            raise MalformedResponseError(
                f"token response: the answer ran past {error.max_bytes:,} bytes, far "
                "more than a token takes; the rest was not read",
                url=mask_url(self._token_url),
            ) from None
        if response.status in (400, 401, 403):
            raise AuthenticationError(
                "authentication failed: the server refused the client credentials "
                f"(HTTP {response.status}: {excerpt(response.body, 120)}); check "
                "POWERP_CLIENT_ID and POWERP_CLIENT_SECRET",
                method="POST",
                url=mask_url(self._token_url),
                status=response.status,
                excerpt=excerpt(response.body, 120),
            )
        if response.status >= 300:
            raise error_for(
                response, method="POST", url=self._token_url, what="token request"
            )
        return self._parse(response.body)

    def _parse(self, body: bytes) -> dict[str, object]:
        # The body may hold the token itself, so no error keeps an excerpt of it.
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError as error:
            fails_at: int | None = error.pos + 1
        else:
            fails_at = None
        if fails_at is not None:
            # Where it failed, not what was there: NaN for a lifetime, say. Raised
            # apart from the parser's error, which holds the whole body (a page
            # echoing the form, secret included).
            raise MalformedResponseError(
                f"token response: expected a JSON object, got a body that is not "
                f"JSON (it fails at character {fails_at})",
                url=mask_url(self._token_url),
            )
        if not isinstance(answer, dict) or not isinstance(
            answer.get("access_token"), str
        ):
            raise MalformedResponseError(
                "token response: expected a JSON object with a string 'access_token'",
                url=mask_url(self._token_url),
            )
        if not answer["access_token"].strip():
            raise MalformedResponseError(
                "token response: its 'access_token' is empty",
                url=mask_url(self._token_url),
            )
        if _CONTROL_CHARACTERS.search(answer["access_token"]):
            # Sent on, it would break the header of every request it authorises.
            raise MalformedResponseError(
                "token response: its 'access_token' holds control characters, such "
                "as a line break, which no request header may carry",
                url=mask_url(self._token_url),
            )
        return answer

    def _store(self, answer: dict[str, object], requested_at: float) -> None:
        token = answer["access_token"]
        assert isinstance(token, str)
        remember_secret(token)
        self._token = token
        expires_in = answer.get("expires_in")
        if _lifetime_given(expires_in):
            # Counted from the request, not the answer: the server's clock started
            # somewhere in between, and a slow answer has used up part of the life.
            lifetime_s = float(expires_in)
            margin = min(RENEW_MARGIN_S, lifetime_s / 10)
            self._expires_at = requested_at + lifetime_s
            self._renew_at = self._expires_at - margin
            logger.info("token obtained (valid for %s s)", expires_in)
        else:
            # No lifetime given (RFC 6749 makes it optional), or one already over,
            # which taken at its word would fetch a token for every query: keep it
            # until the server refuses it.
            self._expires_at = self._renew_at = float("inf")
            logger.info(
                "token obtained (expires_in %r: used until the server refuses it)",
                expires_in,
            )


def _lifetime_given(expires_in: object) -> TypeGuard[int | float]:
    """Whether ``expires_in`` is a lifetime a token can be renewed by: a positive
    number of seconds."""
    return (
        isinstance(expires_in, int | float)
        and not isinstance(expires_in, bool)
        and expires_in > 0
    )


def _retry_delay(error: Exception, attempt: int) -> float:
    retry_after = getattr(error, "retry_after", None)
    return retry_after if retry_after is not None else backoff_s(attempt)
