"""Rate discovery: how fast the server lets us send, found without being told.

The API publishes no limit and sends no rate-limit headers, so the controller learns
the ceiling from 429 answers alone:

* **Start-up.** Begin at a hint (4 req/s by default). Every window of
  ``max(0.25 s, 2 * RTT_p90, 2 / rate)`` without a 429 doubles the rate, but never
  beyond 1.5 times the rate really used in that window, so an app-limited client
  does not talk itself into a rate it never tried, and not at all where every
  answer of the window failed. Two round trips let the answers
  to the window's sends come back before the next step; a floor of a whole second
  would make a job of 18 requests slower than sending them one at a time. (Doubling
  outright was tried: it overshoots a limit by up to twice, and the cut then lands
  at half of it, from where the cubic curve takes longer to climb back than the
  gentler growth takes to arrive.)
* **Cut.** A 429 for a request sent *after* the last cut starts an episode and cuts
  once, to 0.9 times the admitted rate; 429s for requests already in flight at the
  cut belong to the same episode, so a burst of them is one signal, not a collapse;
  so do 429s for requests sent before the ``Retry-After`` of the cut's 429 ran out
  while the server admitted none sent since the cut: a fixed window used up refuses
  everything until its reset, whatever the rate, and each of those refusals cutting
  again took a 1 s window's pace from 112 to 61 req/s in 75 ms.
  The rate the server admitted is measured over ``H = max(1 s, 2 * RTT_p90 + 0.5 s)``
  (at least 5 admitted sends), from the spacing of their send times, up to a few
  milliseconds before the 429: a 429 comes back at once, so a request not refused by
  then was admitted (``_admitted``), and the record of answers alone would end a slow
  round trip back, before the rate that drew the 429. At the end of start-up, where
  an average lags behind the climbing rate, the rate of the latest sends whose
  answers are all in counts instead if it is higher. Below about 34 req/s, a step
  of start-up refused at once brackets the limit between the rate admitted and the
  step's, and the cut aims between them (``_startup_cut``).
* **Recovery.** Then the rate follows ``W_max + c * (t - K)**3`` with
  ``c = 0.004 * W_max``, ``W_max`` being the accepted rate: back quickly, flat near
  ``W_max``, then faster again, which finds a raised limit. ``K`` is about 2.9 s at
  every scale, except that below about 34 req/s, where each probe past the limit
  costs one 429 out of few requests, the approach to a well-known limit (accepted
  within 10 % of the rate that drew the 429, in an episode after the one that ended
  start-up) is stretched to 100 requests' worth.
* **Known limit.** Each cut after start-up also measures the rate admitted since the
  previous refusal: a token bucket was empty at both, so that is its own rate. Where
  an episode pins the limit down (``_ceiling``), cuts go to 0.98 times it and the
  approach back takes at least 4 s and 100 requests, so the rate spends its time
  just below the limit. A 429 within a quarter of ``H`` after a cut (the cut fell
  short of a lower limit), or one met well past the curve's ``W_max`` (probing found
  a raised limit), makes it unknown again, and the common cut keeps probing upward
  at the common pace. The rate that drew a 429 is the pacer's, or the client's own
  where it had fewer requests to send.
* **Window mode.** A ``Retry-After`` above one second suggests a quota counted per
  fixed window. From then on (the mode is sticky) a new episode holds every send
  until the announced reset, plus up to 10 % jitter so that clients do not return in
  one wave. The requests admitted in the window just used up are its quota, and the
  next window is paced to spread that quota evenly up to its end (``_windows`` says
  how long windows last, ``_admitted`` which requests the server admitted); without
  a count to go by, the rate becomes 0.9 times the rate accepted since the previous
  reset. Either way recovery (``_recovery``) starts at the reset.
* **The end of a run.** Once every run has taken the last block of its plan
  (``may_probe`` off), the rate climbs back to ``W_max`` but no further than that or
  than the rate already reached, whichever is higher: a probe past the limit could
  only draw a 429 whose ``Retry-After`` delays the last answers, and a higher rate
  found then would serve nothing; a rate reached without a 429 is kept.

All methods take the current time, so the controller is pure bookkeeping; the pacer
supplies its clock's readings.

A 5xx answer never changes the rate, but it counts as admitted when a cut measures:
the server admitted the request before it failed, so leaving it out would cut deeper
the more faults there are. A request that got no answer at all is not counted.
"""

