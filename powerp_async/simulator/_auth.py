"""OAuth2 client credentials (RFC 6749 §4.4) and Bearer tokens (RFC 6750).

Tokens are random and opaque, kept in memory with their expiry on an injectable
monotonic clock, so tests can expire them without sleeping. Neither the client secret
nor a token is ever logged or put in a message.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import math
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_plus

logger = logging.getLogger("powerp_async.simulator.auth")

_PRUNE_ABOVE: Final = 1024
"""Expired tokens are forgotten once this many are held."""


class AuthError(Exception):
    """A refused request: HTTP status, OAuth ``error`` code and a description."""

    def __init__(self, status: int, code: str, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.challenge: str | None = None


@dataclass(frozen=True, slots=True)
class Credentials:
    client_id: str
    client_secret: str

    def __repr__(self) -> str:
        return f"Credentials(client_id={self.client_id!r}, client_secret=***)"


class TokenStore:
    """The access tokens issued, each with its expiry on ``clock`` (seconds)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float]) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._expiry_by_token: dict[str, float] = {}

    def issue(self) -> tuple[str, int]:
        """A new token and its lifetime in whole seconds (rounded down, never late)."""
        now = self._clock()
        if len(self._expiry_by_token) > _PRUNE_ABOVE:
            self._forget_expired(now)

        token = secrets.token_urlsafe(32)
        self._expiry_by_token[token] = now + self._ttl_s
        return token, math.floor(self._ttl_s)

    def check(self, authorization: str | None) -> None:
        """Accept a valid ``Bearer`` header, else raise :class:`AuthError` (401)."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _invalid_token(
                "no Bearer token: expected the header 'Authorization: Bearer "
                "<access_token>'"
            )

        expiry = self._expiry_by_token.get(token.strip())
        if expiry is None:
            raise _invalid_token("the access token is not known to this server")

        if self._clock() >= expiry:
            raise _invalid_token("the access token has expired: request a new one")

    def revoke_all(self) -> None:
        """Forget every token, as a server restart or a key rotation would."""
        self._expiry_by_token.clear()

    def _forget_expired(self, now: float) -> None:
        expired = [t for t, expiry in self._expiry_by_token.items() if expiry <= now]
        for token in expired:
            del self._expiry_by_token[token]


def _invalid_token(description: str) -> AuthError:
    error = AuthError(401, "invalid_token", description)
    error.challenge = 'Bearer error="invalid_token"'
    return error


def client_credentials(
    form: Mapping[str, str], authorization: str | None, expected: Credentials
) -> None:
    """Check a token request; raise :class:`AuthError` for the RFC 6749 §5.2 answer.

    The grant type is checked first, then the client: either in the form or in HTTP
    Basic auth (§2.3.1), never both.
    """
    grant_type = form.get("grant_type")
    if not grant_type:
        raise AuthError(
            400,
            "invalid_request",
            "missing grant_type: expected grant_type=client_credentials",
        )

    if grant_type != "client_credentials":
        raise AuthError(
            400,
            "unsupported_grant_type",
            f"grant_type must be client_credentials, got {grant_type[:40]!r}",
        )

    basic = _basic_credentials(authorization)
    in_form = "client_id" in form or "client_secret" in form
    if basic is not None and in_form:
        raise AuthError(
            400,
            "invalid_request",
            "client credentials came both in HTTP Basic auth and in the form: "
            "expected exactly one of the two",
        )

    given = basic or Credentials(
        form.get("client_id", ""), form.get("client_secret", "")
    )
    if not _same(given, expected):
        raise _invalid_client("unknown client or wrong secret", basic=basic is not None)

    logger.debug("access token issued to client %s", given.client_id)


def _invalid_client(description: str, *, basic: bool) -> AuthError:
    error = AuthError(401, "invalid_client", description)
    # RFC 6749 §5.2: a client that tried Basic auth is answered with its challenge.
    error.challenge = 'Basic realm="PowerP"' if basic else None
    return error


def _basic_credentials(authorization: str | None) -> Credentials | None:
    scheme, _, encoded = (authorization or "").strip().partition(" ")
    if scheme.lower() != "basic":
        return None

    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        decoded = ""

    client_id, colon, secret = decoded.partition(":")
    if not colon:
        raise _invalid_client(
            "malformed HTTP Basic credentials: expected base64 of "
            "'client_id:client_secret'",
            basic=True,
        )

    # RFC 6749 §2.3.1: both parts are form-urlencoded before they are joined.
    return Credentials(unquote_plus(client_id), unquote_plus(secret))


def _same(given: Credentials, expected: Credentials) -> bool:
    """Compare in constant time, so response timing reveals nothing of the secret."""
    same_id = hmac.compare_digest(given.client_id.encode(), expected.client_id.encode())
    same_secret = hmac.compare_digest(
        given.client_secret.encode(), expected.client_secret.encode()
    )
    return same_id and same_secret
