"""Signals the server refuses on their own, and the search that sets them apart.

One signal the server will not serve (an index it no longer knows, an aggregation
that signal does not support, a signal these credentials may not read) makes it
refuse the whole query of twenty. The engine then asks for the query's signals in
halves until the refused ones stand alone, so that the others are fetched; what it
learns here (:class:`SignalRefusals`) spares later queries that search.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Final

from .errors import APIError, BadRequestError, PermissionDeniedError, PowerPError
from .models import Block

logger = logging.getLogger("powerp_async.engine")

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
    """Which signals the server refuses on their own, learned during a run.

    A signal refused alone is sent alone from the start, and once it was refused
    :data:`REFUSED_ALONE_BEFORE_GIVING_UP` times and never accepted, it is not asked
    for again, its queries failing with the last refusal.

    A search in which every signal was refused alone, some of which the server had
    answered before in this run, found nothing to set apart: the server refuses the
    query itself now (its time range, say), not signals it never serves. Later
    refusals in that database and aggregation are then taken whole, without a search,
    which would cost some forty queries each. Signals never answered (a block of two
    retired signals, say) explain their refusal, and change nothing for the others.
    """

    def __init__(self) -> None:
        self._alone: dict[tuple[int, str, str], tuple[int, PowerPError]] = {}
        self._answered: set[tuple[int, str, str]] = set()
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
        return error.reworded(
            f"{block.describe()}: not asked for, as the server refused this signal "
            f"alone {count} times in this run, the last time with HTTP "
            f"{error.status}{said}"
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
            key = self._key(block, index)
            self._alone.pop(key, None)
            self._answered.add(key)

    def on_all_refused(self, block: Block) -> None:
        """Every signal of ``block`` was refused alone: see the class docstring."""
        if not any(
            self._key(block, index) in self._answered for index in block.indexes
        ):
            return

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
