"""The one place that decides what of a URL, a secret or a body may be shown.

Every ``repr``, log call and error message that mentions a URL goes through
:func:`mask_url`; every excerpt of a response body goes through :func:`excerpt`.

Servers and proxies sometimes echo what they were sent, the form with the client
secret or the bearer token included. So every secret the client holds is remembered
here (:func:`remember_secret`) and masked wherever it shows up: in excerpts, in
messages passed through :func:`scrub`, and in every record of the ``powerp_async``
loggers. The register is process-wide on purpose: masking another client's secret too
is harmless, missing one is not.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

MASK: Final = "***"
EXCERPT_CHARS: Final = 200

_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]+")
_SECRET_QUERY_KEYS: Final = re.compile(
    r"(?i)((?:client_secret|secret|token|access_token|password|api_key|key)=)[^&]*"
)
_BEARER: Final = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_USER_INFO: Final = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^\s/@]+@")
"""``user:password@`` in a URL quoted inside a message, such as a Redis address."""
_SHORTEST_SECRET: Final = 4  # shorter strings would mask ordinary words
FRAGMENT_CHARS: Final = 10
"""The shortest piece of a secret masked on its own: a server that echoes a token
cut short (``eyJhbGciOiJIUzI1…``) shows part of it. Shorter pieces would mask
ordinary words of a secret made of words, and give little away."""

# Replaced whole, never changed in place, so that reading them takes no lock: a signal
# handler may scrub a message while the main thread it interrupted is scrubbing too.
_secrets: frozenset[str] = frozenset()
_escaped_forms: tuple[re.Pattern[str], ...] = ()
_fragments: frozenset[str] = frozenset()
"""Every run of ``FRAGMENT_CHARS`` characters of a remembered secret."""
_secrets_lock = threading.Lock()
"""Taken by writers only."""

_JSON_SHORT_ESCAPES: Final = {
    '"': r'\\+"',
    "\\": r"\\+",
    "/": r"\\+/",
    "\b": r"\\+b",
    "\f": r"\\+f",
    "\n": r"\\+n",
    "\r": r"\\+r",
    "\t": r"\\+t",
}
"""The two-character escapes a JSON writer may use, as patterns: with as many
backslashes as writing JSON into a JSON string again and again leaves."""

_HTML_NAMED: Final = {
    "&": r"&amp;",
    "<": r"&lt;",
    ">": r"&gt;",
    '"': r"&quot;",
    "'": r"&(?:apos|\#39);",
}
"""The named references an HTML writer may use, as patterns (numeric ones aside)."""


class SecretText(str):
    """A secret that is still a string to every API that takes one, but whose
    ``repr`` is masked: printing a structure that holds it, such as
    ``dataclasses.asdict`` of a configuration, shows ``'***'``. Asking for the text
    itself (``str()``, formatting, encoding) still gives the secret; that is what
    the token request needs."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)

    def __deepcopy__(self, memo: dict[int, Any]) -> SecretText:
        return self  # immutable; a copy would only lose the masking by accident


def remember_secret(secret: str | None) -> None:
    """Mask ``secret`` from now on, wherever it appears: as it is, URL-encoded (as
    a form sends it), and inside a JSON string or an HTML page (a login page that
    echoes it), however its writer escaped it."""
    global _secrets, _escaped_forms, _fragments
    if not secret or len(secret) < _SHORTEST_SECRET:
        return

    pattern = _escaped_pattern(secret)
    pieces = _pieces(secret)
    with _secrets_lock:
        if secret not in _secrets:
            _escaped_forms = (*_escaped_forms, pattern)
        _secrets = _secrets | {secret}
        _fragments = _fragments | pieces


def _pieces(secret: str) -> frozenset[str]:
    last = len(secret) - FRAGMENT_CHARS
    return frozenset(secret[i : i + FRAGMENT_CHARS] for i in range(last + 1))


def _escaped_pattern(secret: str) -> re.Pattern[str]:
    """Matches ``secret`` in a JSON string, in HTML or in a URL, each character as
    it is or escaped: in JSON as ``\\uXXXX`` in either case (a surrogate pair beyond
    the first plane), or as ``\\/``, ``\\"`` and the like; in HTML as ``&amp;``
    and the like, or as a decimal or hexadecimal reference; in a URL as the ``%XX``
    of each of its UTF-8 bytes in either case, or a space as ``+``. Writers differ
    in what they escape."""
    parts = []
    for character in secret:
        code = ord(character)
        options = [
            re.escape(character),
            *_unicode_escapes(code),
            rf"&\#0*{code};",
            rf"&\#[xX]0*(?i:{code:x});",
            "".join(f"%(?i:{byte:02x})" for byte in _utf8(character)),
        ]
        if character == " ":
            options.append(r"\+")
        for escapes in (_JSON_SHORT_ESCAPES, _HTML_NAMED):
            if character in escapes:
                options.append(escapes[character])
        parts.append(f"(?:{'|'.join(options)})")
    return re.compile("".join(parts))


