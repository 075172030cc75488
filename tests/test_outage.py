"""The engine's own account of an outage, which holds whatever the pace."""

from __future__ import annotations

import doctest

from powerp_async import _outage
from powerp_async._outage import OutageClock


def test_an_outage_runs_from_the_first_failure_until_a_success() -> None:
    now = [10.0]
    outage = OutageClock(lambda: now[0])

    readings = [outage.outage_s]
    outage.failed()
    now[0] = 12.0
    outage.failed()  # a later failure does not restart the count
    readings.append(outage.outage_s)
    outage.succeeded()
    readings.append(outage.outage_s)

    assert readings == [0.0, 2.0, 0.0]


def test_a_request_left_unanswered_counts_from_when_it_was_sent() -> None:
    now = [100.0]
    outage = OutageClock(lambda: now[0])
    outage.succeeded()

    now[0] = 161.0  # sent at 101, the server silent since, timed out at 161
    outage.failed(timed_out=True, sent_at=101.0)
    from_the_send = outage.outage_s
    outage.succeeded()  # at 161
    now[0] = 200.0  # sent at 150, before that success: the outage starts after it
    outage.failed(timed_out=True, sent_at=150.0)

    assert (from_the_send, outage.outage_s) == (60.0, 39.0)


def test_an_outage_is_made_of_timeouts_only_while_no_other_failure_joins() -> None:
    outage = OutageClock(lambda: 0.0)

    readings = [outage.only_timeouts]
    outage.failed(timed_out=True)
    outage.failed(timed_out=True)
    readings.append(outage.only_timeouts)
    outage.failed()  # a 5xx: the server answers, so it is not silence alone
    outage.failed(timed_out=True)
    readings.append(outage.only_timeouts)
    outage.succeeded()
    outage.failed(timed_out=True)  # a new outage judges afresh
    readings.append(outage.only_timeouts)
    outage.succeeded()
    readings.append(outage.only_timeouts)

    assert readings == [False, True, False, True, False]


def test_the_examples_run() -> None:
    outcome = doctest.testmod(_outage)

    assert (outcome.failed, outcome.attempted) == (0, 5)
