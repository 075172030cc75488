"""A fixed pace meets an outage: the server's announced wait holds every request.

The adaptive pacer stops sending while the server is down; a fixed pace has no
breaker, so without this it would send first tries at its full rate into the outage,
each refused, whatever the 503s said about when it ends.
"""

from __future__ import annotations

import doctest
from collections import Counter
from dataclasses import replace
from datetime import timedelta

import pyarrow as pa

from powerp_async import PowerPClient, TimeRange, _announced
from powerp_async.events import Event, RequestDone
from powerp_async.simulator import Outage, Scenario, Simulator

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, expected_points

RATE = 40.0
OUTAGE = Outage(at_s=0.3, duration_s=1.5)


async def test_a_fixed_pace_waits_out_an_outage_instead_of_hammering_it(
    settings,
) -> None:
    down = replace(settings, scenario=Scenario(outage=OUTAGE))
    statuses: Counter[int | None] = Counter()

    def count(event: Event) -> None:
        if isinstance(event, RequestDone):
            statuses[event.status] += 1

    async with (
        Simulator(down) as simulator,
        PowerPClient(
            client_id="tester",
            client_secret=CLIENT_SECRET,
            base_url=simulator.base_url,
            adaptive=False,
            max_rate=RATE,
            on_event=count,
        ) as client,
    ):
        signals = [m for m in await client.measurements() if m.database_id == 1][:2]
        start = ANCHOR - timedelta(hours=20)
        table = await client.fetch_table(
            signals, start, ANCHOR, window="1m", block_size=1
        )

    # 2 signals x 42 slices: some 2 s at 40/s, and the outage 1.5 s. Sent into it:
    # the first half second's worth at the fixed pace (20), then nothing until its
    # announced end; without the hold, every slot of the 1.5 s (60).
    assert statuses[200] == 2 * 42
    assert 1 <= statuses[503] <= RATE * 0.5 + 4
    span = TimeRange.snap(start, ANCHOR, 60_000_000)
    assert_exact(
        pa.Table.from_batches(table.to_batches()),
        expected_points(simulator.tenant, signals, span),
    )


def test_the_examples_run() -> None:
    outcome = doctest.testmod(_announced)

    assert (outcome.failed, outcome.attempted) == (0, 4)
