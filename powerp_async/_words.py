"""Counts in messages: a noun that agrees with its number."""

from __future__ import annotations


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """``count`` and the noun that agrees with it: ``1 file``, ``2 files``.

    >>> plural(1, "retry", "retries"), plural(1_200, "point")
    ('1 retry', '1,200 points')
    """
    word = noun if count == 1 else nouns or f"{noun}s"
    return f"{count:,} {word}"
