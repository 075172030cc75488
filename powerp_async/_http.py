"""One HTTP exchange, and the translation of its outcome into this package's errors.

Transport failures are translated here and nowhere else. The body is read inside the
same guard as the headers, so a connection reset mid-body is a ``TransportError`` that
the engine retries, not an escaped aiohttp exception.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson

from ._redact import excerpt, mask_url
from ._retry import parse_retry_after
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    PayloadTooLargeError,
    PermissionDeniedError,
    ServerError,
    ThrottledError,
    TransportError,
)

logger = logging.getLogger("powerp_async.http")

_CHUNK_BYTES: Final = 1 << 20
"""Read at a time where an answer's length is bounded: a full answer is some 2 MB."""


@dataclass(frozen=True, slots=True)
class Response:
    """What came back: status, headers, the whole body and how long it took."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    elapsed_s: float


async def send(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    json_body: Any = None,
    form: Mapping[str, str] | None = None,
    timeout_s: float,
    max_bytes: int | None = None,
) -> Response:
    """Send one request and read the whole answer, or raise ``TransportError``.

    With ``max_bytes``, an answer longer than that once decompressed raises
    :class:`AnswerTooLongError` as soon as it is read that far, so a server (or a
    proxy) sending far more than was asked cannot fill the memory.
    """
    shown_url = mask_url(url)
    data = orjson.dumps(json_body) if json_body is not None else form
    all_headers = dict(headers or {})
    if json_body is not None:
        all_headers["Content-Type"] = "application/json"
    # Asked for in so many words: aiohttp would offer Brotli too where its package is
    # installed, which this module does not undo.
    all_headers.setdefault("Accept-Encoding", "gzip, deflate")

    if session.closed:
        # Closed by another task (``aclose``) while this request waited its turn.
        raise RuntimeError("the client was closed while this request waited to be sent")

    started = time.monotonic()
    failure: TransportError | None = None
    try:
        async with session.request(
            method,
            url,
            headers=all_headers,
            data=data,
            timeout=aiohttp.ClientTimeout(total=timeout_s),
            # A redirect would re-send the form (client secret included) to wherever
            # it points, past the checks made on the configured URL.
            allow_redirects=False,
        ) as answer:
            body = await _read_answer(answer, max_bytes)
            status, answer_headers = answer.status, answer.headers
    except UndecodableError as error:
        failure = TransportError(
            f"{method} {shown_url}: {error}", method=method, url=shown_url
        )
    except TimeoutError:
        failure = TransportError(
            f"{method} {shown_url}: no complete answer within {timeout_s:g} s",
            method=method,
            url=shown_url,
            timed_out=True,
        )
    except aiohttp.ClientError as error:
        failure = TransportError(
            f"{method} {shown_url}: {_describe(error)}", method=method, url=shown_url
        )
    if failure is not None:
        # Raised apart from aiohttp's error, which a traceback would print as its
        # cause or context: its words may quote what the server sent (a header
        # echoing the token), unmasked.
        raise failure

    elapsed_s = time.monotonic() - started
    logger.debug("%s %s -> %d in %.3f s", method, shown_url, status, elapsed_s)
    return Response(status, answer_headers, body, elapsed_s)


class AnswerTooLongError(Exception):
    """An answer ran past the length the caller allowed; ``read_bytes`` were read."""

    def __init__(self, read_bytes: int, max_bytes: int) -> None:
        super().__init__(f"the answer ran past {max_bytes:,} bytes")
        self.read_bytes = read_bytes
        self.max_bytes = max_bytes


async def _read_answer(answer: aiohttp.ClientResponse, max_bytes: int | None) -> bytes:
    """The body, or none for a refusal or failure whose body cannot be undone: its
    status says what matters (a 401, a 429 and its Retry-After), and a body taken
    for a failure of the connection would hide it."""
    try:
        return await _read_at_most(answer, max_bytes)
    except UndecodableError as error:
        if answer.status < 300:
            raise
        logger.debug("HTTP %d kept without its body: %s", answer.status, error)
        return b""


async def _read_at_most(answer: aiohttp.ClientResponse, max_bytes: int | None) -> bytes:
    """The whole body, decompressed, refused once it runs past ``max_bytes``.

    The session leaves bodies as sent, and they are decompressed here a piece at a
    time: aiohttp's own decompression expands each packet whole into its buffer, a
    gzip bomb's 64 KiB into 64 MiB, before the length can be checked, and so held
    more than twice the allowance of every answer in flight.
    """
    encoding = answer.headers.get("Content-Encoding", "identity").strip().lower()
    body = _Body(encoding, max_bytes)
    async for chunk in answer.content.iter_chunked(_CHUNK_BYTES):
        body.take(chunk)

    return body.whole()


class _Body:
    """An answer's body as it comes, decompressed within its allowance."""

    def __init__(self, encoding: str, max_bytes: int | None) -> None:
        if encoding not in _ENCODINGS:
            raise UndecodableError(encoding)

        self._encoding = encoding
        self._max_bytes = max_bytes
        self._decoder = (
            None if encoding in _AS_SENT else zlib.decompressobj(_GZIP_OR_ZLIB_HEADER)
        )
        self._chunks: list[bytes] = []
        self._read = 0
        self._sent = False
        self._bare = False

    def take(self, chunk: bytes) -> None:
        self._sent = self._sent or bool(chunk)
        if self._decoder is None:
            self._keep(chunk)
            return

        pending = chunk
        while pending:
            try:
                self._keep(self._decoder.decompress(pending, _CHUNK_BYTES))
            except zlib.error:
                if not self._bare_deflate_at_start():
                    raise UndecodableError(self._encoding) from None
                continue
            pending = self._decoder.unconsumed_tail or self._next_member()

    def _next_member(self) -> bytes:
        """What follows the end of a gzip stream: another member of the same body,
        as gzip allows, read by a decoder of its own; nothing else may follow."""
        assert self._decoder is not None
        rest = self._decoder.unused_data
        if not (self._decoder.eof and rest):
            return b""
        if self._encoding not in ("gzip", "x-gzip"):
            raise UndecodableError(self._encoding)
        self._decoder = zlib.decompressobj(_GZIP_OR_ZLIB_HEADER)
        return rest

    def _bare_deflate_at_start(self) -> bool:
        """Whether to read the body again as a bare deflate stream, as some servers
        send ``deflate``: only at its start, and only once."""
        if self._encoding != "deflate" or self._read or self._bare:
            return False
        self._bare = True
        self._decoder = zlib.decompressobj(-zlib.MAX_WBITS)
        return True

    def whole(self) -> bytes:
        # An empty body (a refusal's, say) is empty whatever its header says.
        if self._decoder is not None and self._sent:
            # Cut short, or followed by bytes no stream holds: not the whole answer.
            if not self._decoder.eof or self._decoder.unused_data:
                raise UndecodableError(self._encoding)
            self._keep(self._decoder.flush())
        return b"".join(self._chunks)

    def _keep(self, piece: bytes) -> None:
        self._read += len(piece)
        if self._max_bytes is not None and self._read > self._max_bytes:
            # Let go now: the error's traceback keeps this object alive while the
            # query is asked again in halves, and each half's in turn.
            self._chunks.clear()
            raise AnswerTooLongError(self._read, self._max_bytes)
        self._chunks.append(piece)


