"""The shared rate backend's settings, checked without importing Redis.

A ``rate_backend`` URL (``redis://HOST:PORT[/DB]``, or ``rediss://`` for TLS) names
the Redis server through which several processes share one tenant's pace; the
tenant key names the schedule they share there. Both are checked here, in the core,
so a mistake is reported before anything starts; the pacer itself lives in
:mod:`powerp_async.redis_pacing`, which needs the ``redis`` extra.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from ._redact import mask_url
from .errors import ConfigurationError

BACKEND_SCHEMES: Final = ("redis", "rediss")
KEY_PREFIX: Final = "powerp"
MAX_KEY_CHARS: Final = 200
DERIVED_KEY_HEX_CHARS: Final = 24
"""96 bits of the digest: no two tenants of one Redis server meet by chance."""

_KEY_CHARACTERS: Final = re.compile(r"[!-~]+")
"""Printable ASCII without spaces; braces are refused apart (they are hash tags)."""


def check_backend_url(url: str) -> None:
    """Refuse anything but ``redis[s]://HOST[:PORT][/DB]``, naming what is wrong."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018  # raises ValueError for a port that is no number
    except ValueError:
        parts, host = None, None
    expected = "a Redis URL such as 'redis://127.0.0.1:6379/0'"
    if parts is None or parts.scheme not in BACKEND_SCHEMES or not host:
        raise ConfigurationError(
            f"rate_backend: expected {expected}, got {mask_url(url)!r}"
        )

    database = parts.path.removeprefix("/")
    if database and not database.isdigit():
        raise ConfigurationError(
            f"rate_backend: expected a database number after the port, as in "
            f"{expected}, got {mask_url(url)!r}"
        )


def backend_password(url: str) -> str | None:
    """The password in a backend URL (``:PASSWORD@`` or ``?password=``), to be
    masked wherever it could show up."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return None
    if password:
        return unquote(password)

    given = parse_qs(parts.query).get("password")
    return given[-1] if given else None


def check_key(key: str) -> None:
    """A tenant key: up to 200 printable characters, no spaces and no braces."""
    if not 1 <= len(key) <= MAX_KEY_CHARS or not _KEY_CHARACTERS.fullmatch(key):
        raise ConfigurationError(
            f"rate_key: expected 1 to {MAX_KEY_CHARS} printable characters without "
            f"spaces, got {key!r}"
        )
    if "{" in key or "}" in key:
        raise ConfigurationError(
            "rate_key: expected no braces (Redis reads them as a hash tag), got "
            f"{key!r}"
        )


def tenant_key(base_url: str, client_id: str) -> str:
    """The key of a tenant's schedule: a digest of the API address and client id.

    The secret never enters it, so the key in Redis reveals nothing that could sign
    in; two processes reaching the same API with the same client id share it.

    >>> tenant_key("http://127.0.0.1:8765/rt-api/api", "demo")
    'c6fd42a35458a729d1868c27'
    """
    digest = hashlib.sha256(f"{base_url}\n{client_id}".encode()).hexdigest()
    return digest[:DERIVED_KEY_HEX_CHARS]
