"""Flux window semantics over HTTP: epoch grid, clipping at the range, labels, gaps."""

from __future__ import annotations

import pytest

from powerp_async._time import parse_wire
from powerp_async.simulator import Simulator, SimulatorSettings, format_timestamp

from .conftest import ANCHOR_US, fetch_token, post_query, query_body

T0 = "2026-12-04T16:00:00Z"
T0_US = parse_wire(T0)
SECOND_US = 1_000_000


def _stamps(answer: list[dict[str, object]], index: str = "1") -> list[object]:
    return [point["timestamp"] for point in answer if point["index"] == index]


async def _counts(
    http, sim, token, index: str, start: str, end: str, window: str = "1s"
) -> list[tuple[object, object]]:
    """(timestamp, number of samples) of each point of one signal."""
    body = query_body(
        measurementIndexes=[index],
        startTime=start,
        endTime=end,
        windowPeriod=window,
        aggFunction="count",
    )
    status, answer = await post_query(http, sim, token, body)
    assert status == 200
    return [(point["timestamp"], point["value"]) for point in answer]


def _expected(
    sim: Simulator, body: dict[str, object], index: str
) -> list[dict[str, object]]:
    """What :meth:`Tenant.points` defines for one signal, in the wire format."""
    window_us = {"1s": SECOND_US, "7s": 7 * SECOND_US, "1m": 60 * SECOND_US}
    points = sim.tenant.points(
        int(body["databaseId"]),  # type: ignore[call-overload]
        index,
        str(body["aggFunction"]),
        parse_wire(str(body["startTime"])),
        parse_wire(str(body["endTime"])),
        window_us.get(str(body["windowPeriod"]), 5_000),
    )
    return [
        {"index": index, "value": value, "timestamp": format_timestamp(stamp)}
        for stamp, value in points
    ]


async def test_aligned_range_gives_whole_windows_labelled_by_their_stop(
    http, sim, token
) -> None:
    body = query_body()

    status, answer = await post_query(http, sim, token, body)

    assert status == 200
    assert _stamps(answer) == [f"2026-12-04T16:00:{s:02d}Z" for s in range(1, 11)]
    assert answer == _expected(sim, body, "1") + _expected(sim, body, "2")
    assert [point["value"] for point in answer[:3]] == [503.1, 502.3, 501.4]


async def test_unaligned_start_gives_a_partial_first_window(http, sim, token) -> None:
    body = query_body(
        startTime="2026-12-04T16:00:00.3Z", endTime="2026-12-04T16:00:05.3Z"
    )

    status, answer = await post_query(http, sim, token, body)

    assert status == 200
    assert _stamps(answer) == [
        "2026-12-04T16:00:01Z",
        "2026-12-04T16:00:02Z",
        "2026-12-04T16:00:03Z",
        "2026-12-04T16:00:04Z",
        "2026-12-04T16:00:05Z",
        "2026-12-04T16:00:05.3Z",
    ]
    counts = await _counts(http, sim, token, "1", body["startTime"], body["endTime"])
    assert [count for _, count in counts] == [7, 10, 10, 10, 10, 3]


async def test_label_start_names_windows_by_their_clipped_start(http) -> None:
    settings = SimulatorSettings(label="start", anchor_us=ANCHOR_US)
    async with Simulator(settings) as sim:
        token = await fetch_token(http, sim, "demo-secret", "demo")
        body = query_body(
            startTime="2026-12-04T16:00:00.3Z", endTime="2026-12-04T16:00:03.25Z"
        )

        status, answer = await post_query(http, sim, token, body)

    assert status == 200
    assert _stamps(answer) == [
        "2026-12-04T16:00:00.3Z",
        "2026-12-04T16:00:01Z",
        "2026-12-04T16:00:02Z",
        "2026-12-04T16:00:03Z",
    ]