_AS_SENT: Final = frozenset({"identity", ""})
_ENCODINGS: Final = _AS_SENT | {"gzip", "x-gzip", "deflate"}
"""What the client asks for (``gzip, deflate``) and can undo; a server sending
another encoding (``br``) answers what was not asked."""
_GZIP_OR_ZLIB_HEADER: Final = zlib.MAX_WBITS | 32
"""zlib's reader told to take the header of either format, as either encoding may
come with the other's (deflate is zlib's format; a bare stream is tried after)."""


class UndecodableError(Exception):
    """A body in an encoding the client cannot undo, or whose stream is corrupt or
    cut short."""

    def __init__(self, encoding: str) -> None:
        super().__init__(
            f"the answer's {excerpt(encoding, 60)} body could not be decompressed"
        )


def _describe(error: aiohttp.ClientError) -> str:
    """A one-line reason that names the kind of failure but no request header."""
    if isinstance(error, aiohttp.ClientConnectorError):
        reason = error.os_error.strerror or type(error.os_error).__name__
        return f"cannot connect ({reason})"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "the server closed the connection before answering"

    # aiohttp's own words, which name no request header (its repr would).
    said = error.message if isinstance(error, aiohttp.ClientResponseError) else ""
    said = str(said or error)
    encoding = _ENCODING_FAILURE.search(said)
    if encoding is not None:
        shown = excerpt(encoding.group(1), 60)
        return f"the answer's {shown} body could not be decompressed"
    if isinstance(error, aiohttp.ClientPayloadError):
        return "the connection broke while reading the answer"
    if isinstance(error, aiohttp.ClientResponseError) and error.message:
        return f"{type(error).__name__}: {excerpt(str(error.message), 120)}"
    return type(error).__name__


_ENCODING_FAILURE: Final = re.compile(r"decode content-encoding: ([^.\n]+)", re.I)
"""How aiohttp says a body was compressed in a way it cannot undo: an encoding it
does not know (``br`` without the Brotli package) or a corrupt stream."""


_ERROR_BY_STATUS: dict[int, type[APIError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: BadRequestError,
    405: BadRequestError,
    409: BadRequestError,
    413: PayloadTooLargeError,
    422: BadRequestError,
    429: ThrottledError,
}
"""Other statuses are a ``ServerError`` if :func:`failed_on_server`, else a
``BadRequestError``."""

ASKED_AGAIN_LATER: Final = frozenset({408, 425})
"""Statuses under 500 that fail as a 5xx does: the server gave up waiting for the
request (RFC 9110, 15.5.9) or would not risk a replay (RFC 8470, 5.2). Both ask for
the same request again later, so they are retried and counted as failures."""


def failed_on_server(status: int) -> bool:
    """Whether an answer of ``status`` is a failure of the server, to retry."""
    return status >= 500 or status in ASKED_AGAIN_LATER


def answer_text(status: int, shown: str) -> str:
    """An error answer in words: its status and the excerpt of its body."""
    return f"HTTP {status}" + (f": {shown}" if shown else " with an empty body")


def error_for(response: Response, *, method: str, url: str, what: str) -> APIError:
    """The typed error for a non-2xx answer; ``what`` says what was being done."""
    status = response.status
    kind = _ERROR_BY_STATUS.get(status)
    if kind is None:
        kind = ServerError if failed_on_server(status) else BadRequestError
    shown = excerpt(response.body)
    message = f"{what}: {answer_text(status, shown)}"
    location = response.headers.get("Location")
    if 300 <= status < 400 and location:
        # Not followed: the form would go along, client secret included.
        message += (
            f"; it redirects to {excerpt(mask_url(location), 200)}, which is not "
            "followed: if that is where the API now lives, set the base URL to it"
        )
    return kind(
        message,
        method=method,
        url=mask_url(url),
        status=status,
        excerpt=shown,
        retry_after=parse_retry_after(response.headers),
    )
