"""The side-by-side benchmark's harness, on a job small enough for a test.

Nothing here looks at timings: the figures depend on the machine. What must hold
everywhere is what each contender asked for and received, since the simulator's data
and the plans are deterministic.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks import compare
from benchmarks.contenders import Job, Query, plan, retry_delay_s

REQUESTS_BY_CONTENDER = {
    "request-bound": {
        "notebook": 7,
        "fan-out": 7,
        "static-oracle": 6,
        "powerp-async": 4,
        "powerp-async-20": 4,
        "powerp-async-parquet": 4,
    },
    "byte-bound": {
        "notebook": 6,
        "fan-out": 6,
        "static-oracle": 6,
        "powerp-async": 4,
        "powerp-async-20": 4,
        "powerp-async-parquet": 4,
    },
}
POINTS_BY_SETTING = {
    "request-bound": 400,
    "byte-bound": 2_400,
    "growth-signals-20x60s": 1_200,
    "growth-range-20x120s": 2_400,
}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("bench")
    return {"out": out, "results": compare.run("tiny", out)}


@pytest.mark.timeout(300)
def test_every_contender_gets_every_point_once(results: dict[str, Any]) -> None:
    everything = results["results"]["settings"] + results["results"]["growth"]
    seen = {}
    for setting in everything:
        name = setting["setting"]["name"]
        for run in setting["runs"]:
            assert "error" not in run, (name, run)
            seen[(name, run["contender"])] = (
                run["rows"],
                run["expected_points"],
                run["lost"],
                run["duplicated"],
                run["server_throttled"],
            )

    expected = {
        (name, contender): (POINTS_BY_SETTING[name], POINTS_BY_SETTING[name], 0, 0, 0)
        for name, contenders in _contenders_by_setting().items()
        for contender in contenders
    }
    assert seen == expected


def _contenders_by_setting() -> dict[str, tuple[str, ...]]:
    growth = ("powerp-async",)
    return {
        "request-bound": compare.ALL_CONTENDERS,
        "byte-bound": compare.ALL_CONTENDERS,
        "growth-signals-20x60s": growth,
        "growth-range-20x120s": growth,
    }


@pytest.mark.timeout(300)
def test_requests_are_counted_by_the_server(results: dict[str, Any]) -> None:
    counted = {
        setting["setting"]["name"]: {
            run["contender"]: run["server_requests"] for run in setting["runs"]
        }
        for setting in results["results"]["settings"]
    }

    assert counted == REQUESTS_BY_CONTENDER


@pytest.mark.timeout(300)
def test_the_ceiling_and_the_wire_sample_are_reported(results: dict[str, Any]) -> None:
    request_bound = results["results"]["settings"][0]
    notebook = request_bound["runs"][0]

    assert request_bound["ceiling"]["requests"] == 4
    assert request_bound["ceiling"]["points"] == 400
    assert request_bound["ceiling"]["bound"] == "latency"
    assert (
        notebook["wire"]["gzip_bytes_per_point"] < notebook["wire"]["bytes_per_point"]
    )


@pytest.mark.timeout(300)
def test_outputs_are_written(results: dict[str, Any]) -> None:
    out: Path = results["out"]
    written = sorted(p.name for p in out.iterdir())
    table = (out / "compare.md").read_text()
    stored = json.loads((out / "compare.json").read_text())

    assert written == [
        "compare.json",
        "compare.md",
        "compare_growth.png",
        "compare_throughput.png",
    ]
    rows = [line.split(" | ")[0] for line in table.splitlines()]
    assert {
        name: rows.count(f"| {name}") for name in compare.ALL_CONTENDERS
    } == dict.fromkeys(compare.ALL_CONTENDERS, 2)
    assert stored["mode"] == "tiny"


def test_lost_and_duplicated_points_are_counted_per_signal() -> None:
    result: dict[str, Any] = {"counts": [[1, "1", 10], [1, "2", 12], [2, "1", 3]]}
    expected = {(1, "1"): 11, (1, "2"): 11, (1, "3"): 5}

    compare.check_points(result, expected)

    assert result == {"expected_points": 27, "lost": 6, "duplicated": 4}


def test_the_notebook_plan_slices_groups_and_blocks() -> None:
    listing = [
        {"databaseId": 1, "index": n, "defaultAgg": "mean" if n < 13 else None}
        for n in range(15)
    ]
    job = Job("http://127.0.0.1:1", "id", "secret", 14, 0, 1_800_000_000, "1m")

    queries = list(plan(listing, job, slice_us=900_000_000, block_size=10))

    first_slice = [
        Query(1, "mean", tuple(str(n) for n in range(10)), 0, 900_000_000),
        Query(1, "mean", ("10", "11", "12"), 0, 900_000_000),
        Query(1, "last", ("13",), 0, 900_000_000),
    ]
    assert queries[:3] == first_slice
    assert [q.start_us for q in queries[3:]] == [900_000_000] * 3


def test_a_job_refuses_a_range_off_the_window_grid() -> None:
    with pytest.raises(ValueError, match="whole number of 1m windows, got 90000000 us"):
        Job("http://127.0.0.1:1", "id", "secret", 1, 0, 90_000_000, "1m")


def test_retry_waits_follow_retry_after_then_double() -> None:
    assert [retry_delay_s("2", 0), retry_delay_s(None, 0), retry_delay_s("x", 3)] == [
        2.0,
        0.25,
        2.0,
    ]
