"""The blocks an executor was handed and has not settled yet, by unit id.

A staged batch is committed only if every block it holds is still outstanding: a
second attempt at the same batch (retried after a worker died, or run twice) then
finds its blocks settled by the first and is discarded, so no point is committed
twice. Only blocks in flight are held, so memory stays flat however long the export.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ..models import Block


class Outstanding:
    """Blocks handed on and neither committed nor given up on."""

    __slots__ = ("_blocks",)

    def __init__(self) -> None:
        self._blocks: dict[str, Block] = {}

    def issue(self, blocks: Iterable[Block]) -> Iterator[Block]:
        """``blocks``, lazily, each recorded as outstanding as it is handed on."""
        for block in blocks:
            self._blocks[block.unit_id] = block
            yield block

    def holds_all(self, unit_ids: Iterable[str]) -> bool:
        return all(unit_id in self._blocks for unit_id in unit_ids)

    def settle(self, unit_ids: Iterable[str]) -> None:
        for unit_id in unit_ids:
            del self._blocks[unit_id]

    def left(self) -> list[Block]:
        """The blocks still outstanding, in the order they were handed on."""
        return list(self._blocks.values())
