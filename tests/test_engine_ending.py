"""The end of a run: once its plan is all taken, nothing is tried that could only
delay the last answers."""

from __future__ import annotations

from datetime import timedelta

from powerp_async.control import AdaptivePacer
from powerp_async.events import Event, RequestDone
from powerp_async.planning import TimeRange, plan_blocks
from powerp_async.simulator import Simulator

from .conftest import ANCHOR
from .helpers import largest_group, one_at_a_time


async def test_the_rate_stops_probing_once_the_last_block_is_taken(
    settings, monkeypatch
) -> None:
    # Room for one block's points at a time: each block is taken from the plan
    # only once the one before is done, so the plan lasts until the last block.
    monkeypatch.setattr("powerp_async._engine.MAX_POINTS_IN_FLIGHT", 1)
    probing: list[bool] = []

    def note(event: Event) -> None:
        if isinstance(event, RequestDone):
            assert isinstance(client.pacer, AdaptivePacer)
            probing.append(client.pacer.controller.may_probe)

    async with (
        Simulator(settings) as simulator,
        one_at_a_time(simulator, on_event=note) as client,
    ):
        signals = largest_group(await client.measurements())[:2]
        span = TimeRange.snap(ANCHOR - timedelta(hours=2), ANCHOR, 60_000_000)
        plan = list(plan_blocks(signals, span, block_size=20))
        async with client.engine().run(plan) as stream:
            answered = [result.ok async for result in stream]
        assert isinstance(client.pacer, AdaptivePacer)
        after = client.pacer.controller.may_probe

    # Slices of at most 30 minutes: only the last is sent once the plan is all taken.
    assert len(plan) == 5
    assert answered == [True] * 5
    assert probing == [True, True, True, True, False]
    assert after is True