from __future__ import annotations

import bisect
import logging
import math
import random
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ..errors import ConfigurationError
from ._admitted import MEMORY_S, AdmittedSends
from ._ceiling import KnownCeiling
from ._recovery import (
    CONFIRMED_LIMIT,
    CUT_FACTOR,
    RECOVERY_KNEE_S,
    WINDOW_PACE_SHARE,
    RecoveryCurve,
    common_curve,
    guess_curve,
    known_curve,
    stretched_approach,
    window_curve,
)
from ._windows import QuotaWindows

logger = logging.getLogger("powerp_async.control.rate")

START_RATE: Final = 4.0
"""Requests per second before anything is known; slow enough for any sane server."""

GROWTH_CAP: Final = 1.5
"""The rate never grows beyond this multiple of the rate the client really used."""

STARTUP_WINDOW_S: Final = 0.25
"""The shortest start-up window, for a server that answers in less than half of it."""

STARTUP_WINDOW_SENDS: Final = 2
"""A start-up window lasts at least this many sends at the current rate: with fewer,
one send more or less than the rate's share would weigh too much in the rate used."""

MIN_SAMPLES: Final = 5
"""Admitted sends a cut measures over at the least, however long they took."""

APP_LIMITED_SHARE: Final = 0.05
"""Sends spaced this much wider than the pacer's rate show a client that had fewer
requests to send."""

BELOW_PACE_SHARE: Final = 0.25
"""At the end of start-up, a client that sent this much less than its pace over
``H`` had fewer requests to send, and what was accepted is a floor of the limit."""

CLUMP_SENDS: Final = 5
"""The latest sends whose spacing is the rate that drew a 429 after a stall."""

RECUT_SHARE: Final = 0.25
"""A 429 within this share of ``H`` after a cut means the cut fell short."""

RECENT_SAMPLES: Final = 10
"""The latest successes whose spacing shows the rate reached at the end of start-up,
and the fewest sends whose spacing shows a client that had fewer requests to send."""

WINDOW_MODE_RETRY_AFTER_S: Final = 1.0
"""A ``Retry-After`` above this switches to window mode."""

BARRIER_JITTER: Final = 0.1
"""A window-mode hold lasts ``Retry-After`` plus up to this share of it."""

RTT_SAMPLES: Final = 100
"""Latencies kept for the 90th percentile."""


class RateMode(StrEnum):
    """Which rule currently sets the rate."""

    STARTUP = "startup"
    """No 429 seen yet: the rate doubles per window."""
    RECOVERY = "recovery"
    """After a cut: the rate follows the cubic curve."""
    WINDOW = "window"
    """Quota windows detected: holds until each reset, cubic curve in between."""


@dataclass(frozen=True, slots=True)
class RateSettings:
    """Bounds of the rate controller, in requests per second."""

    initial_rate: float = START_RATE
    """Where discovery starts; a known or suspected limit is a good hint."""
    min_rate: float = 0.1
    """No cut goes below this."""
    max_rate: float = math.inf
    """No growth goes above this; set it when the limit is known."""

    def __post_init__(self) -> None:
        for name in ("initial_rate", "min_rate", "max_rate"):
            value = getattr(self, name)
            if not value > 0:
                raise ConfigurationError(
                    f"RateSettings.{name} must be a number above zero, got {value!r}"
                )

        if not self.min_rate <= self.initial_rate <= self.max_rate:
            raise ConfigurationError(
                "RateSettings expects min_rate <= initial_rate <= max_rate, got "
                f"{self.min_rate!r}, {self.initial_rate!r} and {self.max_rate!r}"
            )


class LatencyWindow:
    """The 90th percentile of the last ``size`` latencies, kept in sorted order."""

    def __init__(self, size: int = RTT_SAMPLES) -> None:
        self._arrival: deque[float] = deque()
        self._sorted: list[float] = []
        self._size = size

    def add(self, latency_s: float) -> None:
        if len(self._arrival) == self._size:
            oldest = self._arrival.popleft()
            del self._sorted[bisect.bisect_left(self._sorted, oldest)]

        self._arrival.append(latency_s)
        bisect.insort(self._sorted, latency_s)

    @property
    def max_s(self) -> float:
        """The longest recent latency; 0 until the first sample."""
        return self._sorted[-1] if self._sorted else 0.0

    @property
    def p90_s(self) -> float | None:
        """``None`` until the first sample."""
        if not self._sorted:
            return None
        return self._sorted[math.ceil(0.9 * len(self._sorted)) - 1]


