"""Every query the API refuses, with the exact message that says what to fix."""

from __future__ import annotations

import pytest

from .conftest import MISSING, post_query, query_body

TWENTY_ONE = [str(n) for n in range(1, 22)]


@pytest.mark.parametrize(
    ("body", "error", "message"),
    [
        pytest.param(
            query_body(measurementIndexes=TWENTY_ONE),
            "too_many_indexes",
            "measurementIndexes holds 21 indexes: expected at most 20 per query",
            id="21 indexes",
        ),
        pytest.param(
            query_body(measurementIndexes=[]),
            "no_indexes",
            "measurementIndexes is empty: expected 1 to 20 indexes",
            id="no index",
        ),
        pytest.param(
            query_body(measurementIndexes=[1, 2]),
            "invalid_field",
            "measurementIndexes must be a list of strings, got [1, 2]",
            id="numeric indexes",
        ),
        pytest.param(
            query_body(endTime="2026-12-04T16:30:00Z"),
            "span_too_long",
            "the range spans 30m: expected less than 30 minutes; split longer ranges "
            "into several queries",
            id="30 minutes",
        ),
        pytest.param(
            query_body(endTime="2026-12-04T16:00:00Z"),
            "empty_range",
            "endTime must be after startTime, got startTime 2026-12-04T16:00:00Z and "
            "endTime 2026-12-04T16:00:00Z",
            id="end equals start",
        ),
        pytest.param(
            query_body(endTime="2026-12-04T15:59:59.5Z"),
            "empty_range",
            "endTime must be after startTime, got startTime 2026-12-04T16:00:00Z and "
            "endTime 2026-12-04T15:59:59.5Z",
            id="end before start",
        ),
        pytest.param(
            query_body(aggFunction="avg"),
            "unknown_aggregation",
            "aggFunction must be one of count, first, last, max, mean, median, min, "
            "sum, got 'avg'",
            id="unknown aggregation",
        ),
        pytest.param(
            query_body(aggFunction="Mean"),
            "unknown_aggregation",
            "aggFunction must be one of count, first, last, max, mean, median, min, "
            "sum, got 'Mean'",
            id="aggregation in capitals",
        ),
        pytest.param(
            query_body(windowPeriod="200"),
            "invalid_window_period",
            "windowPeriod: invalid duration '200': expected a number with a unit "
            "(us, ms, s, m, h, d, w), such as '200ms', '1s' or '1h30m'",
            id="window without unit",
        ),
        pytest.param(
            query_body(windowPeriod="0s"),
            "invalid_window_period",
            "windowPeriod: invalid duration '0s': it must be longer than zero",
            id="zero window",
        ),
        pytest.param(
            query_body(windowPeriod="500us"),
            "invalid_window_period",
            "windowPeriod '500us' is shorter than the smallest supported window, 1ms",
            id="window under 1ms",
        ),
        pytest.param(
            query_body(windowPeriod="600000w"),
            "invalid_window_period",
            "windowPeriod '600000w' is longer than any range of times the API takes "
            "(years 1 to 9999)",
            id="window over 10,000 years",
        ),
        pytest.param(
            query_body(windowPeriod="99999999999999999999d"),
            "invalid_window_period",
            "windowPeriod '99999999999999999999d' is longer than any range of times "
            "the API takes (years 1 to 9999)",
            id="window beyond 64 bits",
        ),
        pytest.param(
            query_body(windowPeriod=1),
            "invalid_window_period",
            "windowPeriod must be a duration string such as '200ms' or '1s', got 1",
            id="numeric window",
        ),
        pytest.param(
            query_body(startTime="2026-12-04T10:00:00+00:00Z"),
            "invalid_time",
            "startTime: invalid time '2026-12-04T10:00:00+00:00Z': expected ISO-8601 "
            "such as '2026-12-04T10:00:00Z'",
            id="offset and Z",
        ),
        pytest.param(
            query_body(endTime="yesterday"),
            "invalid_time",
            "endTime: invalid time 'yesterday': expected ISO-8601 such as "
            "'2026-12-04T10:00:00Z'",
            id="words for a time",
        ),
        pytest.param(
            query_body(startTime=1764842400),
            "invalid_time",
            "startTime must be an ISO-8601 string such as '2026-12-04T10:00:00Z', "
            "got 1764842400",
            id="epoch number",
        ),
        pytest.param(
            query_body(startTime="0001-01-01T00:00:00+01:00"),
            "invalid_time",
            "startTime: '0001-01-01T00:00:00+01:00' is outside the years 1 to 9999 "
            "once in UTC",
            id="before year 1 in UTC",
        ),
        pytest.param(
            query_body(databaseId=99),
            "unknown_database",
            "databaseId 99 does not exist: expected one of 1, 2, 3",
            id="unknown database",
        ),
        pytest.param(
            query_body(databaseId=True),
            "invalid_field",
            "databaseId must be an integer, got True",
            id="boolean database",
        ),
        pytest.param(
            query_body(measurementIndexes=["1", "13"]),
            "unknown_index",
            "index '13' does not exist in database 1",
            id="unknown index",
        ),
        pytest.param(
            query_body(databaseId=2, measurementIndexes=["1"]),
            "unknown_index",
            "index '1' does not exist in database 2",
            id="index of another database",
        ),
        pytest.param(
            query_body(measurementIndexes=["12"]),
            "unsupported_aggregation",
            "aggregation 'mean' needs numbers, but signal '12' of database 1 is bool: "
            "use one of count, first, last, max, min",
            id="mean of a bool",
        ),
        pytest.param(
            query_body(measurementIndexes=["1", "109"], aggFunction="sum"),
            "unsupported_aggregation",
            "aggregation 'sum' needs numbers, but signal '109' of database 1 is "
            "string: use one of count, first, last, max, min",
            id="sum of a string",
        ),
        pytest.param(
            query_body(windowPeriod=MISSING, endTime=MISSING),
            "missing_field",
            "missing field(s) endTime, windowPeriod: a query needs databaseId, "
            "measurementIndexes, startTime, endTime, aggFunction, windowPeriod",
            id="missing fields",
        ),
        pytest.param(
            [query_body()],
            "invalid_body",
            "expected a JSON object as the request body, got a JSON list",
            id="array body",
        ),
        pytest.param(
            b"{not json",
            "invalid_body",
            "expected a JSON object as the request body, got 9 bytes that are not JSON",
            id="not JSON",
        ),
    ],
)
async def test_bad_query_gets_400_with_a_message(
    http, sim, token, body, error, message
) -> None:
    status, answer = await post_query(http, sim, token, body)

    assert (status, answer) == (400, {"error": error, "message": message})


async def test_refusals_are_counted_as_failed(http, sim, token) -> None:
    await post_query(http, sim, token, query_body(aggFunction="avg"))

    snapshot = sim.stats.snapshot()
    assert snapshot["requests"]["query"] == {"400": 1}
    assert [(s["accepted"], s["failed"]) for s in snapshot["per_second"]] in (
        [(1, 1)],  # the token request and the refused query in one second
        [(1, 0), (0, 1)],
    )


async def test_the_token_is_checked_before_the_body(http, sim) -> None:
    status, answer = await post_query(http, sim, "bogus", b"{not json")

    assert status == 401
    assert answer["error"] == "invalid_token"
