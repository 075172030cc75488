"""The side-by-side benchmark's harness, on a job small enough for a test.

Nothing here looks at timings: the figures depend on the machine. What must hold
everywhere is what each contender asked for and received, since the simulator's data
and the plans are deterministic.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from benchmarks import compare
from benchmarks._compare_goals import goals, steady_cpu_us_per_point
from benchmarks.contenders import Job, Query, plan, retry_delay_s

# Every test here reads one costly comparison run: they stay on one test worker.
pytestmark = pytest.mark.xdist_group("bench-compare")

REQUESTS_BY_CONTENDER = {
    "request-bound": {
        "notebook": 7,
        "fan-out": 7,
        "static-oracle": 6,
        "powerp-async": 4,
        "powerp-async-parquet": 4,
    },
    "byte-bound": {
        "notebook": 6,
        "fan-out": 6,
        "static-oracle": 6,
        "powerp-async": 4,
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
    growth = ("powerp-async-flat-out", "powerp-async")
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


@pytest.mark.timeout(300)
def test_the_growth_steps_run_alone_beside_the_whole_comparison(
    tmp_path: Path,
) -> None:
    (tmp_path / "compare.md").write_text("the last whole comparison\n")

    stored = compare.run("tiny", tmp_path, only="growth")

    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [
        "compare.md",
        "growth_only.json",
        "growth_only.md",
        "growth_only.png",
    ]
    assert (tmp_path / "compare.md").read_text() == "the last whole comparison\n"
    assert (stored["only"], stored["settings"]) == ("growth", [])
    assert {
        g["setting"]["name"]: [
            (r["contender"], r["rows"], r["lost"]) for r in g["runs"]
        ]
        for g in stored["growth"]
    } == {
        name: [(contender, points, 0) for contender in compare.SMALL_STEP_CONTENDERS]
        for name, points in (
            ("growth-signals-20x60s", 1_200),
            ("growth-range-20x120s", 2_400),
        )
    }
    table = (tmp_path / "growth_only.md").read_text()
    exact = "| no point lost or duplicated | 0 lost, 0 duplicated of 21,600 points |"
    assert f"| every powerp-async run (12) {exact} pass |" in table
    assert "### Growth: powerp-async alone, 1 s windows, no limits" in table
    assert "request-bound" not in table


def test_only_names_a_part_of_the_comparison(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only must be one of \\('growth',\\)"):
        compare.run("tiny", tmp_path, only="byte-bound")

    assert list(tmp_path.iterdir()) == []


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


@pytest.mark.timeout(120)
@pytest.mark.parametrize("contender", compare.TIME_LIMITED)
def test_a_run_stopped_at_its_limit_is_checked_against_what_it_completed(
    contender: str,
) -> None:
    setting = replace(
        compare.make_plan("tiny").settings[0], span_s=3600, time_limit_s=0.5
    )
    expected_whole = sum(compare.expected_counts(setting).values())

    result = compare.run_contender(contender, setting)
    completed = result.pop("completed")
    compare.check_points(result, compare.completed_counts(setting, completed))

    assert result["cut_off"] is True
    assert 0 < result["rows"] < expected_whole
    assert (result["lost"], result["duplicated"]) == (0, 0)
    assert result["rows"] == result["expected_points"]


def _run(contender: str, rows: int, elapsed_s: float, **more: Any) -> dict[str, Any]:
    return {
        "contender": contender,
        "rows": rows,
        "elapsed_s": elapsed_s,
        "lost": 0,
        "duplicated": 0,
        "server_throttled": 0,
        "server_requests": 10,
        **more,
    }


def _growth_run(
    n: int, cpu_s: float, rss_mb: float, contender: str = "powerp-async-flat-out"
) -> dict[str, Any]:
    run = _run(contender, n, 1.0, cpu_s=cpu_s, peak_rss_mb=rss_mb)
    run["first_answer"] = (0.5, n // 10)
    return run


def _growth_step(kind: str, n: int, cpu_s: float, rss_mb: float) -> dict[str, Any]:
    return {
        "setting": {"name": f"growth-{kind}-{n}x1s"},
        "runs": [_growth_run(n, cpu_s, rss_mb)],
    }


def test_goals_are_judged_from_the_run_itself() -> None:
    request_bound = {
        "setting": {"name": "request-bound"},
        "runs": [
            _run("notebook", 1_000, 10.0, cut_off=True),
            _run("fan-out", 2_000, 10.0, server_throttled=7, server_requests=14),
            _run("static-oracle", 40_000, 10.0),
            _run("powerp-async", 40_000, 11.0, lost=2),
        ],
    }
    growth = [
        _growth_step("signals", 1_000, 1.5, 100.0),
        _growth_step("signals", 10_000, 10.5, 130.0),
        _growth_step("range", 1_000, 1.4, 100.0),
    ]

    judged = [
        goal.row() for goal in goals({"settings": [request_bound], "growth": growth})
    ]

    assert judged == [
        ["request-bound", ">= 20 x the notebook's points/s", "36.4 x", "pass"],
        ["request-bound", ">= 90% of the static oracle's points/s", "90.9%", "pass"],
        [
            "request-bound",
            "the naive fan-out is throttled",
            "50% of its requests answered 429",
            "pass",
        ],
        [
            "every powerp-async run (4)",
            "no point lost or duplicated",
            "request-bound powerp-async: 2 lost, 0 dup",
            "**fail**",
        ],
        [
            "growth in signals (flat out)",
            "CPU per point flat within 25% (max / min)",
            "1111.11 us to 1111.11 us, 1.00 x",
            "pass",
        ],
        [
            "growth in signals (flat out)",
            "peak RSS flat within 25% (max / min)",
            "100 MB to 130 MB, 1.30 x",
            "**fail**",
        ],
    ]


def test_growth_reads_the_least_cpu_of_the_flat_out_runs_and_memory_of_two() -> None:
    small = {
        "setting": {"name": "growth-range-1000x1s"},
        "runs": [
            _growth_run(1_000, 2.3, 100.0),
            _growth_run(1_000, 1.4, 90.0),
            _growth_run(1_000, 1.35, 400.0),  # a third run, as a small step has
            _growth_run(1_000, 0.6, 500.0, contender="powerp-async"),
        ],
    }
    large = _growth_step("range", 10_000, 10.5, 120.0)

    judged = [goal.row() for goal in goals({"settings": [], "growth": [small, large]})]

    assert judged == [
        [
            "every powerp-async run (5)",
            "no point lost or duplicated",
            "0 lost, 0 duplicated of 14,000 points",
            "pass",
        ],
        [
            "growth in range (flat out)",
            "CPU per point flat within 25% (max / min)",
            "944.44 us to 1111.11 us, 1.18 x",
            "pass",
        ],
        [
            "growth in range (flat out)",
            "peak RSS flat within 25% (max / min)",
            "100 MB to 120 MB, 1.20 x",
            "pass",
        ],
    ]


def test_steady_cost_leaves_the_first_answer_out() -> None:
    run = _run("powerp-async", 1_100, 1.0, cpu_s=0.3, first_answer=(0.2, 100))

    assert steady_cpu_us_per_point(run) == pytest.approx(100.0)
    assert steady_cpu_us_per_point({**run, "first_answer": None}) is None
