"""When a refusal speaks for more than one block, or for fewer signals than it.

A 400 or 403 normally fails one block, and the run goes on. But when the server
refuses a whole database (403 before any of its blocks succeeded), every later block
of that database would be refused too; and when the first several blocks of a run are
all rejected as bad requests, the request itself is wrong (a window the server does not
take, say). Sending the rest would only repeat the error hundreds of times.

The other way round, a query of twenty signals refused for one of them
(:class:`SignalRefusals`) is searched for that one, so the others are fetched.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final

from ._words import plural
from .errors import APIError, BadRequestError, PermissionDeniedError, PowerPError
from .models import Block

logger = logging.getLogger("powerp_async.engine")

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

    def answered_before(self, block: Block, error: PowerPError) -> bool:
        """Whether a query was answered that ``error`` would have refused too if
        it spoke of every query: one of the block's database for a 403, any other."""
        if isinstance(error, PermissionDeniedError):
            return block.database_id in self._allowed

        return self._succeeded

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


REFUSED_ALONE_BEFORE_GIVING_UP: Final = 3
"""Queries of one signal alone refused as bad, and none of it accepted, after which a
run stops asking for it: the server has said what it thinks of that signal."""

_SIGNAL_REFUSALS: Final = frozenset({400, 403, 404, 422})
"""Statuses a server may give a query for a signal it does not know, serve or let
these credentials read; 405 and 409 speak of the request, never of one signal."""


def refuses_signals(error: PowerPError) -> bool:
    """Whether ``error`` is a refusal that one signal of a query may explain."""
    return (
        isinstance(error, BadRequestError | PermissionDeniedError)
        and error.status in _SIGNAL_REFUSALS
    )


class SignalRefusals:
    """Which signals the server refuses (400) on their own, learned during a run.

    One signal the server will not serve (an index it no longer knows, an aggregation
    that signal does not support, a signal these credentials may not read) makes it
    refuse the whole query of twenty. The
    engine then asks for the query's signals in halves until the refused ones stand
    alone, so that the others are fetched. What it learns here spares later queries of
    the same signals that search: a signal refused alone is sent alone from the start,
    and once it was refused :data:`REFUSED_ALONE_BEFORE_GIVING_UP` times and never
    accepted, it is not asked for again, its queries failing with the last refusal.

    A search in which every signal was refused alone found nothing to set apart: the
    server refuses the query itself (its time range, say). Later refusals in that
    database and aggregation are then taken whole, without a search, which would cost
    some forty queries each.
    """

    def __init__(self) -> None:
        self._alone: dict[tuple[int, str, str], tuple[int, PowerPError]] = {}
        self._unsplit: set[tuple[int, str]] = set()

    def apart(self, block: Block) -> list[Block]:
        """``block`` as queries to send: its signals known to be refused each alone,
        after the others; ``[block]`` if it holds none."""
        if (block.database_id, block.aggregation) in self._unsplit:
            return [block]

        known = [i for i in block.indexes if self._key(block, i) in self._alone]
        if not known or len(known) == len(block.indexes) == 1:
            return [block]

        rest = tuple(i for i in block.indexes if i not in known)
        alone = [replace(block, indexes=(index,)) for index in known]
        return [replace(block, indexes=rest), *alone] if rest else alone

    def given_up(self, block: Block) -> PowerPError | None:
        """The last refusal of a lone signal no longer asked for, if ``block`` is
        one."""
        if len(block.indexes) != 1:
            return None

        count, error = self._alone.get(self._key(block, block.indexes[0]), (0, None))
        if count < REFUSED_ALONE_BEFORE_GIVING_UP or not isinstance(error, APIError):
            return None

        said = f": {error.excerpt}" if error.excerpt else ""
        return type(error)(
            f"{block.describe()}: not asked for, as the server refused this signal "
            f"alone {count} times in this run, the last time with HTTP "
            f"{error.status}{said}",
            method=error.method,
            url=error.url,
            status=error.status,
            excerpt=error.excerpt,
        )

    def splits(self, block: Block, error: PowerPError) -> bool:
        """Whether a refusal of ``block`` is worth asking for its signals in halves."""
        return (
            len(block.indexes) > 1
            and refuses_signals(error)
            and (block.database_id, block.aggregation) not in self._unsplit
        )

    def refused_alone(self, block: Block) -> bool:
        """Whether ``block`` is one signal, refused alone before in this run."""
        return len(block.indexes) == 1 and (
            self._key(block, block.indexes[0]) in self._alone
        )

    def on_refused(self, block: Block, error: PowerPError) -> None:
        """Count a refusal of a signal asked for alone."""
        if len(block.indexes) != 1 or not refuses_signals(error):
            return

        key = self._key(block, block.indexes[0])
        count, _ = self._alone.get(key, (0, None))
        self._alone[key] = (count + 1, error)

    def on_accepted(self, block: Block) -> None:
        for index in block.indexes:
            self._alone.pop(self._key(block, index), None)

    def on_unexplained(self, block: Block) -> None:
        """Every signal of ``block`` was refused alone: see the class docstring."""
        self._unsplit.add((block.database_id, block.aggregation))
        logger.warning(
            "database %s %s: every signal of a refused query was refused on its own "
            "too, so the server refuses the query, not its signals; later refusals "
            "of this database and aggregation are not searched for refused signals",
            block.database_id,
            block.aggregation,
        )

    @staticmethod
    def _key(block: Block, index: str) -> tuple[int, str, str]:
        return (block.database_id, block.aggregation, index)
