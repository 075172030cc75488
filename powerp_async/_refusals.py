"""When a refusal speaks for more than one block.

A 400 or 403 normally fails one block, and the run goes on. But when the server
refuses a whole database (403 before any of its blocks succeeded), every later block
of that database would be refused too; and when the first several blocks of a run are
all rejected as bad requests, the request itself is wrong (a window the server does not
take, say). Sending the rest would only repeat the error hundreds of times.

The other way round, a query of twenty signals refused for one of them is searched
for that one, so the others are fetched (``_signal_refusals``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ._words import plural
from .errors import BadRequestError, PermissionDeniedError, PowerPError
from .models import Block

BAD_REQUESTS_BEFORE_STOPPING: Final = 5
LONE_SIGNALS_PER_QUERY: Final = 4
"""How many refused queries of one signal weigh as one of many (see Refusals)."""


class RunStopped(Exception):
    """Internal: raised by the engine's workers to end the run with ``error``."""

    def __init__(self, error: PowerPError) -> None:
        super().__init__(str(error))
        self.error = error


class Refusals:
    """Remembers refused databases and whether anything succeeded yet.

    A refused query of one signal may speak of that signal alone (see
    ``_signal_refusals``), so it weighs a quarter of one of many signals: a database
    is taken as forbidden after a 403 for a query of many, or for four of one, and a
    run stops after five bad requests of many, or twenty of one.
    """

    def __init__(self) -> None:
        self._forbidden: dict[int, PermissionDeniedError] = {}
        self._denied: dict[int, int] = {}
        self._allowed: set[int] = set()
        self._bad_requests = 0
        self._bad_weight = 0
        self._succeeded = False

    def answered_before(self, block: Block, error: PowerPError) -> bool:
        """Whether a query was answered that ``error`` would have refused too if
        it spoke of every query: one of the block's database for a 403, any other."""
        if isinstance(error, PermissionDeniedError):
            return block.database_id in self._allowed

        return self._succeeded

    def known(self, block: Block) -> PowerPError | None:
        """The refusal this block will meet without asking, if one is known."""
        if block.database_id in self._allowed:
            return None

        return self._forbidden.get(block.database_id)

    def on_success(self, block: Block) -> None:
        self._succeeded = True
        self._allowed.add(block.database_id)

    def on_refused(
        self, block: Block, error: PowerPError, *, queries: Sequence[Block] = ()
    ) -> None:
        """Take note of a failed block; raise :class:`RunStopped` if all would fail.

        ``queries`` are those whose refusals ended it, if not the block's own (a
        search's parts); each weighs by its signals, as the class docstring says.
        """
        weight = sum(_weight(query) for query in queries or [block])
        database = block.database_id
        if isinstance(error, PermissionDeniedError) and database not in self._allowed:
            self._denied[database] = self._denied.get(database, 0) + weight
            if self._denied[database] >= LONE_SIGNALS_PER_QUERY:
                self._forbidden.setdefault(database, error)

        if isinstance(error, BadRequestError) and not self._succeeded:
            self._bad_requests += 1
            self._bad_weight += weight
            if (
                self._bad_weight
                >= BAD_REQUESTS_BEFORE_STOPPING * LONE_SIGNALS_PER_QUERY
            ):
                raise RunStopped(self._stopping(error))

    def _stopping(self, error: BadRequestError) -> BadRequestError:
        return error.reworded(
            "no query was answered and every one was refused as a bad request "
            f"({plural(self._bad_requests, 'block')} given up), so every query would "
            f"be; stopping. Last: {error}"
        )


def _weight(query: Block) -> int:
    return 1 if len(query.indexes) == 1 else LONE_SIGNALS_PER_QUERY