async def test_seven_second_windows_follow_the_epoch_grid(http, sim, token) -> None:
    # 16:00:00 is 3 s past a multiple of 7 s since the epoch: the first window is cut.
    body = query_body(endTime="2026-12-04T16:01:00Z", windowPeriod="7s")

    status, answer = await post_query(http, sim, token, body)

    assert status == 200
    assert (T0_US // SECOND_US) % 7 == 3
    assert _stamps(answer) == [
        "2026-12-04T16:00:04Z",
        "2026-12-04T16:00:11Z",
        "2026-12-04T16:00:18Z",
        "2026-12-04T16:00:25Z",
        "2026-12-04T16:00:32Z",
        "2026-12-04T16:00:39Z",
        "2026-12-04T16:00:46Z",
        "2026-12-04T16:00:53Z",
        "2026-12-04T16:01:00Z",
    ]
    counts = await _counts(
        http, sim, token, "1", body["startTime"], body["endTime"], "7s"
    )
    assert [count for _, count in counts] == [40] + [70] * 8
    assert answer == _expected(sim, body, "1") + _expected(sim, body, "2")


@pytest.mark.parametrize(
    "aggregation", ["mean", "min", "max", "first", "last", "median", "sum", "count"]
)
async def test_two_aligned_halves_equal_the_whole(
    http, sim, token, aggregation
) -> None:
    indexes = [str(i) for i in range(1, 12)]
    whole = query_body(
        measurementIndexes=indexes,
        endTime="2026-12-04T16:20:00Z",
        windowPeriod="1m",
        aggFunction=aggregation,
    )
    first = {**whole, "endTime": "2026-12-04T16:07:00Z"}
    second = {**whole, "startTime": "2026-12-04T16:07:00Z"}

    _, all_points = await post_query(http, sim, token, whole)
    _, first_points = await post_query(http, sim, token, first)
    _, second_points = await post_query(http, sim, token, second)

    def key(point: dict[str, object]) -> tuple[object, object]:
        return point["index"], point["timestamp"]

    assert len(all_points) == 11 * 20
    assert sorted(first_points + second_points, key=key) == sorted(all_points, key=key)


async def test_an_unaligned_split_aggregates_one_window_from_two_halves(
    http, sim, token
) -> None:
    whole = query_body(measurementIndexes=["1"])
    first = {**whole, "endTime": "2026-12-04T16:00:05.5Z"}
    second = {**whole, "startTime": "2026-12-04T16:00:05.5Z"}

    _, all_points = await post_query(http, sim, token, whole)
    _, first_points = await post_query(http, sim, token, first)
    _, second_points = await post_query(http, sim, token, second)

    split = {p["timestamp"]: p["value"] for p in first_points + second_points}
    single = {p["timestamp"]: p["value"] for p in all_points}
    assert len(split) == len(single) + 1
    assert split["2026-12-04T16:00:05.5Z"] != single["2026-12-04T16:00:06Z"]
    assert split["2026-12-04T16:00:06Z"] != single["2026-12-04T16:00:06Z"]


async def test_notebook_style_times_with_microseconds_are_accepted(
    http, sim, token
) -> None:
    body = query_body(
        startTime="2026-12-04T16:00:00.123456Z",
        endTime="2026-12-04T16:00:01.5+00:00",
        windowPeriod="200ms",
        measurementIndexes=["2"],
    )

    status, answer = await post_query(http, sim, token, body)

    assert status == 200
    # [00.123456, 00.2) holds no 10 Hz sample, so it yields no point.
    assert _stamps(answer, "2") == [
        "2026-12-04T16:00:00.4Z",
        "2026-12-04T16:00:00.6Z",
        "2026-12-04T16:00:00.8Z",
        "2026-12-04T16:00:01Z",
        "2026-12-04T16:00:01.2Z",
        "2026-12-04T16:00:01.4Z",
        "2026-12-04T16:00:01.5Z",
    ]


async def test_windows_below_the_sample_period_hold_one_sample_each(
    http, sim, token
) -> None:
    body = query_body(
        endTime="2026-12-04T16:00:00.35Z", windowPeriod="5ms", aggFunction="count"
    )

    status, answer = await post_query(http, sim, token, body)

    assert status == 200
    assert _stamps(answer) == [
        "2026-12-04T16:00:00.005Z",
        "2026-12-04T16:00:00.105Z",
        "2026-12-04T16:00:00.205Z",
        "2026-12-04T16:00:00.305Z",
    ]
    assert {p["value"] for p in answer} == {1}


async def test_a_range_without_any_sample_answers_an_empty_list(
    http, sim, token
) -> None:
    body = query_body(
        startTime="2026-12-04T16:00:00.01Z",
        endTime="2026-12-04T16:00:00.09Z",
        windowPeriod="1ms",
    )

    assert await post_query(http, sim, token, body) == (200, [])


async def test_the_lowercase_path_answers_the_same(http, sim, token) -> None:
    body = query_body()

    assert await post_query(http, sim, token, body, path="query") == await post_query(
        http, sim, token, body
    )


async def test_index_is_echoed_as_sent_once_each(http, sim, token) -> None:
    body = query_body(
        databaseId=2, measurementIndexes=["101", "101", "1010"], aggFunction="last"
    )

    status, answer = await post_query(http, sim, token, body)

    assert status == 200
    assert [p["index"] for p in answer] == ["101"] * 10 + ["1010"] * 10


async def test_values_of_every_type_match_the_tenant(http, sim, token) -> None:
    by_type = {}
    for spec in sim.tenant.signals:
        if spec.gap_key is None and spec.first_data_us < T0_US:
            by_type.setdefault((spec.database_id, spec.data_type.value), spec.index)
    for (database_id, data_type), index in sorted(by_type.items()):
        for aggregation in ("first", "last", "min", "max", "count"):
            body = query_body(
                databaseId=database_id,
                measurementIndexes=[index],
                aggFunction=aggregation,
            )

            status, answer = await post_query(http, sim, token, body)

            assert status == 200, (data_type, aggregation, answer)
            assert answer == _expected(sim, body, index)
            assert len(answer) == 10
    assert sorted(by_type) == [
        (1, "bool"),
        (1, "float"),
        (1, "string"),
        (2, "bool"),
        (2, "float"),
        (2, "string"),
        (3, "bool"),
        (3, "float"),
        (3, "int"),
        (3, "string"),
    ]


async def test_gaps_drop_windows_inside_an_outage_and_thin_the_edges(
    http, sim, token
) -> None:
    spec = sim.tenant.signal(1, "108")
    ten_o_clock_us = parse_wire("2026-12-04T10:00:00Z")
    outages = sim.tenant.offline_intervals(
        1, "108", ten_o_clock_us, ten_o_clock_us + 20 * 60 * SECOND_US
    )
    assert [(format_timestamp(a), format_timestamp(b)) for a, b in outages] == [
        ("2026-12-04T10:10:10Z", "2026-12-04T10:14:58Z")
    ]

    counts = await _counts(
        http, sim, token, "108", "2026-12-04T10:10:08Z", "2026-12-04T10:15:01Z"
    )

    assert spec.gap_key is not None
    assert counts == [
        ("2026-12-04T10:10:09Z", 10),
        ("2026-12-04T10:10:10Z", 10),
        ("2026-12-04T10:14:59Z", 10),
        ("2026-12-04T10:15:00Z", 10),
        ("2026-12-04T10:15:01Z", 10),
    ]


async def test_gap_edges_inside_a_window_reduce_its_count(http, sim, token) -> None:
    counts = await _counts(
        http, sim, token, "108", "2026-12-04T10:10:00Z", "2026-12-04T10:16:00Z", "1m"
    )

    # The outage runs 10:10:10 to 10:14:58: 100 samples before it, 20 after.
    assert counts == [
        ("2026-12-04T10:11:00Z", 100),
        ("2026-12-04T10:15:00Z", 20),
        ("2026-12-04T10:16:00Z", 600),
    ]


async def test_no_point_ends_at_or_before_the_first_data_point(
    http, sim, token
) -> None:
    spec = sim.tenant.signal(1, "242")
    assert format_timestamp(spec.first_data_us) == "2026-12-04T10:20:00Z"
    counts = await _counts(
        http, sim, token, "242", "2026-12-04T10:19:57Z", "2026-12-04T10:20:03Z"
    )

    assert counts == [
        ("2026-12-04T10:20:01Z", 10),
        ("2026-12-04T10:20:02Z", 10),
        ("2026-12-04T10:20:03Z", 10),
    ]


@pytest.mark.parametrize(
    ("stamp", "text"),
    [
        ("2026-12-04T10:00:00Z", "2026-12-04T10:00:00Z"),
        ("2026-12-04T10:00:00.2Z", "2026-12-04T10:00:00.2Z"),
        ("2026-12-04T10:00:00.120Z", "2026-12-04T10:00:00.12Z"),
        ("2026-12-04T10:00:00.123456Z", "2026-12-04T10:00:00.123456Z"),
        ("1969-12-31T23:59:59.9Z", "1969-12-31T23:59:59.9Z"),
        ("0999-01-01T00:00:00Z", "0999-01-01T00:00:00Z"),
    ],
)
def test_timestamps_are_rfc3339_with_trimmed_fractions(stamp, text) -> None:
    assert format_timestamp(parse_wire(stamp)) == text
