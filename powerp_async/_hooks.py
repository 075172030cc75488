"""The caller's hooks (``on_event=``, ``progress=``): checked when given, shielded
when called.

A hook is the caller's code run inside ours. One that cannot be called (an ``async
def``, whose coroutine would be made and dropped unawaited at every call, unseen) is
refused as it is given; one that raises is logged once and the run goes on, since a
display that fails must not cost an export of hours.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Generic, ParamSpec

from .errors import ConfigurationError

logger = logging.getLogger("powerp_async.hooks")

P = ParamSpec("P")


def check_hook(name: str, hook: object) -> None:
    """Refuse a hook the run could not call: not callable, or an ``async def``."""
    if hook is None:
        return

    if not callable(hook):
        raise ConfigurationError(f"{name}: expected a function, got {hook!r:.60}")

    call = getattr(hook, "__call__", None)  # noqa: B004  # an object's own __call__
    if inspect.iscoroutinefunction(hook) or inspect.iscoroutinefunction(call):
        raise ConfigurationError(
            f"{name}: expected a plain function, got an async one, which would never "
            "be awaited: the run calls its hooks in its own steps. Hand on what it is "
            "given instead, to a queue's put_nowait, say"
        )


class ShieldedHook(Generic[P]):
    """Calls ``hook``; its first failure is logged with its traceback, later ones
    are not, and none reaches the run."""

    def __init__(self, name: str, hook: Callable[P, object]) -> None:
        self._name = name
        self._hook = hook
        self._complained = False

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        try:
            self._hook(*args, **kwargs)
        # A plain function cannot be cancelled, so a CancelledError it raises is its
        # own failure; let through, it would end a worker as if the run were.
        except (Exception, asyncio.CancelledError):
            if not self._complained:
                logger.exception(
                    "the %s hook failed; later failures are silent", self._name
                )
                self._complained = True
