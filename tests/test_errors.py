"""Messages of the error tree that are built from other errors."""

from __future__ import annotations

import copy
import pickle
from pathlib import Path

import pytest

from powerp_async import Block, FetchFailedError, ServerError
from powerp_async.errors import (
    ConfigurationError,
    ExportWriteError,
    MalformedResponseError,
    PermissionDeniedError,
    PowerPError,
    ServerUnavailableError,
    ThrottledError,
    TransportError,
)


def test_a_failed_fetch_names_its_first_block_once() -> None:
    block = Block(1, "last", ("7",), 0, 60_000_000, 1_000_000)
    named = ServerError(
        f"the server answered 502 for {block.describe()}",
        method="POST",
        url="http://127.0.0.1:8765/rt-api/api/v1/Query",
        status=502,
    )
    unnamed = TimeoutError("no answer within 60 s")

    assert str(FetchFailedError([(block, named), (block, unnamed)])) == (
        "2 block(s) could not be fetched; first: the server answered 502 for "
        f"{block.describe()}"
    )
    assert str(FetchFailedError([(block, unnamed)])) == (
        f"1 block(s) could not be fetched; first: {block.describe()}: "
        "no answer within 60 s"
    )


def _every_kind() -> list[PowerPError]:
    block = Block(1, "last", ("7",), 0, 60_000_000, 1_000_000)
    throttled = ThrottledError(
        "too many", method="POST", url="http://127.0.0.1/q", status=429, retry_after=2.5
    )
    return [
        ConfigurationError("block_size: expected an integer"),
        TransportError(
            "no answer", method="GET", url="http://127.0.0.1/q", timed_out=True
        ),
        throttled,
        ServerError("down", method="POST", url="http://127.0.0.1/q", status=503),
        MalformedResponseError("not JSON", url="http://127.0.0.1/q", excerpt="<html>"),
        ServerUnavailableError("failed every request", outage_s=12.0),
        ExportWriteError(Path("out"), OSError(28, "No space left on device")),
        FetchFailedError([(block, throttled), (block, TimeoutError("no answer"))]),
    ]


@pytest.mark.parametrize("error", _every_kind(), ids=lambda e: type(e).__name__)
def test_every_error_survives_a_trip_to_another_process(error: PowerPError) -> None:
    # What a worker process (Dask, a process pool) does to hand its error back.
    for copied in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(copied) is type(error)
        assert str(copied) == str(error)
        assert copied.args == error.args
        assert _fields(copied) == _fields(error)


def _fields(error: BaseException) -> dict[str, object]:
    """The error's fields, nested errors by their kind and message."""

    def plain(value: object) -> object:
        if isinstance(value, BaseException):
            return (type(value).__name__, str(value))
        if isinstance(value, tuple):
            return tuple(plain(item) for item in value)
        return value

    return {name: plain(value) for name, value in vars(error).items()}


def test_a_reworded_answer_keeps_its_kind_and_fields() -> None:
    refused = PermissionDeniedError(
        "HTTP 403", method="POST", url="http://[::1]/q", status=403, excerpt="no"
    )

    told = refused.reworded("database 7 is forbidden")

    assert type(told) is PermissionDeniedError
    assert str(told) == "database 7 is forbidden"
    assert (told.method, told.url, told.status, told.excerpt) == (
        "POST",
        "http://[::1]/q",
        403,
        "no",
    )
