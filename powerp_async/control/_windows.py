"""How long a server's quota windows last, learnt from its ``Retry-After`` answers.

A server that counts a quota per fixed window refuses with ``Retry-After`` set to the
time left until the window ends. One such answer bounds the window from below (it is
at least that long); two resets bound it from above (they lie a whole number of
windows apart). Until two resets are seen, the window is taken to be the shortest
common length (10 s, a minute, ...) that the longest wait fits in, and never shorter
than ``SHORTEST_GUESS_S``: the wait is only what was left of the window when its quota
ran out, and a guess too long costs little (the quota is paced too fast, runs out
early, and the next reset measures the window), while one too short would pace a
whole window's quota over a fraction of it.
"""

from __future__ import annotations

from typing import Final

COMMON_WINDOWS_S: Final = (10, 15, 20, 30, 60, 120, 300, 600, 900, 1800, 3600)
"""Window lengths servers commonly use, in seconds."""

SHORTEST_GUESS_S: Final = 10.0
"""The shortest window guessed before one is measured."""

SAME_RESET_S: Final = 0.5
"""Resets this close together are the same one, announced twice."""


class QuotaWindows:
    """The quota windows' length, as far as the resets announced so far tell."""

    def __init__(self) -> None:
        self._longest_wait_s = 0.0
        self._last_reset: float | None = None
        self._between_s: float | None = None
        """The shortest time seen between two resets."""

    def __repr__(self) -> str:
        return f"<QuotaWindows {self.length_s:g} s>"

    @property
    def length_s(self) -> float:
        """The window's length in seconds: measured, or guessed from the waits."""
        if self._between_s is not None:
            return max(self._between_s, self._longest_wait_s)

        least_s = max(self._longest_wait_s, SHORTEST_GUESS_S)
        for common_s in COMMON_WINDOWS_S:
            if common_s >= least_s:
                return float(common_s)
        return least_s

    def on_refusal(self, now: float, retry_after_s: float) -> tuple[float, float]:
        """A refusal at ``now`` said to come back in ``retry_after_s``.

        Returns when the window just used up began, as far as can be told, and the
        earliest time the next window can end. Whole seconds are rounded up (RFC 9110
        allows nothing finer), so such a reset lies up to a second before the one
        announced: half a second on average.
        """
        rounding_s = 1.0 if retry_after_s == int(retry_after_s) else 0.0
        earliest = now + retry_after_s - rounding_s
        self.on_reset(earliest + rounding_s / 2, retry_after_s)
        return earliest + rounding_s / 2 - self.length_s, earliest + self.length_s

    def on_reset(self, reset: float, wait_s: float) -> None:
        """A refusal announced a reset at ``reset``, ``wait_s`` seconds away."""
        self._longest_wait_s = max(self._longest_wait_s, wait_s)
        last = self._last_reset
        if last is not None and reset - last > SAME_RESET_S:
            between_s = reset - last
            self._between_s = min(self._between_s or between_s, between_s)

        if last is None or reset - last > SAME_RESET_S:
            self._last_reset = reset
