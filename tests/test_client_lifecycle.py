"""A client used out of its life: entered twice, closed under a fetch, moved to
another loop; each a clear error, nothing leaked."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import anyio
import pytest

from powerp_async import PowerPClient
from powerp_async.testing import SimulatorThread

from .conftest import ANCHOR, CLIENT_SECRET


def _client(simulator) -> PowerPClient:
    return PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        initial_rate=100,
    )


async def test_entering_an_open_client_again_is_refused(simulator) -> None:
    client = _client(simulator)
    async with client:
        with pytest.raises(RuntimeError, match="open already; enter it once"):
            await client.__aenter__()

        signals = await client.measurements()

    assert len(signals) == len(simulator.tenant.signals)
    assert repr(client).endswith(" closed>")


async def test_closing_under_a_running_fetch_is_a_clear_error(simulator) -> None:
    client = _client(simulator)
    async with client:
        signals = (await client.measurements())[:200]

        async def close_soon() -> None:
            await anyio.sleep(0.3)
            await client.aclose()

        closing = asyncio.create_task(close_soon())
        with pytest.raises(RuntimeError, match="closed while this request waited"):
            await client.fetch_table(signals, ANCHOR - timedelta(hours=6), ANCHOR)

        await closing


def test_a_client_used_from_another_loop_says_so() -> None:
    with SimulatorThread() as server:
        opened = PowerPClient(server.client_config())
        home = asyncio.new_event_loop()
        home.run_until_complete(opened.__aenter__())

        async def list_elsewhere() -> None:
            await opened.measurements()

        try:
            with pytest.raises(RuntimeError, match="opened in another event loop"):
                asyncio.run(list_elsewhere())
            # Closing it there would leave its connections open, the client marked
            # closed: refused the same way, and it stays usable at home.
            with pytest.raises(RuntimeError, match="opened in another event loop"):
                asyncio.run(opened.aclose())

            listed = home.run_until_complete(opened.measurements())
        finally:
            home.run_until_complete(opened.aclose())
            home.close()

    assert len(listed) == len(server.tenant.signals)


@pytest.mark.parametrize("method", ["fetch", "fetch_batches"])
async def test_a_stream_iterated_or_awaited_directly_says_how_to_use_it(
    client, method
) -> None:
    signals = (await client.measurements())[:2]
    end = ANCHOR - timedelta(hours=1)
    stream = getattr(client, method)(signals, end - timedelta(minutes=5), end)
    usage = f"write 'async with client.{method}(...) as stream:'"

    with pytest.raises(TypeError, match="cannot be iterated directly") as iterated:
        async for _ in stream:
            pass
    with pytest.raises(TypeError, match="cannot be awaited directly") as awaited:
        await stream

    assert usage in str(iterated.value)
    assert usage in str(awaited.value)
    async with stream as items:
        assert [item async for item in items]


async def test_a_stream_entered_twice_says_to_call_again(client) -> None:
    signals = (await client.measurements())[:2]
    end = ANCHOR - timedelta(hours=1)
    stream = client.fetch_batches(signals, end - timedelta(minutes=5), end)
    async with stream as batches:
        rows = sum([batch.num_rows async for batch in batches])

    with pytest.raises(RuntimeError) as again:
        async with stream:
            pass

    assert rows > 0
    assert str(again.value) == (
        "this fetch_batches(...) was entered already: each call gives one stream, so "
        "call fetch_batches(...) again for another"
    )


@pytest.mark.parametrize("method", ["fetch", "fetch_batches"])
async def test_a_stream_read_after_its_block_says_to_read_it_inside(
    client, method
) -> None:
    signals = (await client.measurements())[:2]
    end = ANCHOR - timedelta(hours=1)
    async with getattr(client, method)(signals, end - timedelta(minutes=5), end) as s:
        first = await anext(s)
        stream = s

    with pytest.raises(RuntimeError) as late:
        await anext(stream)

    assert first is not None
    assert str(late.value) == (
        f"the stream of {method}(...) was read after its 'async with' ended, which "
        "stops the requests behind it: read it inside the 'async with' block"
    )
