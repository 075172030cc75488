"""Points a server sends but nobody asked for are dropped, and counted where users look.

The simulator here answers each query with five points too many: the first point
again, one far outside the range asked, one of a signal not asked for, one a
microsecond after the first, a time that labels no window, and one whose time is no
time.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime, timedelta

import orjson
import pyarrow as pa
import pytest
from aiohttp import web

from powerp_async import POINT_SCHEMA, RunStats, cli, export
from powerp_async._progress import summary
from powerp_async.simulator import SimulatorSettings
from powerp_async.simulator._settings import Handler

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points, rewriting_settings, span_of
from .test_export import START, read_dataset
from .test_export_failures import command_against_simulator
from .test_export_recovery import expected_for, spec_for

EXTRA_PER_ANSWER = 5


class Tampering:
    """A simulator policy adding five unwanted points to every answer with points."""

    def __init__(self) -> None:
        self.answers = 0

    async def __call__(
        self, request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        response = await handler(request)
        if not request.path.endswith("/Query") or response.status != 200:
            return response

        assert isinstance(response, web.Response)
        rows = orjson.loads(bytes(response.body))
        if not rows:
            return response

        self.answers += 1
        unwanted = [
            rows[0],
            {**rows[0], "timestamp": "2000-01-01T00:00:00Z"},
            {**rows[0], "index": "no-such-signal"},
            {**rows[0], "timestamp": _a_microsecond_after(rows[0]["timestamp"])},
            {**rows[0], "timestamp": "no time at all"},
        ]
        response.body = orjson.dumps(rows + unwanted)
        return response

    @property
    def dropped(self) -> int:
        return EXTRA_PER_ANSWER * self.answers


def _a_microsecond_after(timestamp: str) -> str:
    moment = datetime.fromisoformat(timestamp) + timedelta(microseconds=1)
    return moment.isoformat()


@pytest.fixture
def tampering() -> Tampering:
    return Tampering()


@pytest.fixture
def settings(tampering: Tampering) -> SimulatorSettings:
    return rewriting_settings(tampering)


async def test_the_report_counts_dropped_points_over_every_run(
    client, simulator, tampering, tmp_path
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)

    report = await export(client, spec)
    dropped = tampering.dropped
    resumed = await export(client, spec, resume=True)

    assert_exact(read_dataset(spec.out), await expected_for(client, simulator, spec))
    assert dropped > 0
    assert (report.dropped_points, report.dropped_points_this_run) == (
        dropped,
        dropped,
    )
    assert (resumed.dropped_points, resumed.dropped_points_this_run) == (dropped, 0)
    written = json.loads((spec.out / "_report.json").read_text())
    assert (written["dropped_points"], written["dropped_points_this_run"]) == (
        dropped,
        0,
    )
    line = (
        f"Dropped {dropped:,} points the server sent twice, off the window grid, "
        "outside what was asked or with an unreadable time (see _report.json)"
    )
    lines = summary(resumed).splitlines()
    assert line in lines
    quiet = dataclasses.replace(resumed, dropped_points=0)
    assert summary(quiet).splitlines() == [other for other in lines if other != line]


async def test_library_users_get_the_count_in_the_stats(
    client, simulator, tampering
) -> None:
    signals = [m for m in await client.measurements() if m.database_id == 2][:30]
    start = ANCHOR - timedelta(minutes=40)
    stats = RunStats()

    async with client.fetch(signals, start, ANCHOR, window="10s", stats=stats) as rs:
        batches = [result.batch async for result in rs if result.batch is not None]

    table = pa.Table.from_batches(batches, POINT_SCHEMA)
    span = span_of(start, ANCHOR, 10_000_000)
    assert_exact(table, expected_points(simulator.tenant, signals, span))
    assert stats.dropped_points == tampering.dropped > 0


def test_the_command_summary_names_the_dropped_points(
    tmp_path, monkeypatch, capsys
) -> None:
    tampering = Tampering()
    out = tmp_path / "out"
    with command_against_simulator(monkeypatch, (tampering,)):
        code = cli.main(
            [
                *("export", "--out", str(out), "--window", "10s"),
                *("--start", START.isoformat(), "--end", ANCHOR.isoformat()),
                *("--database", "1", "--index", "1", "--index", "2"),
            ]
        )

    printed = capsys.readouterr()
    assert code == 0
    assert tampering.dropped > 0
    assert (
        f"Dropped {tampering.dropped:,} points the server sent twice, off the "
        "window grid, outside what was asked or with an unreadable time (see "
        "_report.json)\n"
    ) in printed.out
    assert printed.err == ""


def test_the_query_command_says_how_many_points_it_dropped(
    tmp_path, monkeypatch, capsys
) -> None:
    arguments = [
        *("query", "--database", "1", "--index", "1", "--index", "2"),
        *("--window", "10s", "--format", "csv"),
        *("--start", (ANCHOR - timedelta(minutes=20)).isoformat()),
        *("--end", ANCHOR.isoformat()),
    ]
    with command_against_simulator(monkeypatch):
        clean_code = cli.main(arguments)
    clean = capsys.readouterr()

    tampering = Tampering()
    with command_against_simulator(monkeypatch, (tampering,)):
        code = cli.main(arguments)
    printed = capsys.readouterr()

    assert (clean_code, code, clean.err) == (0, 0, "")
    assert tampering.dropped == EXTRA_PER_ANSWER
    assert printed.out == clean.out
    assert clean.out.count("\n") == 1 + 2 * 120
    assert printed.err == (
        "powerp: dropped 5 points the server sent twice, off the window grid, "
        "outside what was asked or with an unreadable time\n"
    )
