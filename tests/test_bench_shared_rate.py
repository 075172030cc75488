"""The shared-rate benchmarks' bookkeeping: send times from logs, the summary rows."""

from __future__ import annotations

from datetime import datetime

from benchmarks.shared_adaptive import markdown as adaptive_markdown
from benchmarks.shared_adaptive import summary as adaptive_summary
from benchmarks.shared_rate import markdown, send_times, summary

LOG = (
    "2026-12-04 22:00:01,250 DEBUG powerp_async.http: "
    "POST http://127.0.0.1:1/rt-api/api/v1/Query -> 200 in 0.050 s\n"
    "2026-12-04 22:00:01,300 DEBUG powerp_async.http: "
    "POST http://127.0.0.1:1/rt-api/api/v1/auth/token -> 200 in 0.010 s\n"
    "2026-12-04 22:00:02,000 INFO powerp_async.export: committed\n"
)


def test_send_times_are_the_queries_log_times_less_their_latency() -> None:
    logged = datetime(2026, 12, 4, 22, 0, 1, 250_000).timestamp()

    assert [round(t, 3) for t in send_times([LOG])] == [round(logged - 0.05, 3)]


def test_the_summary_counts_every_answer_and_the_full_seconds() -> None:
    seconds = [
        {"second": 1, "accepted": 3, "throttled": 0, "failed": 0, "points": 0},
        {"second": 2, "accepted": 9, "throttled": 1, "failed": 0, "points": 0},
        {"second": 3, "accepted": 10, "throttled": 0, "failed": 1, "points": 0},
        {"second": 4, "accepted": 2, "throttled": 0, "failed": 0, "points": 0},
    ]

    row = summary(10.0, True, [0, 0], 4.26, seconds)
    row["client_busiest_second"] = 10

    assert row == {
        "rate": 10.0,
        "redis_killed": True,
        "exit_codes": [0, 0],
        "elapsed_s": 4.3,
        "queries": 26,
        "throttled": 1,
        "busiest_second": 11,
        "ceiling": 11.2,
        "mean_inner_rate": 10.5,
        "per_second": [3, 10, 11, 2],
        "client_busiest_second": 10,
    }
    assert markdown([row]).splitlines()[2] == (
        "| 10 | killed mid-run | 11 | 10 | 11.2 | 1 | 26 | 10.5 | [0, 0] |"
    )


def test_the_adaptive_summary_judges_the_steady_state_after_the_warm_up() -> None:
    # Seconds 100..114, 103 missing (nothing sent); the first export ended in 113.
    seconds = [
        {"second": 100 + n, "accepted": 20, "throttled": 0, "failed": 0, "points": 0}
        for n in range(15)
        if n != 3
    ]
    seconds[11]["throttled"] = 1  # second 112: after the warm-up
    seconds[1]["throttled"] = 50  # second 101: during it

    row = adaptive_summary(20.0, [0, 0], seconds, first_end=113)

    assert {k: v for k, v in row.items() if not k.endswith("per_second")} == {
        "limit": 20.0,
        "exit_codes": [0, 0],
        "steady_seconds": 3,
        "steady_share": 1.0,
        "throttled_share_after_warm_up": round(1 / 101, 4),
        "throttled": 51,
        "accepted": 280,
        "meets_goals": True,
    }
    assert row["accepted_per_second"] == [20, 20, 20, 0, *[20] * 11]
    assert adaptive_markdown([row]).splitlines()[2] == (
        "| 20 | adaptive | 3 | 1.000 | 0.010 | 51 | 280 | met |  | [0, 0] |"
    )
