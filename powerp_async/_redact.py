"""The one place that decides what of a URL, a secret or a body may be shown.

Every ``repr``, log call and error message that mentions a URL goes through
:func:`mask_url`; every excerpt of a response body goes through :func:`excerpt`.
"""

from __future__ import annotations

import re
from typing import Final
from urllib.parse import urlsplit, urlunsplit

MASK: Final = "***"
EXCERPT_CHARS: Final = 200

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_SECRET_QUERY_KEYS: Final = re.compile(
    r"(?i)((?:client_secret|secret|token|access_token|password|api_key|key)=)[^&]*"
)
_BEARER: Final = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def mask_url(url: str) -> str:
    """The URL with user info and secret-looking query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK

    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = _SECRET_QUERY_KEYS.sub(rf"\g<1>{MASK}", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable start of a response body, safe to put in a message."""
    if isinstance(body, bytes):
        # Cut before decoding: a malformed answer may be megabytes long.
        body = body[: limit * 8].decode("utf-8", "replace")
    text = _BEARER.sub(rf"\g<1>{MASK}", body[: limit * 2])
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def scrub(text: str, *secrets: str | None) -> str:
    """Replace each non-empty secret in ``text`` by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    return text