class RateController:
    """Discovers and tracks the rate the server accepts; see the module docstring."""

    def __init__(
        self, settings: RateSettings | None = None, *, rng: random.Random | None = None
    ) -> None:
        self.settings = settings or RateSettings()
        self._rng = rng or random.Random()
        self._latency = LatencyWindow()
        self._sent: deque[tuple[float, float]] = deque()
        """Send time and the rate then, of each request sent within ``H``."""
        self._first_sent_at: float | None = None
        self._accepted: deque[float] = deque()
        self._accepted_sends: deque[float] = deque()
        self._accepted_total = 0
        self._admitted = AdmittedSends()
        self._windows = QuotaWindows()
        self._ceiling = KnownCeiling()

        self.mode = RateMode.STARTUP
        self.throttles = 0
        self.cuts = 0
        self.barrier_until = -math.inf
        """No request may be sent before this time (window mode)."""
        self.asked_until = -math.inf
        """The end of the latest hold as the server asked for it: ``barrier_until``
        without the jitter this client adds."""
        self.may_probe = True
        """Whether recovery may climb past ``W_max``; off near the end of the runs."""

        self._rate = self.settings.initial_rate
        self._window_start: float | None = None
        self._window_s = max(STARTUP_WINDOW_S, STARTUP_WINDOW_SENDS / self._rate)
        self._window_sends = 0
        self._window_answers = [0, 0]
        """Successes and failures answered in the current start-up window."""

        self._curve = RecoveryCurve(self._rate, -math.inf, RECOVERY_KNEE_S)
        self._last_cut_at = -math.inf
        self._episode_until = -math.inf
        """A 429 for a request sent up to here belongs to the latest episode."""
        self._last_refused_at = -math.inf
        self._reset_at: float | None = None
        self._accepted_at_reset = 0

    def __repr__(self) -> str:
        return f"<RateController {self.mode} {self._rate:.3g} req/s, {self.cuts} cuts>"

    @property
    def rtt_p90_s(self) -> float | None:
        """90th percentile of recent successful round trips; 429s are left out."""
        return self._latency.p90_s

    @property
    def horizon_s(self) -> float:
        """``H``: how far back accepted and used rates are measured."""
        return max(1.0, 2 * (self.rtt_p90_s or 0.0) + 0.5)

    @property
    def known_limit(self) -> float | None:
        """The limit the throttling episodes pinned down, in req/s; ``None`` if not."""
        return self._ceiling.rate

    def rate_at(self, now: float) -> float:
        """The rate allowed at ``now``, in requests per second."""
        if self.mode is RateMode.STARTUP:
            self._close_window(now)
        else:
            self._rate = self._recovery_rate(now)
        return self._rate

    @property
    def accepted_total(self) -> int:
        """Requests accepted so far; the difference of two readings over any window
        gives the accepted rate there (a trial of smaller blocks, say)."""
        return self._accepted_total

    def accepted_rate(self, now: float) -> float:
        """Successful answers per second over the last ``H`` seconds."""
        return len(self._trimmed(self._accepted, now)) / self.horizon_s

    def used_rate(self, now: float) -> float:
        """Requests sent per second over the last ``H`` seconds."""
        oldest = now - self.horizon_s
        while self._sent and self._sent[0][0] <= oldest:
            self._sent.popleft()
        return len(self._sent) / self.horizon_s

    def on_sent(self, now: float) -> None:
        """A request leaves now."""
        if self._first_sent_at is None:
            self._first_sent_at = now
        if self._window_start is None:
            self._reset_at = now
            self._start_window(now)

        self._close_window(now)
        self._window_sends += 1
        self._sent.append((now, self._rate))
        self._admitted.on_sent(now)
        self._forget(now)

    def on_success(self, now: float, latency_s: float) -> None:
        """A request was accepted after ``latency_s`` seconds."""
        self._window_answers[0] += 1
        self._latency.add(latency_s)
        self._accepted.append(now)
        self._accepted_sends.append(now - latency_s)
        self._accepted_total += 1
        self._forget(now)

    def _forget(self, now: float) -> None:
        """Drop what is older than any measure reads, so that memory stays bounded
        in a run that is never throttled: the measures trim to ``H`` only when they
        are read, and the cuts that read them may never come. The longest look back
        is ``H`` before a request sent a round trip ago; twice that is kept, and at
        least ``MEMORY_S``, as long as the admitted sends are."""
        reach_s = 2 * (self.horizon_s + self._latency.max_s)
        oldest = now - max(MEMORY_S, reach_s)
        while self._sent and self._sent[0][0] < oldest:
            self._sent.popleft()
        for times in (self._accepted, self._accepted_sends):
            while times and times[0] < oldest:
                times.popleft()

    def on_server_error(self, now: float, sent_at: float) -> None:
        """A request sent at ``sent_at`` was admitted but failed (5xx)."""
        del now  # the same signature as the other answers; only the send time counts
        self._window_answers[1] += 1
        self._accepted_sends.append(sent_at)

    def on_lost(self, sent_at: float) -> None:
        """A request sent at ``sent_at`` got no answer: not known to be admitted."""
        self._window_answers[1] += 1
        self._admitted.on_lost(sent_at)

    def on_throttle(
        self, now: float, sent_at: float, retry_after_s: float | None
    ) -> bool:
        """A request sent at ``sent_at`` got a 429; returns whether the rate was cut."""
        self.throttles += 1
        self._admitted.on_refused(now, sent_at)
        if retry_after_s is not None and retry_after_s > WINDOW_MODE_RETRY_AFTER_S:
            self.mode = RateMode.WINDOW

        if sent_at <= self._last_cut_at or self._refused_since_cut(now, sent_at):
            # Same episode: no second cut, but never send before any announced reset.
            if self.mode is RateMode.WINDOW and retry_after_s is not None:
                self.barrier_until = max(self.barrier_until, now + retry_after_s)
                self.asked_until = max(self.asked_until, now + retry_after_s)
            return False

        self._cut(now, sent_at, retry_after_s)
        return True

    def _refused_since_cut(self, now: float, sent_at: float) -> bool:
        """Whether the request sent at ``sent_at`` left before the ``Retry-After`` of
        the latest cut ran out, and the server has admitted none sent since the cut:
        it then still refuses all, as a fixed window used up does until its reset,
        and a lower rate changes nothing. A limit that fell (a token bucket's rate
        halved) admits some requests at the lower rate, and its 429s cut again."""
        if sent_at > self._episode_until:
            return False

        until = self._admitted.known_until(now, self._latency.max_s)
        return self._admitted.count(self._last_cut_at, until) == 0

    def _cut(self, now: float, sent_at: float, retry_after_s: float | None) -> None:
        before = self.rate_at(now)
        throttled = min(before, self._sending_rate(sent_at))
        if self.mode is RateMode.WINDOW and retry_after_s is not None:
            self._ceiling.forget()
            accepted, self._curve = self._window_cut(
                now, sent_at, retry_after_s, before
            )
        elif self.mode is RateMode.STARTUP:
            accepted, self._curve = self._startup_cut(now, sent_at, throttled)
        else:
            accepted, self._curve = self._recovery_cut(now, sent_at, throttled)

        self._last_cut_at = now
        # The server refuses until the wait it announced is over, whatever the rate
        # (a fixed window used up, say): a refusal of a send before then is no news.
        self._episode_until = now + (retry_after_s or 0.0)
        self._last_refused_at = sent_at
        self.cuts += 1
        self._rate = self._recovery_rate(now)
        known = ", limit known" if self._ceiling.rate is not None else ""
        logger.info(
            "throttled: rate %.3g -> %.3g req/s (accepted %.3g req/s, mode %s%s)",
            before,
            self._rate,
            accepted,
            self.mode,
            known,
        )

    def _startup_cut(
        self, now: float, sent_at: float, throttled: float
    ) -> tuple[float, RecoveryCurve]:
        """The cut that ends start-up: common, its limit only a guess to confirm.

        The first 429 may come from a start-up rate that never grew (the hint), a
        jitter of arrival times rather than a limit: that episode probes at the
        common pace, and only a limit met again in recovery is taken as known.

        The rate accepted is a floor of the limit, and the spacing of the sends
        that drew the 429 a ceiling of it. Where the two lie far apart, the guess is
        their geometric mean, probed three times as fast as a common cut's
        (``guess_curve``). That happens where the client had fewer requests to send
        than its pace allowed over ``H`` (its permits held by queries the server sat
        on, say): the floor alone, at the common pace, held the rate near half the
        limit some 8 s. And it happens at a few requests a second, where a step of
        start-up overshot a limit between its rates (4 and 6 around a limit of 5):
        the floor alone, approached over 100 requests' worth, cost some 10 s there.
        """
        accepted = self._accepted_rate_for_cut(now)
        self.mode = RateMode.RECOVERY
        w_max = _measured_limit(accepted, throttled, self.settings.min_rate)
        drew = self._rate_that_drew(sent_at, throttled, w_max)
        # Sends spaced about as what was accepted (a client held by its permits
        # rather than stalled) leave nothing to guess between.
        if accepted > 0 and drew > (1 + CONFIRMED_LIMIT) * w_max:
            w_max = math.sqrt(w_max * drew)
            self._ceiling.suppose(w_max)
            return accepted, guess_curve(w_max, now)

        self._ceiling.suppose(w_max)
        return accepted, common_curve(w_max, throttled, now, stretch=False)

    def _rate_that_drew(self, sent_at: float, throttled: float, w_max: float) -> float:
        """The ceiling of the limit that the send refused at ``sent_at`` shows, to
        guess between at the end of start-up; 0 where there is none to trust.

        After a stall, the spacing of the latest sends. At a few requests a second,
        the spacing of the refused send from the one before it (the step that
        overshot), never above the pacer's rate. At higher rates a step's overshoot
        is found again within a second at the common pace, while a guess past the
        limit would draw a second episode of 429s for the requests in flight.
        """
        clump = self._rate_sent_below_pace(sent_at)
        if clump is not None:
            return min(self._paced_rate(sent_at), clump)
        if not stretched_approach(w_max):
            return 0.0

        previous = max((t for t, _ in self._sent if t < sent_at), default=None)
        if previous is None:
            return 0.0
        return min(throttled, 1 / (sent_at - previous))

    def _recovery_cut(
        self, now: float, sent_at: float, throttled: float
    ) -> tuple[float, RecoveryCurve]:
        """A cut after start-up: shallow where the episodes agree on the limit."""
        accepted = self._admitted_rate(now)
        w_max = _measured_limit(accepted, throttled, self.settings.min_rate)
        # Throttled again right after a cut: the limit is lower than it was. Or well
        # past the curve's W_max: probing found a raised limit, and the fast climb
        # past it says little about where it lies. Either way the limit is unknown,
        # and the common cut keeps probing upward at the common pace.
        recut = now - self._last_cut_at < RECUT_SHARE * self.horizon_s
        probing = throttled > (2 - CUT_FACTOR) * self._curve.w_max
        if recut or probing:
            self._ceiling.forget()
            return accepted, common_curve(w_max, throttled, now)

        since_last = self._cycle_rate(sent_at)
        known = self._ceiling.learn(accepted, since_last, throttled)
        if known is None:
            return accepted, common_curve(w_max, throttled, now)

        limit = max(min(known, throttled), self.settings.min_rate)
        return accepted, known_curve(limit, now)

    def _cycle_rate(self, refused_at: float) -> float:
        """The rate admitted between the requests that started this episode and the
        previous one, both refused: a token bucket is empty at both, so this is its
        own rate, less what overflowed while the client sent less."""
        since = self._last_refused_at
        if not refused_at > since:
            return 0.0
        return self._admitted.count(since, refused_at) / (refused_at - since)

    def _window_cut(
        self, now: float, sent_at: float, retry_after_s: float, before: float
    ) -> tuple[float, RecoveryCurve]:
        """Hold until the reset, then spread the quota over the next window."""
        previous_hold = self._reset_at
        accepted, hold_until = self._hold_until_reset(now, retry_after_s)
        began, next_reset = self._windows.on_refusal(now, retry_after_s)
        if previous_hold is not None:
            began = max(began, previous_hold)
        # The quota: what the window just used up admitted, up to the refused
        # request (those sent after it are refused too). Paced to be used up by the
        # earliest next reset: at worst it runs out a little early. A long jitter may
        # leave little of the next window: then pace over half of one, and let the
        # next refusal tell the rest.
        quota = self._admitted.count(began, sent_at)
        window_s = self._windows.length_s
        next_reset = max(next_reset, hold_until + window_s / 2)
        pace = quota / (next_reset - hold_until)
        # Never below what the windows since the previous reset let through.
        w_max = _measured_limit(accepted, before, self.settings.min_rate)
        if WINDOW_PACE_SHARE * pace <= CUT_FACTOR * w_max:
            return accepted, common_curve(w_max, before, hold_until)
        return pace, window_curve(pace, hold_until, next_reset, window_s)

    def _hold_until_reset(
        self, now: float, retry_after_s: float
    ) -> tuple[float, float]:
        reset = now + retry_after_s * (1 + BARRIER_JITTER * self._rng.random())
        previous = self._reset_at if self._reset_at is not None else now
        accepted = self._accepted_total - self._accepted_at_reset
        self.barrier_until = max(self.barrier_until, reset)
        self.asked_until = max(self.asked_until, now + retry_after_s)
        self._reset_at = reset
        self._accepted_at_reset = self._accepted_total
        # The previous reset is in the past (nothing is sent before a reset), so the
        # window measured is at least Retry-After long.
        return accepted / (reset - previous), reset

    def _recovery_rate(self, now: float) -> float:
        curve = self._curve
        # The send this rate is read for counts as used: read just before it, the
        # last H holds one send fewer than the pace, and at a few requests per
        # second half as much again as that is no more than the pace itself, which
        # then never grows (1.8 req/s after a first query refused, for good).
        used = self.used_rate(now) + 1 / self.horizon_s
        ceiling = GROWTH_CAP * used
        if not self.may_probe:
            # No probe past what is known: the rate climbs back to W_max, and one
            # that probing already took above W_max without a 429 stays there. Cut
            # to W_max, it dropped from 6.6 to 0.46 req/s at the end of a plan, W_max
            # being what the few sends before a 429 at start-up measured.
            ceiling = min(ceiling, max(curve.w_max, self._rate))
        rate = max(curve.floor, min(curve.rate_at(now), ceiling))
        return min(max(rate, self.settings.min_rate), self.settings.max_rate)

    def _start_window(self, start: float) -> None:
        self._window_start = start
        self._window_s = max(
            STARTUP_WINDOW_S,
            2 * (self.rtt_p90_s or 0.0),
            STARTUP_WINDOW_SENDS / self._rate,
        )
        self._window_sends = 0
        self._window_answers = [0, 0]

    def _close_window(self, now: float) -> None:
        start = self._window_start
        if self.mode is not RateMode.STARTUP or start is None:
            return
        if now < start + self._window_s:
            return

        used = self._window_sends / self._window_s
        grown = min(2 * self._rate, GROWTH_CAP * used, self.settings.max_rate)
        succeeded, failed = self._window_answers
        if succeeded or not failed:
            # A window whose answers all failed says nothing of how fast the server
            # takes requests: a server answering only errors is not asked faster.
            self._rate = max(self._rate, grown)
        end = start + self._window_s
        # A window that passed entirely unused starts the next one afresh at now.
        self._start_window(end if now < end + self._window_s else now)

    def _accepted_rate_for_cut(self, now: float) -> float:
        admitted = self._admitted_rate(now)
        if self.mode is not RateMode.STARTUP:
            return admitted

        sends = self._complete_accepted_sends(now)
        if len(sends) < RECENT_SAMPLES or sends[-1] <= sends[0]:
            return admitted
        # The rate was climbing, and an average over the horizon lags behind it. The
        # latest sends whose answers are all in passed for sure, at their rate.
        return max(admitted, _spacing_rate(sends[-RECENT_SAMPLES:]))

    def _admitted_rate(self, now: float) -> float:
        """The rate admitted over ``H`` up to the latest send whose fate is known.

        With fewer than two admitted sends to space, the rate at which the latest
        of them left: the first 429 may come after a single request.
        """
        admitted = self._admitted
        until = admitted.known_until(now, self._latency.max_s)
        # Not across the previous refusal, where the request refused leaves a gap
        # that reads as a slower rate; unless that was right before, and the few
        # sent since went at a pace the 429 says is too fast.
        after = self._last_refused_at
        recut = now - self._last_cut_at < RECUT_SHARE * self.horizon_s
        if recut or admitted.count(after, until) < 2:
            after = -math.inf
        rate = admitted.rate(until, self.horizon_s, MIN_SAMPLES, after)
        if rate > 0:
            return rate

        latest = admitted.latest(until)
        return 0.0 if latest is None else self._paced_rate(latest)

    def _complete_accepted_sends(self, now: float) -> list[float]:
        """Send times of the accepted requests over ``H``, in order."""
        # Requests sent within the longest recent round trip may still be on their
        # way; counting the answered ones alone would make the last stretch look
        # sparse. So the horizon ends that long ago, where the record is complete.
        complete_until = now - self._latency.max_s
        since = complete_until - self.horizon_s
        while self._accepted_sends and self._accepted_sends[0] <= since:
            self._accepted_sends.popleft()
        # Answers come back out of order, so their send times are sorted here.
        return sorted(t for t in self._accepted_sends if since < t <= complete_until)

    def _sending_rate(self, sent_at: float) -> float:
        """How fast requests left when the one sent at ``sent_at`` did: the pacer's
        rate then, or less where the client had fewer requests to send: at least
        10 sends went out at about that rate, and further apart than it.

        The spacing is read over ``H`` before ``sent_at``, as the admitted rate is:
        a stall further back, such as every permit held by requests the server sat
        on, would read as a client with little to send, and the cut would land far
        below the rate that drew the 429. With fewer than 10 sends in ``H`` the
        spacing says too little, and the pacer's rate counts.
        """
        paced = self._paced_rate(sent_at)
        least = (1 - APP_LIMITED_SHARE) * paced
        since = sent_at - self.horizon_s
        at_pace: list[float] = []
        for moment, rate in reversed(self._sent):
            if moment > sent_at:
                continue
            if rate < least or moment < since:
                break
            at_pace.append(moment)

        if len(at_pace) < RECENT_SAMPLES:
            return paced
        at_pace.reverse()

        spaced = _spacing_rate(at_pace)
        return spaced if spaced < least else paced

    def _rate_sent_below_pace(self, sent_at: float) -> float | None:
        """The rate of the latest sends up to ``sent_at``, if fewer requests left
        over ``H`` before it (or since the first send) than the pace allowed, by
        more than a quarter; else ``None``. The pace of the first send in ``H``
        counts: in start-up it is the least of a rate that only grew. Not judged on
        fewer than 10 sends' worth."""
        since = sent_at - self.horizon_s
        sends = [
            (moment, rate) for moment, rate in self._sent if since < moment <= sent_at
        ]
        if len(sends) < 2 or self._first_sent_at is None:
            return None

        first_rate = sends[0][1]
        allowed = first_rate * (sent_at - max(since, self._first_sent_at))
        if allowed < RECENT_SAMPLES or len(sends) >= (1 - BELOW_PACE_SHARE) * allowed:
            return None

        latest = [moment for moment, _ in sends[-CLUMP_SENDS:]]
        return _spacing_rate(latest)

    def _paced_rate(self, sent_at: float) -> float:
        """The pacer's rate when the request sent at ``sent_at`` left, if known."""
        for moment, rate in reversed(self._sent):
            if moment <= sent_at:
                return rate
        return self._rate

    def _trimmed(self, times: deque[float], now: float) -> deque[float]:
        oldest = now - self.horizon_s
        while times and times[0] <= oldest:
            times.popleft()
        return times


def _spacing_rate(sends: list[float]) -> float:
    """Requests per second from sorted send times, as evenly spaced as the pacer made
    them (answer times would add the jitter of the round trip)."""
    span_s = sends[-1] - sends[0]
    return (len(sends) - 1) / span_s if span_s > 0 else 0.0


def _measured_limit(accepted: float, throttled: float, min_rate: float) -> float:
    """``W_max`` from the accepted rate; nothing accepted says little: halve."""
    w_max = min(accepted, throttled) if accepted > 0 else throttled / 2
    return max(w_max, min_rate)
