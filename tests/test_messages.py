"""Counts in messages agree with their nouns; options are named as the user types
them, on the command line and in the library."""

from __future__ import annotations

import doctest
from datetime import timedelta
from pathlib import Path

import pytest

from powerp_async import (
    ConfigurationError,
    ExportPlan,
    ExportSpec,
    Gap,
    blocking,
    cli,
)
from powerp_async._engine import RunStats, stopped_after
from powerp_async._export import ExportReport
from powerp_async._export._report import failure_reason
from powerp_async._export._spec import _some_unmatched
from powerp_async._progress import summary
from powerp_async._redact import excerpt
from powerp_async.config import ClientConfig
from powerp_async.errors import PayloadTooLargeError
from powerp_async.models import Block, Measurement

from .conftest import ANCHOR
from .processes import environment


def test_a_plan_of_one_of_everything_speaks_in_the_singular() -> None:
    spec = ExportSpec(
        out=Path("x"), start=ANCHOR - timedelta(seconds=1), end=ANCHOR, window="1s"
    )
    plan = ExportPlan(
        spec, 1, 1, 1, requests=1, max_points=1, late_signals=1, after_range=1
    )

    lines = plan.describe(known_rate=1.0).splitlines()

    assert lines[:3] == [
        "Range: 2026-12-04T11:59:59Z to 2026-12-04T12:00:00Z, 1 window of 1s",
        "Signals: 1 in 1 (database, aggregation) group, 1 starting inside the range; "
        "1 other signal left out, listed as starting after the range "
        "(firstDataPoint)",
        "Queries: 1 (1 time slice), at most 1 point",
    ]


def test_a_summary_of_one_point_and_one_request_speaks_in_the_singular() -> None:
    report = ExportReport(
        *(1, 1, 0, 1, 1, 1, 1, 0, 0, 0, 0, 2.0, 1, True, (), (), ()),
        dropped_points=1,
    )

    assert summary(report).splitlines() == [
        "Export complete: 1 point in 1 file, 1/1 blocks",
        "This run: 1 point, 1 request, 0 retries, 0 throttled, 2.0 s (0 points/s)",
        "Dropped 1 point the server sent twice, off the window grid, outside what "
        "was asked or with an unreadable time (see _report.json)",
    ]


def test_a_summary_says_gaps_may_lie_before_a_signal_starts() -> None:
    gap = Gap(1, "7", "last", "2026-12-04T10:00:00Z", "2026-12-04T10:30:00Z")
    report = ExportReport(
        *(2, 2, 0, 9, 9, 9, 2, 0, 0, 0, 0, 2.0, 1, True, (gap,), (), ()),
    )

    assert summary(report).splitlines()[2] == (
        "1 signal range without data: returned empty or with every point dropped, "
        "or before the signal's first point as listed (see _report.json)"
    )


def test_a_run_stopped_after_one_block_says_so_in_the_singular() -> None:
    stats = RunStats(points=1)
    stats.blocks_done = 1

    assert stopped_after(stats) == "after 1 block (1 point) was fetched"


def test_a_listing_of_one_signal_speaks_in_the_singular() -> None:
    listed = [Measurement(1, "1")]

    message = _some_unmatched(["database 2"], listed)

    assert message == (
        "expected every database and index asked for to match a signal, but none of "
        "the 1 signal listed (in database 1) matches database 2; nothing was fetched: "
        "check the databases and indexes asked for (--database and --index)"
    )


@pytest.mark.parametrize(
    ("window", "why"),
    [
        (
            "5q",
            "invalid duration '5q': expected a number with a unit (us, ms, s, m, h, "
            "d, w), such as '200ms', '1s' or '1h30m'",
        ),
        (
            "1h",
            "1h is too long: a query must span less than 30 minutes, so the window "
            "must be shorter than that",
        ),
    ],
)
def test_a_wrong_window_is_named_by_its_option(
    monkeypatch, capsys, window: str, why: str
) -> None:
    for name, value in environment("http://127.0.0.1:9/rt-api/api").items():
        monkeypatch.setenv(name, value)

    code = cli.main(["export", "--out", "x", "--window", window])

    assert code == 2
    assert capsys.readouterr().err == f"powerp: error: --window: {why}\n"


def test_the_library_is_told_to_resume_with_its_own_argument(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "_manifest.journal").write_text("")
    config = ClientConfig("a", "s", base_url="http://127.0.0.1:9/rt-api/api")
    spec = ExportSpec(out=out, start=ANCHOR - timedelta(minutes=1), end=ANCHOR)

    with pytest.raises(ConfigurationError) as caught:
        blocking.export(config, spec)

    assert str(caught.value) == (
        f"output folder {out} is not empty; refusing to mix two exports (continue "
        "it with resume=True; --resume on the command line)"
    )


def test_the_wording_examples_run() -> None:
    from powerp_async import _words

    outcome = doctest.testmod(_words)

    assert (outcome.failed, outcome.attempted) == (0, 2)


def test_a_block_is_described_on_one_line_whatever_its_signals_are_called() -> None:
    block = Block(1, "mean\x1b[2J", ("a\nb", "c"), 0, 60_000_000, 1_000_000)

    assert block.describe() == (
        "database 1 mean\\x1b[2J [2 signals a\\x0ab..c] "
        "1970-01-01T00:00:00Z..1970-01-01T00:01:00Z"
    )


def test_unicode_line_separators_and_direction_marks_are_escaped_too() -> None:
    from powerp_async._words import printable

    assert printable("a\u2028b\u2029c\u202ed\u2066e") == (
        "a\\u2028b\\u2029c\\u202ed\\u2066e"
    )


def test_a_failure_reason_keeps_the_end_of_the_longest_refusal() -> None:
    block = Block(
        12, "average", tuple(str(i) for i in range(100, 120)), 0, 10**9, 10**6
    )
    answer = excerpt("x" * 5_000)  # as long as an answer's excerpt gets
    refused = PayloadTooLargeError(
        f"POST http://127.0.0.1:8080/rt-api/api/v1/Query: {block.describe()}: HTTP "
        f"413: {answer}",
        method="POST",
        url="http://127.0.0.1:8080/rt-api/api/v1/Query",
        status=413,
        excerpt=answer,
    )
    alone = refused.reworded(
        f"database 12 average: the server refused even one signal over one window as "
        f"too large ({block.describe_failure(refused)}), so no query of this database "
        "and aggregation was sent after it"
    )

    reason = failure_reason(block, alone)

    assert reason == block.describe_failure(alone)
    assert reason.endswith(
        "so no query of this database and aggregation was sent after it"
    )
