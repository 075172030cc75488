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


def test_the_examples_run() -> None:
    outcome = doctest.testmod(_outage)

    assert (outcome.failed, outcome.attempted) == (0, 4)
