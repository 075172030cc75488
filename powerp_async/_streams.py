"""Streams handed out by ``async with``, and a clear word when one is used otherwise.

:meth:`PowerPClient.fetch` and :meth:`PowerPClient.fetch_batches` give an async context
manager, whose exit waits for the requests still in flight and raises the failures.
Iterated directly (``async for ... in client.fetch(...)``) or awaited, a plain one
fails with a message about its own type; this one says how it is meant to be used,
as does its stream when it is read after the ``async with`` ended.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Callable, Generator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Any, Generic, NoReturn, ParamSpec, TypeVar

Item = TypeVar("Item")
Params = ParamSpec("Params")


def stream_context(
    method: Callable[Params, AsyncIterator[AsyncIterator[Item]]],
) -> Callable[Params, StreamContext[Item]]:
    """``asynccontextmanager`` for a method that yields a stream, whose misuse then
    says how it is meant to be used (see :class:`StreamContext`)."""
    managed = asynccontextmanager(method)

    @functools.wraps(method)
    def opened(*args: Params.args, **kwargs: Params.kwargs) -> StreamContext[Item]:
        return StreamContext(managed(*args, **kwargs), method.__name__)

    return opened


class StreamContext(Generic[Item]):
    """``async with`` this to get the stream of ``method``'s items."""

    __slots__ = ("_entered", "_manager", "_method", "_stream")

    def __init__(
        self, manager: AbstractAsyncContextManager[AsyncIterator[Item]], method: str
    ) -> None:
        self._manager = manager
        self._method = method
        self._entered = False
        self._stream: _Stream[Item] | None = None

    async def __aenter__(self) -> AsyncIterator[Item]:
        # The manager underneath runs once; entered again it fails inside with an
        # error about its own internals.
        if self._entered:
            raise RuntimeError(
                f"this {self._method}(...) was entered already: each call gives one "
                f"stream, so call {self._method}(...) again for another"
            )

        self._entered = True
        self._stream = _Stream(await self._manager.__aenter__(), self._method)
        return self._stream

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        if self._stream is not None:
            self._stream.ended = True
        return await self._manager.__aexit__(kind, error, traceback)

    def __aiter__(self) -> NoReturn:
        raise TypeError(self._misused("iterated"))

    def __await__(self) -> Generator[Any, None, NoReturn]:
        raise TypeError(self._misused("awaited"))

    def _misused(self, how: str) -> str:
        return (
            f"{self._method}() cannot be {how} directly: it gives a context manager "
            f"that waits for the requests in flight when it ends, so write "
            f"'async with client.{self._method}(...) as stream:' and then "
            "'async for item in stream:'"
        )


class _Stream(Generic[Item]):
    """The stream a :class:`StreamContext` gives, which says so when it is read after
    its ``async with`` ended: the requests behind it are gone by then, and the stream
    underneath fails with a bare error about a closed channel."""

    __slots__ = ("_items", "_method", "ended")

    def __init__(self, items: AsyncIterator[Item], method: str) -> None:
        self._items = items
        self._method = method
        self.ended = False

    def __aiter__(self) -> _Stream[Item]:
        return self

    async def __anext__(self) -> Item:
        if self.ended:
            raise RuntimeError(
                f"the stream of {self._method}(...) was read after its 'async with' "
                "ended, which stops the requests behind it: read it inside the "
                "'async with' block"
            )
        return await self._items.__anext__()
