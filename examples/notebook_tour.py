"""Everything the reference notebook does, through powerp-async's public API.

Lists the signals, queries the last 15 minutes at 200 ms windows of every
(database, aggregation) group in safe blocks, shows a metadata table, and queries two
chosen indexes of the first database.

Runs against the embedded simulator unless ``POWERP_API_BASE_URL`` names a server, in
which case ``POWERP_CLIENT_ID`` and ``POWERP_CLIENT_SECRET`` are used as well::

    python examples/notebook_tour.py
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta

from powerp_async import PowerPClient
from powerp_async.planning import group_signals
from powerp_async.simulator import Simulator

LOOKBACK = timedelta(minutes=15)
WINDOW = "200ms"


async def tour(client: PowerPClient) -> None:
    signals = await client.measurements()
    print(f"Total measurements: {len(signals)}")

    end = datetime.now(UTC)
    start = end - LOOKBACK
    for (database_id, aggregation), members in group_signals(signals).items():
        heading = f"Database {database_id} | Aggregation {aggregation}"
        print(f"{heading} | Signals {len(members)}")
        table = await client.fetch_table(members, start, end, window=WINDOW)
        per_signal = Counter(table.column("index").to_pylist())
        print(f"- received {table.num_rows} data points from {len(per_signal)} signals")

    print("Preview of metadata (first 5 rows):")
    for signal in signals[:5]:
        print(
            f"  {signal.index:>5}  {signal.name}  [{signal.unit_symbol}]  "
            f"{signal.aggregation}  {signal.data_type}"
        )

    first = signals[0]
    chosen = await client.query(
        first.database_id,
        ["1", "2"],
        start,
        end,
        aggregation=first.aggregation,
        window=WINDOW,
    )
    print(f"Requested indexes ['1', '2'] -> received {chosen.num_rows} data points")


async def main() -> None:
    async with AsyncExitStack() as stack:
        if os.environ.get("POWERP_API_BASE_URL"):
            client = PowerPClient.from_env()
        else:
            simulator = await stack.enter_async_context(Simulator())
            client = PowerPClient(
                client_id="demo",
                client_secret="demo-secret",
                base_url=simulator.base_url,
                max_rate=50,
            )
        await tour(await stack.enter_async_context(client))


if __name__ == "__main__":
    asyncio.run(main())
