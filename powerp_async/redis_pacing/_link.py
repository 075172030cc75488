"""A shared pacer's link to its tenant in Redis: connecting, checking, leaving.

Both shared pacers hold one: it checks the address and key, masks the password in
everything it says, and gives up on a call after ``timeout_s`` without retrying, since
the pacer decides what an unanswered call means.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import socket
from collections.abc import Mapping
from typing import Final, Protocol

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    RedisError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .._rate_backend import backend_password, check_backend_url, check_key
from .._redact import mask_url, remember_secret, scrub
from ..errors import ConfigurationError

UNREACHABLE: Final = (RedisError, OSError)
"""What a Redis call may raise when the server is gone, busy or refusing."""


class Members(Protocol):
    """Where a pacer is counted among its tenant's processes."""

    async def leave(self) -> None: ...


class RedisLink:
    """The connection to the Redis server at ``url`` for the tenant ``key``."""

    def __init__(
        self, url: str, key: str, timeout_s: float, kinds: Mapping[str, str]
    ) -> None:
        check_backend_url(url)
        check_key(key)
        self._password = backend_password(url)
        remember_secret(self._password)
        self.shown_url = mask_url(url)
        """The address with its password masked, for every message."""
        self.key = key
        self._kinds = kinds
        self.redis = connect(url, timeout_s, self.shown_url)
        self.member = member_id()
        """This process's name among the tenant's processes."""

    async def acheck(self) -> None:
        """Refuse a backend that does not answer now, or whose keys for this tenant
        hold something else, saying why."""
        await check_reachable(self.redis, self.shown_url, self._password)
        await check_kinds(self.redis, self.shown_url, self.key, self._kinds)

    async def aclose(self, members: Members | None) -> None:
        """Leave ``members`` (if the pacer ever joined them); close the connection."""
        if members is not None:
            with contextlib.suppress(*UNREACHABLE):
                await members.leave()

        with contextlib.suppress(*UNREACHABLE):  # a connection broken already
            await self.redis.aclose()


def connect(url: str, timeout_s: float, shown_url: str) -> Redis:
    """A client of the Redis server at ``url`` that gives up after ``timeout_s`` and
    never retries on its own: a pacer decides what an unanswered call means."""
    try:
        return Redis.from_url(
            url,
            socket_timeout=timeout_s,
            socket_connect_timeout=timeout_s,
            retry=Retry(NoBackoff(), 0),
        )
    except ValueError as error:
        # An option of the URL's query that Redis's client cannot read (?db=x).
        reason = said(error)
    raise ConfigurationError(f"rate_backend: {shown_url}: {reason}")


async def check_kinds(
    redis: Redis, shown_url: str, tenant: str, kinds: Mapping[str, str]
) -> None:
    """Refuse keys that hold another kind of value than this pace keeps there: every
    call on them would fail, and each process would pace alone, without a word."""
    for key, kind in kinds.items():
        found = await _kind_of(redis, shown_url, key)
        if found not in ("none", kind):
            raise ConfigurationError(
                f"rate_backend: {shown_url}: key {key!r} holds a {found}, where the "
                f"shared pace of tenant {tenant!r} keeps a {kind}; delete it, or "
                "name another tenant key (rate_key, --rate-key)"
            )


async def _kind_of(redis: Redis, shown_url: str, key: str) -> str:
    try:
        found: bytes | str = await redis.type(key)
    except UNREACHABLE as error:
        reason = said(error)
    else:
        return found.decode() if isinstance(found, bytes) else found

    raise ConfigurationError(
        f"rate_backend: {shown_url} failed to say what key {key!r} holds ({reason})"
    )


def what_failed(error: BaseException) -> str:
    """A failed call in words: the server gone or slow, or an error it answered."""
    if isinstance(error, (RedisConnectionError, RedisTimeoutError, OSError)):
        return f"unreachable ({said(error)})"

    return f"answered an error ({said(error)})"


async def check_reachable(redis: Redis, shown_url: str, password: str | None) -> None:
    """Refuse a backend that does not answer now: unreachable, refusing the
    credentials, or answering an error, each said with the masked address."""
    try:
        await redis.ping()
    except (AuthenticationError, AuthorizationError) as error:
        given = (
            "the URL gives no password and the server wants one"
            if password is None
            else "wrong user or password"
        )
        raise ConfigurationError(
            f"rate_backend: {shown_url} refused the credentials ({given}): check the "
            "user and password in the URL"
        ) from error
    except (RedisConnectionError, RedisTimeoutError, OSError) as error:
        raise ConfigurationError(
            f"rate_backend: {shown_url} is unreachable ({said(error)}); a shared pace "
            "needs its Redis server running when the run starts"
        ) from error
    except RedisError as error:
        raise ConfigurationError(
            f"rate_backend: {shown_url} answered the connection check with an error "
            f"({said(error)})"
        ) from error


def said(error: BaseException) -> str:
    """What an error says, secrets masked; its type's name if it says nothing."""
    return scrub(str(error)) or type(error).__name__


def member_id() -> str:
    """This pacer's name among the tenant's processes: host, process, and a nonce
    that tells two clients of one process apart."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
