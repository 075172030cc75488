"""The throttling benchmark in miniature, against real simulator processes.

Timings are not asserted (they depend on the machine); the files, their structure and
the exactness of a finite job with server faults are.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks._throttling_bins import steady_bins
from benchmarks._throttling_cases import Case, bucket_case
from benchmarks.throttling import run_cases
from powerp_async.simulator import named_scenario

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_faults_case() -> Case:
    """``faults-5pct`` over a job the best client would finish in half a second."""
    return Case(
        name="faults-5pct",
        goals=("G7",),
        scenario=named_scenario("faults-5pct"),
        simulator_args=("--scenario", "faults-5pct", "--latency-ms", "5"),
        duration_s=0.5,
        job="finite",
        exact=True,
        limit_per_s=100.0,
    )


# Most tests here read one costly benchmark run: they stay on one test worker.
pytestmark = pytest.mark.xdist_group("bench-throttling")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out_dir = tmp_path_factory.mktemp("throttling")
    chosen = (bucket_case(50, 3.0), tiny_faults_case())
    return run_cases(chosen, out_dir, mode="tiny", command="test"), out_dir


@pytest.mark.timeout(120)
def test_writes_the_three_files(results: tuple[dict, Path]) -> None:
    raw, out_dir = results

    assert sorted(p.name for p in out_dir.iterdir()) == [
        "throttling.json",
        "throttling.md",
        "throttling.png",
    ]
    assert json.loads((out_dir / "throttling.json").read_text()) == raw
    assert (out_dir / "throttling.png").read_bytes()[:8] == PNG_SIGNATURE


@pytest.mark.timeout(120)
def test_table_has_one_row_per_check(results: tuple[dict, Path]) -> None:
    raw, out_dir = results
    lines = (out_dir / "throttling.md").read_text().splitlines()
    rows = [line for line in lines if line.startswith("| ")]

    assert rows[0] == "| scenario | goal | target | measured | result |"
    assert [row.split(" | ")[:2] for row in rows[1:]] == [
        ["| bucket-50", "G1"],
        ["| bucket-50", "G2"],
        ["| faults-5pct", "G7"],
        ["| faults-5pct", "G7"],
        ["| faults-5pct", "G7"],
        ["| faults-5pct", "G7"],
    ]
    assert len(raw["checks"]) == 6


@pytest.mark.timeout(120)
def test_records_server_seconds_and_client_samples(results: tuple[dict, Path]) -> None:
    raw, _ = results
    bucket, faults = raw["scenarios"]

    assert [bucket["name"], faults["name"]] == ["bucket-50", "faults-5pct"]
    assert raw["mode"] == "tiny"
    assert set(raw["machine"]) == {
        "python",
        "platform",
        "processor",
        "cores",
        "load_average",
    }
    for scenario in (bucket, faults):
        assert scenario["per_second"], scenario["name"]
        assert set(scenario["per_second"][0]) == {
            "second",
            "accepted",
            "throttled",
            "failed",
            "points",
        }
        assert scenario["samples"][0]["mode"] == "startup"
        assert scenario["samples"][0]["circuit"] == "closed"

    # Every block the client finished was an accepted answer on the server; the server
    # may also count the token and the listing, but never more queries than were sent.
    accepted = sum(row["accepted"] for row in bucket["per_second"])
    engine = bucket["engine"]
    assert 0 < engine["blocks_done"] <= accepted <= engine["requests"] + 2
    assert bucket["job"]["ceiling"] is None
    assert bucket["limit_steps"][0][1] == 50.0


@pytest.mark.timeout(120)
def test_finite_job_with_faults_is_complete_and_exact(
    results: tuple[dict, Path],
) -> None:
    raw, _ = results
    faults = raw["scenarios"][1]
    exactness = faults["exactness"]

    assert faults["metrics"]["completed"] is True
    assert faults["metrics"]["failed_blocks"] == 0
    assert exactness["exact"] is True
    assert exactness["missing"] == exactness["unexpected"] == exactness["repeated"] == 0
    assert exactness["fetched_points"] == exactness["expected_points"] > 0
    assert faults["job"]["ceiling"]["bound"] == "requests"
    exact_check = [c for c in raw["checks"] if c["target"] == "complete and exact"]
    assert [c["passed"] for c in exact_check] == [True]


def _run_of(job: str, blocks_done: list[int]) -> SimpleNamespace:
    """A run of 20 one-second bins of 100 accepted requests each, but for the last
    of them, and one client sample a second with the blocks done by then."""
    per_second = [
        {"second": second, "accepted": 100 if second < 19 else 30, "throttled": 0}
        for second in range(20)
    ]
    samples = [
        {"t": float(second), "blocks_done": done}
        for second, done in enumerate(blocks_done)
    ]
    outcome = SimpleNamespace(
        client_start=0.0,
        client_end=20.5,
        samples=samples,
        stats=SimpleNamespace(blocks_done=blocks_done[-1]),
    )
    case = SimpleNamespace(job=job, limit_per_s=100.0)
    return SimpleNamespace(case=case, outcome=outcome, per_second=per_second)


def test_steady_bins_of_a_finite_job_end_when_its_work_runs_short() -> None:
    # 1,830 blocks; at 18 s only 30 are left, less than a second's worth at 100/s,
    # so the bin from 18 s on, whose requests ran out, is no steady state.
    done = [100 * second for second in range(19)] + [1_830, 1_830]
    finite = _run_of("finite", done)
    endless = _run_of("endless", done)

    assert [row["second"] for row in steady_bins(finite)] == list(range(10, 18))
    assert [row["second"] for row in steady_bins(endless)] == list(range(10, 20))
