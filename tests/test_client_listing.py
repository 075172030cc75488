"""A metadata listing that contradicts itself, names unknown types or holds a time it
cannot read: kept, and said."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import orjson
import pytest
from aiohttp import web

from powerp_async import (
    DataType,
    ExportSpec,
    MalformedResponseError,
    Measurement,
    ServerUnavailableError,
    TransportError,
    export,
    plan_export,
)
from powerp_async._token import TOKEN_ATTEMPTS
from powerp_async.client import _parse_measurements
from powerp_async.simulator import Simulator, SimulatorSettings
from powerp_async.simulator._exchange import TOKEN_PATH
from powerp_async.simulator._settings import Handler

from .conftest import ANCHOR
from .helpers import (
    assert_exact,
    expected_points,
    one_at_a_time,
    rewriting_settings,
)
from .test_export import read_dataset

URL = "http://127.0.0.1:1/rt-api/api/v1/measurements"
SIGNAL = {"databaseId": 1, "index": 7, "dataType": "double", "unitSymbol": "kW"}


def export_of(
    out: Path, chosen: list[Measurement], span: timedelta, window: str
) -> ExportSpec:
    """An export of the ``chosen`` signals of database 1 over ``span`` to the anchor."""
    return ExportSpec(
        out=out,
        start=ANCHOR - span,
        end=ANCHOR,
        window=window,
        databases=(1,),
        indexes=tuple(m.index for m in chosen),
    )


def listing_rewritten(change: Callable[[list[dict]], None]) -> Handler:
    """A simulator policy that passes the listing's rows through ``change``."""

    async def rewrite(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.path.endswith("/measurements"):
            assert isinstance(response, web.Response)
            rows = orjson.loads(bytes(response.body))
            change(rows)
            response.body = orjson.dumps(rows)
        return response

    return rewrite


def parsed(rows: list[dict], caplog) -> list:
    with caplog.at_level(logging.WARNING, logger="powerp_async.client"):
        return _parse_measurements(orjson.dumps(rows), URL)


def test_a_signal_listed_twice_is_kept_once(caplog) -> None:
    other = {"databaseId": 2, "index": "7", "dataType": "int"}

    signals = parsed([SIGNAL, other, SIGNAL], caplog)

    assert [(m.database_id, m.index) for m in signals] == [(1, "7"), (2, "7")]
    assert caplog.messages == [
        "signal database 1 index '7' is listed more than once; kept as first listed"
    ]


def test_a_later_listing_that_differs_is_named_and_the_first_kept(caplog) -> None:
    changed = {**SIGNAL, "index": "7", "unitSymbol": "MW", "dataType": "int"}

    signals = parsed([SIGNAL, changed], caplog)

    assert [(m.index, m.unit_symbol, m.data_type) for m in signals] == [
        ("7", "kW", DataType.FLOAT)
    ]
    assert caplog.messages == [
        "signal database 1 index '7' is listed more than once; kept as first listed "
        "(the later listing differs)"
    ]


def test_an_unknown_data_type_is_kept_as_unknown(caplog) -> None:
    strange = {"databaseId": 3, "index": "x", "dataType": "complex"}
    untyped = {"databaseId": 3, "index": "y"}

    signals = parsed([SIGNAL, strange, untyped], caplog)

    assert [(m.index, m.data_type) for m in signals] == [
        ("7", DataType.FLOAT),
        ("x", None),
        ("y", None),
    ]
    assert caplog.messages == [
        "signal database 3 index 'x' has dataType 'complex', which this client does "
        "not know: its values are placed by their JSON type"
    ]


def test_a_first_data_point_that_is_not_a_time_is_left_unknown(caplog) -> None:
    odd = {"databaseId": 3, "index": "x", "firstDataPoint": "yesterday"}
    dated = {"databaseId": 3, "index": "y", "firstDataPoint": "2026-01-02T03:04:05Z"}

    edge = {
        "databaseId": 3,
        "index": "z",
        "firstDataPoint": "0001-01-01T00:00:00+01:00",
    }

    signals = parsed([odd, dated, {**SIGNAL, "firstDataPoint": 17}, edge], caplog)

    assert [m.first_data_point for m in signals] == [
        None,
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        None,
        None,
    ]
    assert caplog.messages == [
        "signal database 3 index 'x' has firstDataPoint 'yesterday', which is not a "
        "time this client reads: it is asked for from the start of every range",
        "signal database 1 index '7' has firstDataPoint 17, which is not a time this "
        "client reads: it is asked for from the start of every range",
        "signal database 3 index 'z' has firstDataPoint '0001-01-01T00:00:00+01:00', "
        "which is not a time this client reads: it is asked for from the start of "
        "every range",
    ]


def test_a_first_data_point_without_a_zone_is_the_earliest_it_can_mean(
    caplog,
) -> None:
    local = {**SIGNAL, "firstDataPoint": "2026-12-05T12:40:00"}
    other = {**SIGNAL, "index": 8, "firstDataPoint": "2026-12-05T01:00:00.5"}
    zoned = {**SIGNAL, "index": 9, "firstDataPoint": "2026-12-05T12:40:00+01:00"}

    signals = parsed([local, other, zoned], caplog)

    assert [m.first_data_point for m in signals] == [
        datetime(2026, 12, 4, 22, 40, tzinfo=UTC),
        datetime(2026, 12, 4, 11, 0, 0, 500_000, tzinfo=UTC),
        datetime(2026, 12, 5, 11, 40, tzinfo=UTC),
    ]
    assert caplog.messages == [
        "2 signal(s) give firstDataPoint without a time zone, such as "
        "'2026-12-05T12:40:00': each is taken as the earliest instant it can mean, "
        "14 hours before that time in UTC, so that no data is skipped before it"
    ]


async def test_an_export_skips_nothing_before_a_first_point_given_without_a_zone(
    tmp_path,
) -> None:
    # The listing's time is a local one, an hour before the range ends: read as
    # UTC, the two hours before it would be skipped as holding nothing.
    late = (ANCHOR - timedelta(hours=1)).replace(tzinfo=None).isoformat()

    def local_first_points(rows: list[dict]) -> None:
        for row in rows:
            row["firstDataPoint"] = late

    async with (
        Simulator(
            rewriting_settings(listing_rewritten(local_first_points))
        ) as simulator,
        one_at_a_time(simulator) as client,
    ):
        chosen = [m for m in await client.measurements() if m.database_id == 1][:3]
        spec = export_of(tmp_path / "out", chosen, timedelta(hours=3), "1m")
        report = await export(client, spec)

    expected = expected_points(simulator.tenant, chosen, spec.time_range())
    assert len(expected) == 3 * 180
    assert_exact(read_dataset(spec.out), expected)
    assert report.complete


async def test_a_plan_names_the_signals_listed_as_starting_after_its_range(
    tmp_path,
) -> None:
    def one_starts_next_year(rows: list[dict]) -> None:
        rows[0]["firstDataPoint"] = "2027-06-01T00:00:00Z"

    async with (
        Simulator(
            rewriting_settings(listing_rewritten(one_starts_next_year))
        ) as simulator,
        one_at_a_time(simulator) as client,
    ):
        chosen = [m for m in await client.measurements() if m.database_id == 1][:5]
        spec = export_of(tmp_path / "out", chosen, timedelta(minutes=10), "1m")
        plan = await plan_export(client, spec)

    assert (plan.signals, plan.after_range) == (4, 1)
    assert (
        plan.describe()
        .splitlines()[1]
        .endswith(
            "; 1 other signal left out, listed as starting after the range "
            "(firstDataPoint)"
        )
    )


async def test_a_first_listing_that_outlasts_the_outage_allowed_is_not_tried_again(
    tmp_path, caplog
) -> None:
    async def slow_and_failing(
        request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if not request.path.endswith("/measurements"):
            return await handler(request)

        await anyio.sleep(0.4)
        raise web.HTTPServiceUnavailable()

    async with (
        Simulator(rewriting_settings(slow_and_failing)) as simulator,
        one_at_a_time(simulator, max_outage_s=0.2) as client,
    ):
        spec = export_of(tmp_path / "out", [], timedelta(minutes=10), "1m")
        with (
            caplog.at_level(logging.WARNING),
            pytest.raises(ServerUnavailableError, match="before anything was fetched"),
        ):
            await export(client, spec)

    assert simulator.stats.requests["measurements"] == {503: 1}
    assert not [m for m in caplog.messages if "trying again" in m]


# End to end, against a simulator whose listing repeats a signal, names a new type
# and gives a first data point that is not a time.

REPEATED = (1, "3")
STRANGE = (1, "4")
UNDATED = (1, "5")


async def odd_listing(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if not request.path.endswith("/measurements"):
        return response

    assert isinstance(response, web.Response)
    rows = orjson.loads(bytes(response.body))
    for row in rows:
        if (row["databaseId"], str(row["index"])) == STRANGE:
            row["dataType"] = "complex"
        if (row["databaseId"], str(row["index"])) == UNDATED:
            row["firstDataPoint"] = "yesterday"
    rows += [row for row in rows if (row["databaseId"], str(row["index"])) == REPEATED]
    response.body = orjson.dumps(rows)
    return response


@pytest.fixture
def settings() -> SimulatorSettings:
    return rewriting_settings(odd_listing)


async def test_an_export_from_such_a_listing_is_exact(
    client, simulator, tmp_path, caplog
) -> None:
    with caplog.at_level(logging.WARNING, logger="powerp_async.client"):
        signals = await client.measurements()
    keys = [(m.database_id, m.index) for m in signals]
    chosen = [m for m in signals if m.database_id == 1][:10]
    spec = export_of(tmp_path / "out", chosen, timedelta(minutes=20), "10s")

    await export(client, spec)

    assert len(keys) == len(set(keys)) == len(simulator.tenant.signals)
    assert {STRANGE, REPEATED, UNDATED} <= {(m.database_id, m.index) for m in chosen}
    assert caplog.messages == 2 * [  # listed by the test, then by the export
        "signal database 1 index '4' has dataType 'complex', which this client does "
        "not know: its values are placed by their JSON type",
        "signal database 1 index '5' has firstDataPoint 'yesterday', which is not a "
        "time this client reads: it is asked for from the start of every range",
        "signal database 1 index '3' is listed more than once; kept as first listed",
    ]
    expected = expected_points(simulator.tenant, chosen, spec.time_range())
    assert_exact(read_dataset(spec.out), expected)


@pytest.mark.parametrize("max_outage_s", [30.0, 0.3])
async def test_a_token_endpoint_that_never_answers_is_tried_as_often_as_once(
    settings: SimulatorSettings, monkeypatch, max_outage_s: float
) -> None:
    monkeypatch.setattr("powerp_async._token.backoff_s", lambda attempt: 0.0)
    tried = []

    async def hang_tokens(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != TOKEN_PATH:
            return await handler(request)

        tried.append(request.path)
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    hung = dataclasses.replace(settings, policies=(hang_tokens,))
    async with (
        Simulator(hung) as simulator,
        one_at_a_time(simulator, timeout_s=0.2, max_outage_s=max_outage_s) as client,
    ):
        with pytest.raises(TransportError, match=r"no complete answer within 0\.2 s"):
            await client.measurements(attempts=4)

    if max_outage_s > 1:
        # The token's own tries, not that many for each try of the listing.
        assert len(tried) == TOKEN_ATTEMPTS == 4
    else:
        # Tries that time out count against max_outage_s as waits do: one or two
        # fit in 0.3 s, a third on a machine loaded enough to be late with each
        # timeout, never all four.
        assert 1 <= len(tried) < TOKEN_ATTEMPTS


async def test_a_listing_that_runs_on_is_not_read_to_its_end(
    settings: SimulatorSettings, monkeypatch
) -> None:
    monkeypatch.setattr("powerp_async.client.MAX_LISTING_BYTES", 100_000)
    listed = []

    async def endless(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.endswith("/measurements"):
            return await handler(request)

        listed.append(request.path)
        answer = web.StreamResponse(headers={"Content-Type": "application/json"})
        await answer.prepare(request)
        await answer.write(b"[")
        with contextlib.suppress(ConnectionError):
            for _ in range(100_000):  # 100 MB, unless the client hangs up
                await answer.write(orjson.dumps(SIGNAL) * 10 + b",")
        return answer

    runs_on = dataclasses.replace(settings, policies=(endless,))
    async with Simulator(runs_on) as simulator, one_at_a_time(simulator) as client:
        with pytest.raises(MalformedResponseError) as caught:
            await client.measurements()

    assert str(caught.value) == (
        "listing measurements: the answer ran past 100,000 bytes, more than a listing "
        "of a million signals takes; the rest was not read"
    )
    assert len(listed) == 1  # not retried: it would run on again
