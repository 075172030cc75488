"""The server's rate as throttling episodes measured it.

Each episode in recovery brings three rates: the one that drew its 429, the one the
server admitted over the horizon just before it, and the one admitted since the
previous episode. When the first two lie within ``BRACKET`` of each other, they pin
the limit down: it lies below the rate refused and near the rate admitted, and is
taken as the lower of the rate admitted and ``BELOW_REFUSED`` under the rate refused.
When they lie further apart, the rate climbed fast past the limit (a short horizon
lags behind such a climb) or the limit moved, and nothing is known.

The third rate is the limit itself once cuts are shallow: a token bucket holds less
than a token at both refusals, so what it admitted in between is its own rate, less
what overflowed while the client sent less, which near the limit is little. So near a
known limit it caps the estimate, since a bucket with a large burst lets the rate,
and the rate admitted, climb well past the limit before the 429.

At a few requests a second the horizon holds a handful of sends, and one of them held
up reads as a rate a tenth lower. So where the horizon disagrees with the rate refused
but the cycle since the previous episode admitted the known limit, the cycle stands in
for the horizon. And a refusal below the known limit, after a cycle that admitted more
than the rate refused, is a send that arrived early at a bucket of one token: it leaves
the limit as it is.

A pinned-down limit is known, halfway to a guess it agrees with (the aim of the cut
that ended start-up); each further episode that agrees within ``AGREEMENT`` moves it
halfway towards its own estimate, and one that does not replaces it.
"""

from __future__ import annotations

from typing import Final

BRACKET: Final = 0.1
"""The rates admitted and refused pin the limit down within this share."""

BELOW_REFUSED: Final = 0.025
"""The limit is taken at least this share below the rate that drew the 429, and near
a known limit at most this share above the rate admitted since the last one."""

AGREEMENT: Final = 0.05
"""Two measured limits agree when they differ by at most this share."""

NEW_WEIGHT: Final = 0.5
"""Weight of the latest agreeing measurement in the known limit."""


class KnownCeiling:
    """The rate at which throttling sets in, as far as the episodes pin it down."""

    def __init__(self) -> None:
        self.rate: float | None = None
        """The known limit in requests per second; ``None`` while unknown."""
        self._candidate: float | None = None

    def __repr__(self) -> str:
        known = "unknown" if self.rate is None else f"{self.rate:.3g} req/s"
        return f"<KnownCeiling {known}>"

    def learn(self, recent: float, since_last: float, throttled: float) -> float | None:
        """Take one episode in: the rate admitted over the ``recent`` horizon and
        ``since_last`` episode, and the rate that drew the 429 (``throttled``).
        Returns the known limit, if any."""
        if not (recent > 0 and _within(recent, throttled, BRACKET)):
            if not self._holds(since_last, throttled):
                # A fast climb, or a limit that moved: nothing pinned down.
                self.forget()
                return None
            # A horizon of a handful of sends: the cycle at the known limit says
            # better what was admitted.
            recent = since_last

        if self._early_arrival(since_last, throttled):
            return self.rate

        estimate = min(recent, (1 - BELOW_REFUSED) * throttled)
        if self._refines(min(estimate, (1 + BELOW_REFUSED) * since_last)):
            return self.rate

        if self._candidate is not None and _within(
            estimate, self._candidate, AGREEMENT
        ):
            self.rate = (estimate + self._candidate) / 2
        else:
            self.rate = estimate
        self._candidate = estimate
        return self.rate

    def suppose(self, rate: float) -> None:
        """A guess at the limit, known once an episode agrees with it."""
        self.forget()
        self._candidate = rate

    def forget(self) -> None:
        """Nothing is known any more (start-up, a change of mode, a limit moved)."""
        self.rate = None
        self._candidate = None

    def _holds(self, since_last: float, throttled: float) -> bool:
        """Whether the cycle since the last refusal admitted the known limit and
        the rate refused lies just above it: the limit has not moved."""
        if self.rate is None:
            return False
        return _within(since_last, self.rate, AGREEMENT) and _within(
            since_last, throttled, BRACKET
        )

    def _early_arrival(self, since_last: float, throttled: float) -> bool:
        """Whether a refusal below the known limit is a send that arrived early
        rather than a lower limit (see the module docstring). Taking each such
        refusal in, 2.5 % below the rate refused, walked the limit down a step at
        a time. A limit that really fell refuses again within a quarter of ``H``
        of the cut, which forgets it."""
        return (
            self.rate is not None
            and throttled < min(self.rate, since_last)
            and _within(since_last, self.rate, AGREEMENT)
        )

    def _refines(self, estimate: float) -> bool:
        """Move the known limit halfway towards ``estimate`` if the two agree."""
        if self.rate is None or not _within(estimate, self.rate, AGREEMENT):
            return False

        self.rate += NEW_WEIGHT * (estimate - self.rate)
        self._candidate = estimate
        return True


def _within(rate: float, reference: float, share: float) -> bool:
    return abs(rate - reference) <= share * reference