def _utf8(character: str) -> bytes:
    # A token read from JSON may hold a lone surrogate, which UTF-8 cannot encode.
    return character.encode("utf-8", "surrogatepass")


def _unicode_escapes(code: int) -> list[str]:
    # One backslash or more: a JSON document echoed inside a JSON string (an error
    # description quoting the request) escapes the escape's own backslash.
    if code <= 0xFFFF:
        return [rf"\\+u(?i:{code:04x})"]

    high = 0xD800 + ((code - 0x10000) >> 10)
    low = 0xDC00 + ((code - 0x10000) & 0x3FF)
    return [rf"\\+u(?i:{high:04x})\\+u(?i:{low:04x})"]


def mask_url(url: str) -> str:
    """The URL with user info, secret-looking query values and any fragment replaced
    by ``***``.

    A password holding an unescaped ``/``, ``?``, ``#`` or ``@`` ends what ``urlsplit``
    takes for the host part early, so everything from the scheme to the last ``@`` is
    masked first: a path holding an ``@`` is masked too, which only hides more.
    """
    scheme, separator, rest = url.partition("://")
    if separator and "@" in rest:
        url = f"{scheme}://{MASK}@{rest.rpartition('@')[2]}"

    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK

    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{MASK}@{netloc.rpartition('@')[2]}"
    query = _SECRET_QUERY_KEYS.sub(rf"\g<1>{MASK}", parts.query)
    # No URL of the API or of a rate backend needs a fragment, and one pasted with
    # a sign-in link may carry a token, so none is shown.
    fragment = MASK if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    """A short, printable start of a response body, safe to put in a message."""
    if isinstance(body, bytes):
        # Cut before decoding: a malformed answer may be megabytes long.
        body = body[: limit * 8].decode("utf-8", "replace")
    text = scrub(body[: limit * 8])
    text = _SECRET_QUERY_KEYS.sub(rf"\g<1>{MASK}", text)
    text = _CONTROL.sub(" ", text).strip()
    if len(text) > limit:
        return text[: limit - 1] + "…"
    return text


def scrub(text: str, *secrets: str | None) -> str:
    """``text`` with bearer tokens, the user info of URLs, every remembered secret and
    ``secrets`` masked, and any piece of one at least ``FRAGMENT_CHARS`` long.

    Known shortcoming: a piece of a secret is found only as it is, not URL-encoded,
    escaped or recoded (as hexadecimal, say); a whole secret is found in those forms
    too."""
    text = _BEARER.sub(rf"\g<1>{MASK}", text)
    text = _USER_INFO.sub(rf"\g<1>{MASK}@", text)
    given = [s for s in secrets if s]
    known = sorted(_secrets.union(given), key=len, reverse=True)
    for secret in known:
        text = text.replace(secret, MASK)
    for pattern in _escaped_forms:
        text = pattern.sub(MASK, text)
    pieces = _fragments.union(*map(_pieces, given)) if given else _fragments
    return _mask_pieces(text, pieces)


def _mask_pieces(text: str, pieces: frozenset[str]) -> str:
    """``text`` with every stretch made of overlapping ``pieces`` masked as one."""
    if not pieces:
        return text

    stretches: list[list[int]] = []
    for start in range(len(text) - FRAGMENT_CHARS + 1):
        if text[start : start + FRAGMENT_CHARS] not in pieces:
            continue
        end = start + FRAGMENT_CHARS
        if stretches and start <= stretches[-1][1]:
            stretches[-1][1] = end
        else:
            stretches.append([start, end])

    for start, end in reversed(stretches):
        text = f"{text[:start]}{MASK}{text[end:]}"
    return text


def _install_record_scrubbing() -> None:
    """Mask remembered secrets in every record of the ``powerp_async`` loggers.

    A record factory reaches every child logger, which a filter on the parent would
    not (filters do not propagate). Records of other libraries pass untouched.
    """
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if record.name.startswith("powerp_async") and _secrets:
            message = record.getMessage()
            cleaned = scrub(message)
            if cleaned != message:
                record.msg, record.args = cleaned, None
        return record

    logging.setLogRecordFactory(factory)


_install_record_scrubbing()
