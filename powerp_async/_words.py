"""Words in messages: a noun that agrees with its number, a text safe to print."""

from __future__ import annotations

from typing import Final

_CONTROL_CHARACTERS: Final = {
    code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))
} | {
    code: f"\\u{code:04x}"
    for code in (0x2028, 0x2029, *range(0x202A, 0x202F), *range(0x2066, 0x206A))
}
"""Escapes of the characters a terminal would act on (colours, titles, cursor moves),
of line breaks, which would split one log line in two (Unicode's own separators too),
and of the marks that reverse the direction text is shown in."""


DROPPED_WHY: Final = (
    "the server sent twice, off the window grid, outside what was asked or with an "
    "unreadable time"
)
"""Why a point the server sent is left out, after "dropped N points"."""


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and the noun that agrees with it: ``1 file``, ``2 files``.

    >>> plural(1, "retry", "retries"), plural(1_200, "point")
    ('1 retry', '1,200 points')
    """
    word = noun if count == 1 else nouns or f"{noun}s"
    return f"{count:,} {word}"


def printable(text: str) -> str:
    """``text`` with each control character shown as its escape (``\\x1b``), not
    obeyed: for terminals and logs, where a server's text must not move the cursor or
    start a line that reads as a record of its own.

    >>> printable("a\\nb")
    'a\\\\x0ab'
    """
    return text.translate(_CONTROL_CHARACTERS)
