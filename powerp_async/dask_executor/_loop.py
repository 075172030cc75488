"""One event loop per worker process, on a thread of its own, for the async engine.

Dask runs a task on one of its worker threads and keeps its own event loop for its
control messages; the engine's requests would stall that loop, or be stalled by it.
So each process starts, on first use, one more thread that runs an asyncio loop for
as long as the process lives, and a task hands it a coroutine and waits for the
outcome. The clients built in that loop stay there, reused by every later task:
their aiohttp sessions never cross to another thread or loop.
"""

from __future__ import annotations

import asyncio
import atexit
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

T = TypeVar("T")

THREAD_NAME: Final = "powerp-engine-loop"
CLOSE_TIMEOUT_S: Final = 10.0
"""How long a process that exits waits for its clients to close their sessions."""


class LoopThread:
    """An asyncio event loop running on a daemon thread."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=THREAD_NAME, daemon=True
        )
        self._thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on the loop; returns or raises what it does."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()

    def close(self, closing: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Await ``closing()`` on the loop, then stop it; for the process's exit."""
        if not self._thread.is_alive():
            return

        future = asyncio.run_coroutine_threadsafe(closing(), self._loop)
        try:
            future.result(timeout=CLOSE_TIMEOUT_S)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=CLOSE_TIMEOUT_S)


_lock = threading.Lock()
_shared: LoopThread | None = None


def engine_loop(closing: Callable[[], Coroutine[Any, Any, None]]) -> LoopThread:
    """This process's loop thread, started on first use; ``closing`` runs on it when
    the process exits (given once: later calls reuse the first)."""
    global _shared
    with _lock:
        if _shared is None:
            _shared = LoopThread()
            atexit.register(_shared.close, closing)

        return _shared
