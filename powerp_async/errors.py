"""The exceptions raised by powerp-async, all under one root.

::

    PowerPError
    ├── ConfigurationError          bad arguments or settings, before any request
    ├── TransportError              no usable answer: refused, reset, timed out
    ├── APIError                    the server answered with an error status
    │   ├── AuthenticationError     401 on the token endpoint, or 401 after a renewal
    │   ├── PermissionDeniedError   403
    │   ├── BadRequestError         400, 404, 422: the request itself is wrong
    │   ├── PayloadTooLargeError    413: the query asks for too many points at once
    │   ├── ThrottledError          429
    │   └── ServerError             5xx, and 408 or 425: asked again later
    ├── MalformedResponseError      a 2xx answer whose body is not what the API sends
    ├── ServerUnavailableError      the server stayed down too long; the run stopped
    ├── ExportWriteError            the export folder could not be written
    └── FetchFailedError            blocks that could not be fetched after retries

Errors that carry a URL carry it masked: credentials in the URL never appear. Excerpts
of response bodies are short and stripped of control characters; they never include the
request's headers, so neither the client secret nor a token can reach a message.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from ._redact import scrub

if TYPE_CHECKING:
    from .models import Block

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ConfigurationError",
    "ExportWriteError",
    "FetchFailedError",
    "MalformedResponseError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PowerPError",
    "ServerError",
    "ServerUnavailableError",
    "ThrottledError",
    "TokenExpiredError",
    "TransportError",
]


class PowerPError(Exception):
    """Root of every error this package raises on purpose.

    >>> try:
    ...     ClientConfig("", "secret")
    ... except PowerPError as error:
    ...     print(type(error).__name__, error)
    ConfigurationError client_id: expected a non-blank client id

    ``fetched`` holds what :meth:`PowerPClient.fetch_table` or ``fetch_frame`` had
    fetched when the error stopped them (a table, a DataFrame), so that an outage or
    refused credentials half way through do not cost what came before; ``None``
    from every other call.
    """

    fetched: Any = None

    def __init__(self, *args: object) -> None:
        # The last guard for a message that quotes what a server sent (a time it
        # could not read, say): whatever the caller built, no secret leaves in it.
        super().__init__(*(scrub(a) if isinstance(a, str) else a for a in args))

    def __reduce__(self) -> tuple[object, ...]:
        # Exceptions pickle by calling the class with ``args``, which most of ours
        # do not take (their fields are keyword-only, their message is built). Then a
        # worker process (Dask, a process pool) could not hand its error back, and
        # the caller would see a broken pool instead. So the message and the fields
        # travel as they are.
        return (_restored, (type(self), self.args, dict(self.__dict__)))


class ConfigurationError(PowerPError, ValueError):
    """An argument or setting is invalid; raised before any request is sent.

    It is a ``ValueError`` too, and its message names the wrong field:

    >>> ClientConfig("demo", "secret", block_size=30)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    powerp_async.errors.ConfigurationError: block_size: expected an integer from 1...
    """


class TransportError(PowerPError):
    """The request got no usable answer (connection refused or reset, timeout).

    Raised once the retries are spent; ``timed_out`` tells a timeout apart.

    Example::

        try:
            signals = await client.measurements()
        except TransportError as error:
            print("no answer from", error.url, "(timeout)" if error.timed_out else "")
    """

    def __init__(
        self, message: str, *, method: str, url: str, timed_out: bool = False
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.timed_out = timed_out


class APIError(PowerPError):
    """The server answered with an error status.

    ``url`` is masked; ``excerpt`` is a short, sanitised start of the body.

    >>> error = ServerError("bad gateway", method="POST", url="u", status=502)
    >>> isinstance(error, APIError), error.status
    (True, 502)
    """

    def __init__(
        self,
        message: str,
        *,
        method: str,
        url: str,
        status: int,
        excerpt: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.status = status
        self.excerpt = excerpt
        self.retry_after = retry_after

    def reworded(self, message: str) -> Self:
        """The same answer told in other words: same kind, method, URL, status and
        excerpt, for a message that says more of what it means for a run."""
        return type(self)(
            message,
            method=self.method,
            url=self.url,
            status=self.status,
            excerpt=self.excerpt,
            retry_after=self.retry_after,
        )


class AuthenticationError(APIError):
    """The credentials were refused, or a fresh token was refused too.

    Example::

        try:
            signals = await client.measurements()
        except AuthenticationError:
            sys.exit("check POWERP_CLIENT_ID and POWERP_CLIENT_SECRET")
    """


class TokenExpiredError(APIError):
    """Every token tried for a query expired before the server saw it (401): the
    server's tokens live about as long as its queries take. Retried like a server
    error; a block still refused after its retries fails with it.

    >>> issubclass(TokenExpiredError, AuthenticationError)
    False
    """


class PermissionDeniedError(APIError):
    """The credentials are valid but may not read what was asked (403).

    >>> issubclass(PermissionDeniedError, APIError)
    True
    """


class BadRequestError(APIError):
    """The server rejected the request as invalid; retrying cannot help.

    Example::

        try:
            table = await client.query(1, ["no-such-signal"], start, end)
        except BadRequestError as error:
            print(error.status, error.excerpt)   # 400 and what the server said
    """


class PayloadTooLargeError(APIError):
    """The query asks for more points than the server answers at once (413).

    :meth:`~powerp_async.PowerPClient.fetch` splits such a block and goes on; only
    :meth:`~powerp_async.PowerPClient.query`, which sends one query as given, raises
    it.

    >>> issubclass(PayloadTooLargeError, APIError)
    True
    """


class ThrottledError(APIError):
    """The server asked the client to slow down (429).

    ``retry_after`` holds the server's ``Retry-After`` in seconds, if it sent one.

    >>> error = ThrottledError("slow down", method="GET", url="u", status=429,
    ...                        retry_after=2.0)
    >>> error.retry_after
    2.0
    """


class ServerError(APIError):
    """The server or a gateway in front of it failed (5xx), or asked for the request
    again later (408 Request Timeout, 425 Too Early).

    >>> ServerError("unavailable", method="POST", url="u", status=503).status
    503
    """


class MalformedResponseError(PowerPError):
    """A success status whose body is not the JSON the API is known to send.

    >>> error = MalformedResponseError("expected an array", url="u", excerpt="<html>")
    >>> error.excerpt
    '<html>'
    """

    def __init__(self, message: str, *, url: str, excerpt: str = "") -> None:
        super().__init__(message)
        self.url = url
        self.excerpt = excerpt


class ServerUnavailableError(PowerPError):
    """The server failed every request for longer than the client waits for it, or
    refused every one as too many (429) for as long.

    Everything finished before is kept (an export commits it and can be resumed).

    Example::

        try:
            report = await export(client, spec)
        except ServerUnavailableError:
            report = await export(client, spec, resume=True)  # later, once it is back

    ``outage_s`` is how long the server had been failing (or refusing) when the run
    gave up.
    """

    def __init__(self, message: str, *, outage_s: float = 0.0) -> None:
        super().__init__(message)
        self.outage_s = outage_s


class ExportWriteError(PowerPError):
    """Writing into the export folder failed (disk full, read-only, removed...).

    ``folder`` is the export folder and ``reason`` the system's explanation. What
    was committed before the failure stays valid, so a resumable failure is fixed by
    freeing space or restoring access, then resuming.

    >>> error = ExportWriteError(Path("out"), OSError(28, "No space left on device"))
    >>> error.reason, error.resumable
    ('No space left on device', True)
    """

    def __init__(
        self,
        folder: Path,
        error: OSError,
        *,
        resumable: bool = True,
        advice: str | None = None,
    ) -> None:
        self.folder = folder
        self.reason = error.strerror or str(error) or type(error).__name__
        self.resumable = resumable
        if advice is None:
            outcome = (
                "everything committed before is kept, so the export can be resumed"
                if resumable
                else "nothing was kept, so run the export again"
            )
            advice = f"{outcome} once this is fixed"
        super().__init__(
            f"cannot write to the export folder {folder}: {self.reason}; {advice}"
        )


class FetchFailedError(PowerPError):
    """Some blocks could not be fetched; everything else was delivered.

    ``failures`` pairs each failed block with the error that ended it. ``fetched``
    holds what was fetched, as the call that gathers it would have returned it
    (:meth:`PowerPClient.fetch_table`: a table; ``fetch_frame``: a DataFrame), so
    one refused signal does not cost the others' points; ``None`` from calls that
    delivered their points as they came.

    >>> block = Block(1, "last", ("7",), 0, 60_000_000, 1_000_000)
    >>> error = FetchFailedError([(block, TimeoutError("no answer"))])
    >>> [(failed.indexes, str(why)) for failed, why in error.failures]
    [(('7',), 'no answer')]
    """

    def __init__(self, failures: Sequence[tuple[Block, BaseException]]) -> None:
        self.failures = tuple(failures)
        self.fetched: Any = None
        first_block, first_error = self.failures[0]
        first = first_block.describe_failure(first_error)
        super().__init__(
            f"{len(self.failures)} block(s) could not be fetched; first: {first}"
        )


def _restored(
    kind: type[PowerPError], args: tuple[object, ...], fields: dict[str, object]
) -> PowerPError:
    """An error of ``kind`` as it was pickled, without calling its ``__init__``."""
    error = kind.__new__(kind, *args)
    error.args = args
    error.__dict__.update(fields)
    return error
