"""When a refusal speaks for more than one block.

A 400 or 403 normally fails one block, and the run goes on. But when the server
refuses a whole database (403 before any of its blocks succeeded), every later block
of that database would be refused too; and when the first several blocks of a run are
all rejected as bad requests, the request itself is wrong (a window the server does not
take, say). Sending the rest would only repeat the error hundreds of times.
"""

from __future__ import annotations

from typing import Final

from ._words import plural
from .errors import BadRequestError, PermissionDeniedError, PowerPError
from .models import Block

BAD_REQUESTS_BEFORE_STOPPING: Final = 5


class RunStopped(Exception):
    """Internal: raised by the engine's workers to end the run with ``error``."""

    def __init__(self, error: PowerPError) -> None:
        super().__init__(str(error))
        self.error = error


class Refusals:
    """Remembers refused databases and whether anything succeeded yet."""

    def __init__(self) -> None:
        self._forbidden: dict[int, PermissionDeniedError] = {}
        self._allowed: set[int] = set()
        self._bad_requests = 0
        self._succeeded = False

    def known(self, block: Block) -> PowerPError | None:
        """The refusal this block will meet without asking, if one is known."""
        return self._forbidden.get(block.database_id)

    def on_success(self, block: Block) -> None:
        self._succeeded = True
        self._allowed.add(block.database_id)

    def on_refused(self, block: Block, error: PowerPError) -> None:
        """Take note of a failed block; raise :class:`RunStopped` if all would fail."""
        database = block.database_id
        if isinstance(error, PermissionDeniedError) and database not in self._allowed:
            self._forbidden.setdefault(database, error)
        if isinstance(error, BadRequestError) and not self._succeeded:
            self._bad_requests += 1
            if self._bad_requests >= BAD_REQUESTS_BEFORE_STOPPING:
                raise RunStopped(
                    BadRequestError(
                        f"the first {plural(self._bad_requests, 'query', 'queries')} "
                        "were all refused as "
                        "bad requests, so every query would be; stopping. "
                        f"Last: {error}",
                        method=error.method,
                        url=error.url,
                        status=error.status,
                        excerpt=error.excerpt,
                    )
                )
