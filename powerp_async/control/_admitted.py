"""Which requests the server admitted, known long before their answers arrive.

A throttled request is refused at once (the API answers a 429 in milliseconds, before
doing any work), while an admitted one takes its whole round trip. So a request that
went out several refusal times ago and has not been refused was admitted, and the rate
the server admitted can be measured up to a few milliseconds ago rather than up to the
slowest answer still on its way. That matters at a cut: the record of answers alone
ends a slow round trip back, before the rate that drew the 429, and then the cut
measures a rate from before the limit was met.

Refusals as slow as answers (a proxy that queues them, say) only push the edge of what
is known back to where the answers alone put it. A request that got no answer at all
is not counted as admitted.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from typing import Final

REFUSAL_MARGIN: Final = 3.0
"""A request counts as admitted once this many times the slowest recent refusal has
passed since it went out."""

MIN_MARGIN_S: Final = 0.02
"""The least margin, for refusals faster than the event loop can tell apart."""

REFUSAL_SAMPLES: Final = 20
"""Refusal latencies kept; the slowest of them sets the margin."""

MEMORY_S: Final = 60.0
"""Sends older than this are forgotten."""


class AdmittedSends:
    """Send times of recent requests, less those refused or never answered."""

    def __init__(self) -> None:
        self._sent: deque[float] = deque()
        self._excluded: deque[float] = deque()
        self._excluded_count: Counter[float] = Counter()
        self._refusal_latency: deque[float] = deque(maxlen=REFUSAL_SAMPLES)

    def on_sent(self, now: float) -> None:
        self._sent.append(now)
        self._forget(now - MEMORY_S)

    def on_refused(self, now: float, sent_at: float) -> None:
        """A 429 came back at ``now`` for the request sent at ``sent_at``."""
        self._refusal_latency.append(max(0.0, now - sent_at))
        self._exclude(sent_at)

    def on_lost(self, sent_at: float) -> None:
        """The request sent at ``sent_at`` got no answer: not known to be admitted."""
        self._exclude(sent_at)

    def known_until(self, now: float, answer_latency_s: float) -> float:
        """The send time up to which every request's fate is known at ``now``."""
        if not self._refusal_latency:
            return now - answer_latency_s

        margin_s = max(MIN_MARGIN_S, REFUSAL_MARGIN * max(self._refusal_latency))
        return now - min(margin_s, answer_latency_s)

    def rate(
        self,
        until: float,
        horizon_s: float,
        min_count: int,
        after: float = -math.inf,
    ) -> float:
        """Admitted requests per second, sent over ``horizon_s`` up to ``until``.

        The span reaches further back, within memory but never to ``after`` or
        before it, when it holds fewer than ``min_count`` admitted sends. The rate
        is taken from the spacing of the sends, which the pacer made even, not from
        their count: at five a second one more or less in a second would swing a
        count by a fifth. 0 with fewer than 2 sends.
        """
        chosen = self._admitted_since(until, until - horizon_s, min_count)
        chosen = [sent_at for sent_at in chosen if sent_at > after]
        if len(chosen) < 2 or chosen[0] <= chosen[-1]:
            return 0.0
        return (len(chosen) - 1) / (chosen[0] - chosen[-1])

    def latest(self, until: float) -> float | None:
        """The latest admitted send up to ``until``; ``None`` if there is none."""
        chosen = self._admitted_since(until, until, 1)
        return chosen[0] if chosen else None

    def count_before(self, until: float) -> int:
        """Admitted requests sent before ``until``, as far as memory goes back."""
        return self.count(-math.inf, until)

    def count(self, since: float, until: float) -> int:
        """Admitted requests sent from ``since`` up to, not including, ``until``."""
        excluded = self._excluded_count.copy()
        count = 0
        for sent_at in reversed(self._sent):
            if sent_at < since:
                break
            if sent_at >= until:
                continue
            if excluded[sent_at] > 0:
                excluded[sent_at] -= 1
            else:
                count += 1

        return count

    def _admitted_since(
        self, until: float, since: float, min_count: int
    ) -> list[float]:
        """Admitted send times from ``until`` back to ``since``, latest first."""
        excluded = self._excluded_count.copy()
        chosen: list[float] = []
        for sent_at in reversed(self._sent):
            if sent_at > until:
                continue
            if excluded[sent_at] > 0:
                excluded[sent_at] -= 1
                continue
            if sent_at <= since and len(chosen) >= min_count:
                break

            chosen.append(sent_at)

        return chosen

    def _exclude(self, sent_at: float) -> None:
        self._excluded.append(sent_at)
        self._excluded_count[sent_at] += 1

    def _forget(self, oldest: float) -> None:
        while self._sent and self._sent[0] <= oldest:
            self._sent.popleft()

        while self._excluded and self._excluded[0] <= oldest:
            sent_at = self._excluded.popleft()
            self._excluded_count[sent_at] -= 1
            if not self._excluded_count[sent_at]:
                del self._excluded_count[sent_at]
