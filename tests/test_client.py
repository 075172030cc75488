"""The client against the in-process simulator: listing, one query, exact fetches."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from powerp_async import PowerPClient
from powerp_async import _engine as engine_module
from powerp_async._engine import Engine, RunStats
from powerp_async._time import format_wire, to_epoch_us
from powerp_async.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    FetchFailedError,
    MalformedResponseError,
    TransportError,
)
from powerp_async.models import POINT_SCHEMA, DataType, Measurement
from powerp_async.planning import TimeRange, plan_totals

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, client_of, expected_points

START = ANCHOR - timedelta(hours=1)


async def test_measurements_are_typed_records(client, simulator) -> None:
    signals = await client.measurements()

    assert len(signals) == len(simulator.tenant.signals) >= 1000
    assert len({m.database_id for m in signals}) >= 3
    assert {m.data_type for m in signals} >= {
        DataType.FLOAT,
        DataType.INT,
        DataType.BOOL,
        DataType.STRING,
    }
    assert all(isinstance(m.index, str) for m in signals)
    assert any(m.default_agg is None and m.aggregation == "last" for m in signals)


async def test_one_query_as_given_with_an_unaligned_start(client, simulator) -> None:
    start = START + timedelta(milliseconds=300)
    end = start + timedelta(seconds=10)

    table = await client.query(1, ["1", "2"], start, end, aggregation="mean")

    assert table.schema == POINT_SCHEMA
    expected = {}
    for index in ("1", "2"):
        for stamp, value in simulator.tenant.points(
            1, index, "mean", to_epoch_us(start), to_epoch_us(end), 1_000_000
        ):
            expected[(1, index, "mean", stamp)] = value
    assert len(expected) == 22  # a partial window at each end, nine whole ones
    assert_exact(table, expected)


async def test_a_signal_given_with_two_aggregations_is_fetched_with_each(
    client, simulator
) -> None:
    first = (await client.measurements())[0]
    as_max = dataclasses.replace(first, default_agg="max")
    # A count is an integer, declared so, whatever the signal counts.
    counted = dataclasses.replace(first, default_agg="count", data_type=DataType.INT)
    end = START + timedelta(hours=1)
    signals = [first, as_max, first, counted]

    table = await client.fetch_table(signals, START, end, window="1m")

    span = TimeRange.snap(START, end, 60_000_000)
    expected = expected_points(simulator.tenant, [first, as_max, counted], span)
    assert (first.aggregation, first.data_type) == ("mean", DataType.FLOAT)
    assert table.num_rows == len(expected) == 180
    # Each aggregation decoded by its own type: whole means stay floats.
    assert_exact(table, expected)
    assert table.column("aggregation").to_pylist() == (
        ["count"] * 60 + ["max"] * 60 + ["mean"] * 60
    )


@pytest.mark.parametrize("aggregation", ["mean", "median"])
async def test_an_average_of_int_signals_is_a_float_even_when_whole(
    client, simulator, aggregation
) -> None:
    ints = [m for m in await client.measurements() if m.data_type is DataType.INT]
    signals = [dataclasses.replace(m, default_agg=aggregation) for m in ints[:5]]
    end = START + timedelta(hours=4)

    table = await client.fetch_table(signals, START, end, window="10m")

    expected = expected_points(
        simulator.tenant, signals, TimeRange.snap(START, end, 600_000_000)
    )
    whole = [v for v in expected.values() if v == int(v)]  # type: ignore[call-overload]
    assert len(expected) == 120
    assert len(whole) >= 5
    assert table.column("value_int").null_count == table.num_rows
    assert_exact(table, expected)


@pytest.mark.parametrize("window", ["1s", "7s"])
async def test_fetch_is_exact_for_a_whole_database(client, simulator, window) -> None:
    signals = [m for m in await client.measurements() if m.database_id == 1][:120]
    end = START + timedelta(minutes=40)

    table = await client.fetch_table(signals, START, end, window=window)

    span = TimeRange.snap(START, end, {"1s": 1_000_000, "7s": 7_000_000}[window])
    expected = expected_points(simulator.tenant, signals, span)
    assert table.num_rows == len(expected) > 0
    assert_exact(table, expected)


async def test_fetch_streams_blocks_as_they_finish(client) -> None:
    everything = await client.measurements()
    key = (everything[0].database_id, everything[0].aggregation)
    signals = [m for m in everything if (m.database_id, m.aggregation) == key][:30]
    assert len(signals) == 30
    seen = []

    async with client.fetch(
        signals, START, START + timedelta(minutes=50), window="10s", block_size=20
    ) as results:
        async for result in results:
            seen.append((len(result.block.indexes), result.batch.num_rows > 0))

    # 30 signals in two blocks of 15 (not 20 and 10), over two slices.
    assert sorted(seen) == [(15, True)] * 4


@pytest.mark.parametrize(
    ("max_in_flight", "blocks", "workers"), [(128, 2, 2), (3, 5, 3)]
)
async def test_a_fetch_starts_workers_only_as_its_blocks_need_them(
    simulator, monkeypatch, max_in_flight, blocks, workers
) -> None:
    started = []
    work = Engine._work

    async def counted(self, *args):
        started.append(len(started))
        await work(self, *args)

    monkeypatch.setattr(Engine, "_work", counted)
    async with PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        max_in_flight=max_in_flight,
    ) as client:
        signals = (await client.measurements())[:1]
        end = START + timedelta(minutes=29 * blocks)
        # One 29-minute window per query: a block per window, each its own point.
        table = await client.fetch_table(signals, START, end, window="29m")

    assert (len(started), table.num_rows) == (workers, blocks)


async def test_token_expiry_mid_run_renews_and_continues(client, simulator) -> None:
    signals = [m for m in await client.measurements() if m.database_id == 1][:40]
    blocks_seen = 0

    async with client.fetch(
        signals, START, START + timedelta(minutes=60), window="5s", block_size=10
    ) as results:
        async for _ in results:
            blocks_seen += 1
            if blocks_seen == 3:
                simulator.revoke_tokens()

    span = TimeRange.snap(START, START + timedelta(minutes=60), 5_000_000)
    assert blocks_seen == plan_totals(signals, span, block_size=10)[0] > 3
    assert simulator.stats.tokens_issued == 2


async def test_a_refused_token_is_sent_no_more_once_a_401_came_back(simulator) -> None:
    # At a fixed pace many blocks wait their turn; those behind the one refused
    # must not go out with the dead token while it waits for its own turn again.
    async with client_of(simulator, max_rate=100, adaptive=False) as client:
        signals = [m for m in await client.measurements() if m.database_id == 1][:20]
        blocks_seen = 0
        stats = RunStats()
        async with client.fetch(
            signals,
            START,
            START + timedelta(minutes=30),
            window="1m",
            block_size=1,
            stats=stats,
        ) as results:
            async for _ in results:
                blocks_seen += 1
                if blocks_seen == 3:
                    simulator.revoke_tokens()

    queries = simulator.stats.requests["query"]
    assert stats.retries == queries[401]
    assert blocks_seen == 40
    assert queries[200] == 40
    assert queries[401] <= 2
    assert simulator.stats.tokens_issued == 2


async def test_more_than_twenty_signals_in_one_query_is_a_clear_error(client) -> None:
    with pytest.raises(ConfigurationError, match="1 to 20 signals, got 21"):
        await client.query(1, [str(n) for n in range(21)], START, START + timedelta(1))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            (1, "12"),
            "indexes: expected a sequence of signal indexes, such as ('12',) for one, "
            "got the bare value '12'",
        ),
        ((True, ["1"]), "database_id: expected an integer database id, got True"),
        (("1", ["1"]), "database_id: expected an integer database id, got '1'"),
    ],
)
async def test_query_arguments_of_the_wrong_kind_are_named(
    client, simulator, arguments: tuple, message: str
) -> None:
    end = START + timedelta(minutes=1)

    with pytest.raises(ConfigurationError) as caught:
        await client.query(*arguments, START, end)

    assert str(caught.value) == message
    assert simulator.stats.requests.get("query", {}) == {}


@pytest.mark.parametrize("stats", [{}, "x", 0])
async def test_stats_of_the_wrong_kind_are_refused_before_any_query(
    client, simulator, stats: object
) -> None:
    signals = (await client.measurements())[:1]
    end = START + timedelta(minutes=1)
    message = f"stats: expected a RunStats or None, got {type(stats).__name__}"

    with pytest.raises(ConfigurationError) as by_query:
        await client.query(1, ["1"], START, end, stats=stats)
    with pytest.raises(ConfigurationError) as by_fetch:
        async with client.fetch(signals, START, end, stats=stats) as results:
            [result async for result in results]

    assert (str(by_query.value), str(by_fetch.value)) == (message, message)
    assert simulator.stats.requests.get("query", {}) == {}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda _: {"block_size": 0},
            "block_size: expected an integer from 1 to 20, got 0",
        ),
        (
            lambda _: {"block_size": 1.5},
            "block_size: expected an integer from 1 to 20, got 1.5",
        ),
        (
            lambda _: {"block_size": True},
            "block_size: expected an integer from 1 to 20, got True",
        ),
        (
            lambda _: {"start": "2026-12-04T10:00:00Z"},
            "start: expected a datetime, got str '2026-12-04T10:00:00Z'",
        ),
        (
            # A text is iterable, but never a sequence of signals.
            lambda _: {"signals": "abc"},
            "signals: expected a sequence, got str 'abc'",
        ),
        (
            lambda _: {"signals": ["1"]},
            "signals: expected Measurement objects, as measurements() lists them, "
            "got str '1'",
        ),
        (
            lambda signals: {"signals": signals[0]},
            "signals: expected a sequence of Measurement, got a single one; pass "
            "[signal] for one",
        ),
    ],
)
async def test_fetch_arguments_of_the_wrong_kind_are_named(
    client, simulator, change, message: str
) -> None:
    signals = [m for m in await client.measurements() if m.database_id == 1][:3]
    arguments = {"signals": signals, "start": START, "end": START + timedelta(hours=1)}
    arguments.update(change(signals))

    with pytest.raises(ConfigurationError) as caught:
        await client.fetch_table(**arguments)

    assert str(caught.value) == message
    assert simulator.stats.requests.get("query", {}) == {}


async def test_query_refused_by_the_server_names_the_block(client) -> None:
    with pytest.raises(BadRequestError) as caught:
        await client.query(1, ["no-such-signal"], START, START + timedelta(minutes=1))

    assert caught.value.status == 400
    assert "database 1" in str(caught.value)


async def test_fetch_of_an_unknown_signal_fails_that_block_only(
    client, simulator
) -> None:
    signals = [m for m in await client.measurements() if m.database_id == 1][:3]
    ghost = Measurement(database_id=1, index="no-such-signal")
    rows = 0

    async def consume() -> None:
        nonlocal rows
        async with client.fetch(
            [*signals, ghost], START, START + timedelta(minutes=5), block_size=1
        ) as results:
            async for result in results:
                rows += result.batch.num_rows

    with pytest.raises(FetchFailedError) as caught:
        await consume()

    span = TimeRange.snap(START, START + timedelta(minutes=5), 1_000_000)
    assert rows == len(expected_points(simulator.tenant, signals, span)) > 0
    assert [b.indexes for b, _ in caught.value.failures] == [("no-such-signal",)]


@pytest.mark.parametrize("compression", [False, True])
async def test_an_answer_longer_than_its_points_take_is_refused_unread(
    simulator, monkeypatch, compression: bool
) -> None:
    # 20 bytes a point, where the simulator's JSON takes some 60: compressed or not,
    # each answer runs past its allowance once decompressed.
    monkeypatch.setattr(engine_module, "MAX_BYTES_PER_POINT", 20)
    monkeypatch.setattr(engine_module, "ANSWER_SLACK_BYTES", 0)
    async with PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        max_attempts=2,
        compression=compression,
    ) as client:
        signals = [m for m in await client.measurements() if m.database_id == 1][:2]
        end = START + timedelta(minutes=10)
        with pytest.raises(MalformedResponseError) as caught:
            await client.query(1, [m.index for m in signals], START, end)

    first, last = signals[0].index, signals[1].index
    assert str(caught.value) == (
        f"the answer to database 1 last [2 signals {first}..{last}] "
        "2026-12-04T11:00:00Z..2026-12-04T11:10:00Z ran past 24,000 bytes, far more "
        "than its 1,200 points at most can take; the rest was not read"
    )
    # Asked once: asked again, the same query would be answered as long.
    assert simulator.stats.requests["query"] == {200: 1}


def allow_bytes(monkeypatch, *, per_point: int, over: int) -> None:
    """Answers read to their end only up to ``over`` plus ``per_point`` a point."""
    monkeypatch.setattr(engine_module, "MAX_BYTES_PER_POINT", per_point)
    monkeypatch.setattr(engine_module, "ANSWER_SLACK_BYTES", over)


async def fetch_two_of_a_group(
    simulator, end: datetime
) -> tuple[list[Measurement], pa.Table]:
    """Two signals of one database and aggregation, fetched from START to ``end``."""
    async with PowerPClient(
        client_id="tester", client_secret=CLIENT_SECRET, base_url=simulator.base_url
    ) as client:
        signals = [m for m in await client.measurements() if m.database_id == 1]
        signals = [m for m in signals if m.aggregation == "last"][:2]
        return signals, await client.fetch_table(signals, START, end)


async def test_a_fetch_asks_for_an_answer_too_long_in_halves(
    simulator, monkeypatch
) -> None:
    # The simulator's JSON takes some 60 bytes a point: with 20 a point and 2,000
    # over, only queries of fewer than 50 points are read to their end, as queries
    # of long texts would be.
    allow_bytes(monkeypatch, per_point=20, over=2_000)
    end = START + timedelta(minutes=10)
    signals, table = await fetch_two_of_a_group(simulator, end)

    span = TimeRange.snap(START, end, 1_000_000)
    expected = expected_points(simulator.tenant, signals, span)
    assert_exact(table, expected)
    # Each query refused was asked for in two halves, each served or cut again.
    served = simulator.stats.requests["query"]
    assert set(served) == {200}
    assert served[200] > 1
    assert served[200] % 2 == 1


async def test_a_single_point_too_long_stops_its_group(simulator, monkeypatch) -> None:
    # No answer of the simulator fits in 20 bytes a point and nothing over, as no
    # body that never ends would: the first single point refused stops the group.
    allow_bytes(monkeypatch, per_point=20, over=0)
    with pytest.raises(FetchFailedError) as caught:
        await fetch_two_of_a_group(simulator, START + timedelta(seconds=4))

    # 8 points, halved three times down to the first single point; its sibling and
    # the other halves were then not asked for.
    assert simulator.stats.requests["query"] == {200: 4}
    assert str(caught.value.failures[0][1]).startswith(
        "database 1 last: even the answer for one signal over one window ran past "
        "what it may take (the answer to database 1 last [1 signal "
    )


async def test_wrong_secret_is_one_clear_authentication_error(simulator) -> None:
    async with PowerPClient(
        client_id="tester",
        client_secret="not-its-secret-1",
        base_url=simulator.base_url,
    ) as client:
        with pytest.raises(AuthenticationError, match="refused the client credentials"):
            await client.measurements()

    assert simulator.stats.tokens_issued == 0


async def test_closed_port_is_a_transport_error(monkeypatch) -> None:
    monkeypatch.setattr("powerp_async.client.backoff_s", lambda attempt: 0.0)
    monkeypatch.setattr("powerp_async._token.backoff_s", lambda attempt: 0.0)

    async with PowerPClient(
        client_id="x",
        client_secret="y",
        base_url="http://127.0.0.1:9/rt-api/api",
        timeout_s=5,
    ) as client:
        with pytest.raises(TransportError, match="cannot connect"):
            await client.measurements()


def test_plain_http_to_a_remote_host_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="unencrypted"):
        PowerPClient(
            client_id="x", client_secret="y", base_url="http://example.com/api"
        )


async def test_secret_and_token_never_logged(client, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="powerp_async")
    signals = (await client.measurements())[:5]

    await client.fetch_table(signals, START, START + timedelta(minutes=2))

    token = client._tokens._token
    text = caplog.text + repr(client) + repr(client.config)
    assert caplog.records
    assert CLIENT_SECRET not in text
    assert token not in text


async def test_result_tables_concatenate(client) -> None:
    signals = (await client.measurements())[:4]
    first = await client.fetch_table(signals, START, START + timedelta(minutes=1))
    second = await client.fetch_table(
        signals, START + timedelta(minutes=1), START + timedelta(minutes=2)
    )

    joined = pa.concat_tables([first, second])

    assert joined.num_rows == first.num_rows + second.num_rows


async def test_a_server_labelling_windows_by_their_start_is_exact(settings) -> None:
    from dataclasses import replace

    from powerp_async.simulator import Simulator

    simulator = Simulator(replace(settings, label="start"))
    end = START + timedelta(minutes=40)
    async with (
        simulator,
        PowerPClient(
            client_id="tester",
            client_secret=CLIENT_SECRET,
            base_url=simulator.base_url,
            initial_rate=100,
        ) as client,
    ):
        signals = (await client.measurements())[:30]
        table = await client.fetch_table(signals, START, end, window="5s")

    span = TimeRange.snap(START, end, 5_000_000)
    expected = expected_points(simulator.tenant, signals, span)
    assert min(stamp for *_, stamp in expected) == span.start_us
    assert_exact(table, expected)


async def test_a_fetch_ending_after_now_says_so(client, caplog) -> None:
    signals = [m for m in await client.measurements() if m.database_id == 2][:2]
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    end = now + timedelta(minutes=30)  # on the grid of 1-minute windows

    with caplog.at_level(logging.WARNING, logger="powerp_async.client"):
        await client.fetch_table(signals, now - timedelta(minutes=2), end, window="1m")
        await client.fetch_table(signals, now - timedelta(minutes=2), now, window="1m")

    assert [r.getMessage() for r in caplog.records] == [
        f"the range ends at {format_wire(to_epoch_us(end))}, after now: the server "
        "has no data there yet, and the windows after now are asked for all the same"
    ]
