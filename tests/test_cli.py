"""The ``powerp`` command as a user runs it: separate processes, real exit codes."""

from __future__ import annotations

import asyncio
import math
import os
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.dataset as ds
import pytest
import requests
from aiohttp import web

from powerp_async import _demo, cli
from powerp_async._time import to_epoch_us
from powerp_async.models import POINT_SCHEMA, Block
from powerp_async.planning import TimeRange, plan_blocks, plan_totals
from powerp_async.simulator import SimulatorSettings, demo_tenant
from powerp_async.simulator._exchange import MEASUREMENTS_PATH, TOKEN_PATH
from powerp_async.simulator._settings import Handler

from .conftest import ANCHOR
from .helpers import actual_points, expected_points, float_points
from .processes import SECRET, environment, powerp
from .test_export_failures import command_against_simulator

S = 1_000_000
START = ANCHOR - timedelta(minutes=40)
END = ANCHOR - timedelta(minutes=10)


def test_export_equals_direct_block_queries(served: str, tmp_path: Path) -> None:
    out = tmp_path / "out"

    done = powerp(
        "export",
        "--out",
        str(out),
        "--database",
        "2",
        "--window",
        "10s",
        "--start",
        START.isoformat(),
        "--end",
        END.isoformat(),
        env=environment(served),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Export complete: ")
    table = ds.dataset(out, partitioning="hive").to_table(columns=POINT_SCHEMA.names)
    tenant = demo_tenant(SimulatorSettings(anchor_us=to_epoch_us(ANCHOR)))
    signals = [m for m in tenant_measurements(served) if m.database_id == 2]
    span = TimeRange.snap(START, END, 10_000_000)

    exported = actual_points(table)
    direct = {}
    for block in plan_blocks(signals, span, block_size=20):
        direct.update(actual_points(query_directly(served, block)))
    assert exported == direct
    assert len(direct) == len(expected_points(tenant, signals, span)) > 0


def tenant_measurements(base_url: str):
    from powerp_async.models import Measurement

    rows = requests.get(
        f"{base_url}/v1/measurements",
        headers={"Authorization": f"Bearer {token(base_url)}"},
        timeout=30,
    ).json()
    return [Measurement.from_api(row) for row in rows]


def token(base_url: str) -> str:
    answer = requests.post(
        f"{base_url}/v1/auth/token",
        data={
            "client_id": "cli",
            "client_secret": SECRET,
            "grant_type": "client_credentials",
        },
        timeout=30,
    )
    return answer.json()["access_token"]


def query_directly(base_url: str, block: Block):
    """One block as the reference notebook sends it, decoded by hand."""

    from powerp_async._time import parse_wire

    answer = requests.post(
        f"{base_url}/v1/Query",
        headers={"Authorization": f"Bearer {token(base_url)}"},
        json=block.payload(),
        timeout=30,
    )
    answer.raise_for_status()
    rows = []
    for point in orjson.loads(answer.content):
        value = point["value"]
        kind = (
            "value_bool"
            if isinstance(value, bool)
            else "value_int"
            if isinstance(value, int)
            else "value_float"
            if isinstance(value, float)
            else "value_text"
        )
        row = dict.fromkeys(("value_float", "value_int", "value_bool", "value_text"))
        row.update(
            database_id=block.database_id,
            index=point["index"],
            aggregation=block.aggregation,
            timestamp=parse_wire(point["timestamp"]),
            **{kind: value},
        )
        rows.append(row)
    columns = {name: [r[name] for r in rows] for name in POINT_SCHEMA.names}
    columns["timestamp"] = pa.array(columns["timestamp"], pa.timestamp("us", "UTC"))
    return pa.table(columns, schema=POINT_SCHEMA)


def test_measurements_as_json(served: str) -> None:
    done = powerp("measurements", "--format", "json", env=environment(served))

    assert done.returncode == 0, done.stderr
    rows = orjson.loads(done.stdout)
    assert len(rows) == len(tenant_measurements(served))
    assert rows[0]["databaseId"] == 1
    assert rows[0]["index"] == "1"


def test_query_prints_a_table(served: str) -> None:
    done = powerp(
        "query",
        "--database",
        "1",
        "--index",
        "1",
        "--index",
        "2",
        "--agg",
        "mean",
        "--start",
        "2026-12-04T11:00:00Z",
        "--end",
        "2026-12-04T11:00:03Z",
        env=environment(served),
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == POINT_SCHEMA.names
    assert len(lines) == 1 + 2 * 3
    assert lines[1].split()[:3] == ["1", "1", "mean"]


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["export", "--out", "X", "--since", "soon"], "--since: invalid duration", 2),
        (["export", "--out", "X", "--window", "7"], "window: invalid duration", 2),
        (
            ["export", "--out", "X", "--since", "1h", "--start", "2026-12-04"],
            "either --since or --start",
            2,
        ),
        (["export", "--out", "X", "--start", "yesterday"], "--start: invalid time", 2),
        (["export", "--out", "X", "--format", "xls"], "invalid choice: 'xls'", 2),
        (
            ["export", "--out", "X", "--fixed-rate", "0"],
            "--fixed-rate: expected requests per second from 0.001 up, a finite "
            "number, got 0",
            2,
        ),
        (
            ["export", "--out", "X", "--fixed-rate", "inf"],
            "--fixed-rate: expected requests per second from 0.001 up, a finite "
            "number, got inf",
            2,
        ),
        (
            ["export", "--out", "X", "--fixed-rate", "5", "--max-rate", "3"],
            "give either --fixed-rate or --max-rate, not both",
            2,
        ),
        (
            ["export", "--out", "X", "--database", "42", "--index", "7"],
            "expected signals of database 42 and index 7, but none of the signals "
            "listed matches (1,016 in databases 1, 2, 3)",
            2,
        ),
        (
            ["export", "--out", "X", "--database", "1", "--database", "99"],
            "powerp: error: expected every database and index asked for to match a "
            "signal, but none of the 1,016 signals listed (in databases 1, 2, 3) "
            "matches database 99; nothing was fetched: check the databases and "
            "indexes asked for (--database and --index)\n",
            2,
        ),
        (
            ["export", "--out", "X", "--database", "1", "--index", "1", "--index", "x"],
            "matches index 'x'; nothing was fetched",
            2,
        ),
        (
            ["export", "--out", "X", "--tz", "Mars/Olympus", "--start", "2026-12-04"],
            "--tz: expected an IANA time zone such as Europe/Berlin, got "
            "'Mars/Olympus'",
            2,
        ),
        (
            ["export", "--out", "X", "--format", "jsonl", "--csv-for-spreadsheets"],
            "--csv-for-spreadsheets: expected --format csv or no --format, got "
            "--format jsonl",
            2,
        ),
        (
            [
                "query",
                "--database",
                "1",
                *[arg for n in range(21) for arg in ("--index", str(n))],
            ],
            "1 to 20 signals, got 21",
            2,
        ),
        (["query", "--database", "99", "--index", "1"], "HTTP 400", 1),
        (["frobnicate"], "invalid choice: 'frobnicate'", 2),
    ],
)
def test_mistakes_are_one_line_and_a_nonzero_exit(
    served: str, args: list[str], message: str, code: int
) -> None:
    done = powerp(*args, env=environment(served))

    assert done.returncode == code
    assert done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_credentials_are_named(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}

    done = powerp("export", "--out", str(tmp_path / "x"), env=env)

    assert done.returncode == 2
    assert "set POWERP_CLIENT_ID and POWERP_CLIENT_SECRET" in done.stderr


def test_wrong_secret_is_one_line_without_the_secret(served: str, tmp_path) -> None:
    done = powerp(
        "export",
        "--out",
        str(tmp_path / "x"),
        env=environment(served, secret="wrong-secret-77"),
    )

    assert done.returncode == 1
    assert "authentication failed" in done.stderr
    assert "wrong-secret-77" not in done.stderr + done.stdout


def test_demo_export_runs_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}

    done = powerp(
        "export",
        "--demo",
        "--since",
        "3m",
        "--database",
        "1",
        "--out",
        str(out),
        env=env,
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Export complete: ")
    report = orjson.loads((out / "_report.json").read_bytes())
    table = ds.dataset(out, partitioning="hive").to_table(columns=POINT_SCHEMA.names)
    assert report["complete"] is True
    assert table.num_rows == report["points"] > 0
    assert set(table.column("database_id").to_pylist()) == {1}


@pytest.mark.parametrize("given", ["", "  "])
def test_a_blank_output_folder_is_refused(
    given: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    from powerp_async import cli

    monkeypatch.chdir(tmp_path)

    code = cli.main(["export", "--demo", "--out", given, "--dry-run"])

    assert code == 2
    assert capsys.readouterr().err == (
        f"powerp: error: argument --out: expected a folder, got {given!r}; name "
        "the current folder as '.' (see powerp export --help)\n"
    )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("range_", "got"),
    [
        (["--since", "30m"], "30m"),
        (["--since", "2h"], "2h"),
        (["--start", "2026-12-04T10:00:00Z", "--end", "2026-12-05T10:00:00Z"], "1d"),
    ],
)
def test_a_query_range_one_query_cannot_span_names_the_options(
    range_: list[str], got: str, monkeypatch, capsys
) -> None:
    from powerp_async import cli

    # Refused before anything is sent: no server listens there.
    monkeypatch.setenv("POWERP_CLIENT_ID", "demo")
    monkeypatch.setenv("POWERP_CLIENT_SECRET", "demo-secret")
    monkeypatch.setenv("POWERP_API_BASE_URL", "http://127.0.0.1:9/rt-api/api")

    code = cli.main(
        ["query", "--database", "1", "--index", "1", "--window", "1m", *range_]
    )

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp: error: --since, or --start and --end: one query spans less than 30 "
        f"minutes (the API's limit), got {got} on the window grid; give "
        "a shorter range (29m, say), or use powerp export, which splits a longer one "
        "into queries\n"
    )


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        ("--since", "a duration such as '2h'"),
        ("--start", "an ISO-8601 time such as '2026-12-04T10:00:00Z'"),
        ("--end", "an ISO-8601 time such as '2026-12-04T10:00:00Z'"),
        ("--index", "a signal index"),
    ],
)
def test_an_empty_value_is_refused_rather_than_taken_as_not_given(
    flag: str, expected: str, tmp_path: Path, capsys
) -> None:
    from powerp_async import cli

    code = cli.main(["export", "--demo", "--out", str(tmp_path / "x"), f"{flag}="])

    assert code == 2
    assert capsys.readouterr().err == (
        f"powerp: error: argument {flag}: expected {expected}, got '' (see powerp "
        "export --help)\n"
    )
    assert not (tmp_path / "x").exists()


def test_dry_run_prints_the_plan_and_writes_nothing(served: str, tmp_path) -> None:
    out = tmp_path / "never"

    done = powerp(
        *("export", "--out", str(out), "--dry-run", "--database", "2"),
        *("--start", "2026-12-04T08:00:00Z", "--end", "2026-12-04T12:00:00Z"),
        env=environment(served),
    )

    assert done.returncode == 0, done.stderr
    signals = [m for m in tenant_measurements(served) if m.database_id == 2]
    span = TimeRange.snap(
        datetime(2026, 12, 4, 8, tzinfo=UTC), datetime(2026, 12, 4, 12, tzinfo=UTC), S
    )
    requests_, points = plan_totals(signals, span, block_size=20)
    lines = done.stdout.splitlines()
    assert lines[0] == (
        "Range: 2026-12-04T08:00:00Z to 2026-12-04T12:00:00Z, 14,400 windows of 1s"
    )
    assert (
        lines[2] == f"Queries: {requests_:,} (9 time slices), at most {points:,} points"
    )
    assert lines[3].startswith("Time for the queries: ")
    assert not out.exists()


def test_a_dry_run_of_a_resume_counts_what_is_left(served: str, tmp_path) -> None:
    out = tmp_path / "out"
    command = (
        *("export", "--out", str(out), "--database", "2"),
        *("--start", "2026-12-04T11:50:00Z", "--end", "2026-12-04T12:00:00Z"),
    )
    assert powerp(*command, "--quiet", env=environment(served)).returncode == 0
    journal = (out / "_manifest.journal").read_bytes()

    done = powerp(*command, "--resume", "--dry-run", env=environment(served))

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    blocks = int(lines[2].split()[1].replace(",", ""))
    assert lines[3] == (
        f"Already exported: {blocks:,} of {blocks:,} blocks; a resume sends the "
        "other 0 queries"
    )
    assert (out / "_manifest.journal").read_bytes() == journal

    resumed = powerp(*command, "--resume", env=environment(served))
    assert resumed.returncode == 0, resumed.stderr
    assert "This run: 0 points, 0 requests" in resumed.stdout
    assert "Final pace" not in resumed.stdout


def test_dry_run_reads_local_times_across_a_daylight_saving_change(
    served: str, tmp_path
) -> None:
    done = powerp(
        *("export", "--out", str(tmp_path / "never"), "--dry-run", "--database", "2"),
        *("--tz", "Europe/Berlin", "--window", "1m"),
        # The night the clocks went back: four real hours between 01:00 and 04:00.
        *("--start", "2026-10-25T01:00", "--end", "2026-10-25T04:00"),
        env=environment(served),
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == (
        "Range: 2026-10-24T23:00:00Z to 2026-10-25T03:00:00Z, 240 windows of 1m"
    )


def local_range(*arguments: str) -> tuple[str, str]:
    from powerp_async import cli
    from powerp_async._cli_times import time_range

    options = cli.build_parser().parse_args(["export", "--out", "x", *arguments])
    start, end = time_range(options)
    return start.astimezone(UTC).isoformat(), end.astimezone(UTC).isoformat()


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (  # clocks went forward at 02:00: two real hours
            ("--start", "2026-03-29T01:00", "--end", "2026-03-29T04:00"),
            ("2026-03-29T00:00:00+00:00", "2026-03-29T02:00:00+00:00"),
        ),
        (  # clocks went back at 03:00: four real hours
            ("--start", "2026-10-25T01:00", "--end", "2026-10-25T04:00"),
            ("2026-10-24T23:00:00+00:00", "2026-10-25T03:00:00+00:00"),
        ),
        (  # an offset given wins over the zone
            ("--start", "2026-10-25T02:30+01:00", "--end", "2026-10-25T04:00Z"),
            ("2026-10-25T01:30:00+00:00", "2026-10-25T04:00:00+00:00"),
        ),
        (  # a date alone is local midnight
            ("--start", "2026-12-04", "--end", "2026-12-05"),
            ("2026-12-03T23:00:00+00:00", "2026-12-04T23:00:00+00:00"),
        ),
    ],
)
def test_tz_reads_times_without_an_offset_in_the_zone(arguments, expected) -> None:
    assert local_range("--tz", "Europe/Berlin", *arguments) == expected


def test_without_tz_times_without_an_offset_are_utc() -> None:
    assert local_range("--start", "2026-10-25T01:00", "--end", "2026-10-25T04:00") == (
        "2026-10-25T01:00:00+00:00",
        "2026-10-25T04:00:00+00:00",
    )


@pytest.mark.parametrize(
    ("start", "message"),
    [
        (
            "2026-10-25T02:30",
            "--start: expected a time that happened once, got 2026-10-25T02:30:00 "
            "in Europe/Berlin, which happened twice as the clocks went back; add the "
            "offset (+02:00 or +01:00)",
        ),
        (
            "2026-03-29T02:30",
            "--start: expected a time that exists, got 2026-03-29T02:30:00 in "
            "Europe/Berlin, skipped when the clocks went forward; add an offset "
            "(+01:00 or +02:00) or give another time",
        ),
    ],
)
def test_a_local_time_that_is_not_one_instant_is_refused(start, message) -> None:
    from powerp_async.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        local_range("--tz", "Europe/Berlin", "--start", start, "--end", "2026-11-01")

    assert str(caught.value) == message


def test_an_unexpected_error_is_one_line_too(monkeypatch, capsys) -> None:
    from powerp_async import cli

    def broken(options, stops):
        raise RuntimeError("a fault inside")

    monkeypatch.setattr(cli, "_dispatch", broken)

    code = cli.main(["measurements"])

    err = capsys.readouterr().err
    assert code == 1
    assert err == (
        "powerp: unexpected error (RuntimeError: a fault inside); this is a fault in "
        "powerp: please report it with the output of the same command run with -vv\n"
    )


@pytest.mark.parametrize(
    ("arguments", "resume"),
    [
        (["export", "--out", "o b"], "powerp export --out 'o b' --resume"),
        (  # a value starting with a dash, which the parser takes only after "="
            ["export", "--out=-o", "--config=-p.toml", "--rate-key=-k"],
            "powerp export --out=-o --resume --config=-p.toml --rate-key=-k",
        ),
        (
            ["-v", "export", "--out=o", "--demo"],
            "powerp export --out o --resume --demo",
        ),
        (
            ["-vv", "export", "--config", "p.toml", "--out", "o", "-v"],
            "powerp export --out o --resume --config p.toml",
        ),
        (["query", "--out", "o"], None),
        (  # an option given twice counts as the parser takes it: the last one
            [
                *("export", "--config", "a.toml", "--out", "o", "--config=b.toml"),
                *("--max-outage", "60", "--max-outage", "90"),
            ],
            "powerp export --out o --resume --config b.toml --max-outage 90",
        ),
        (
            ["export", "--out", "o", "--dask-local", "2", "--flush-points", "5000"],
            "powerp export --out o --resume --flush-points 5000 --dask-local 2",
        ),
        (
            ["export", "--out", "o", "--dask-scheduler", "tcp://127.0.0.1:8786"],
            "powerp export --out o --resume --dask-scheduler tcp://127.0.0.1:8786",
        ),
        (
            [
                *("export", "--out", "o", "--since", "2h", "--database", "1"),
                *("--quiet", "--max-rate=50", "--max-in-flight", "8"),
                *("--max-outage", "60", "--flush-points", "100", "--window", "1m"),
            ],
            "powerp export --out o --resume --max-rate 50 --max-in-flight 8 "
            "--max-outage 60 --flush-points 100 --quiet",
        ),
        (
            [
                *("export", "--out", "o", "--fixed-rate", "20", "--rate-key", "k"),
                *("--rate-backend", "redis://:pw-71c2@127.0.0.1:6379/0"),
            ],
            "powerp export --out o --resume --fixed-rate 20 --rate-backend "
            "'redis://***@127.0.0.1:6379/0' --rate-key k (the Redis password is left "
            "out: put it back in place of ***)",
        ),
    ],
)
def test_the_resume_command_keeps_what_a_resume_needs(arguments, resume) -> None:
    from powerp_async import cli

    assert cli._resume_command(arguments) == resume


@pytest.mark.parametrize("journal", [False, True])
def test_a_stop_tells_how_to_resume_only_where_something_was_saved(
    tmp_path: Path, journal: bool
) -> None:
    from powerp_async import cli

    out = tmp_path / "out"
    if journal:
        out.mkdir()
        (out / "_manifest.journal").write_text("")
    arguments = ["export", "--out", str(out)]

    messages = [
        cli._interrupted_message(arguments),
        cli._interrupted_message(arguments, "terminated"),
    ]

    if journal:
        resume = (
            "every block fetched whole so far is saved. Resume with: powerp export "
        )
        resume += f"--out {out} --resume"
        assert messages == [f"interrupted; {resume}", f"terminated; {resume}"]
    else:
        assert messages == ["interrupted", "terminated"]


@pytest.mark.parametrize(
    ("form", "printed"),
    [
        (
            "csv",
            '"databaseId","index","name","aggregation","dataType","unit",'
            '"firstDataPoint"\n',
        ),
        (
            "table",
            "databaseId  index  name  aggregation  dataType  unit  firstDataPoint\n",
        ),
        ("json", "[]\n"),
    ],
)
def test_an_empty_listing_prints_its_header(
    form: str, printed: str, monkeypatch, capsys
) -> None:
    async def nothing_listed(request: web.Request, handler: Handler):
        if request.path.endswith(MEASUREMENTS_PATH):
            return web.json_response([])
        return await handler(request)

    with command_against_simulator(monkeypatch, (nothing_listed,)):
        code = cli.main(["measurements", "--format", form])

    assert (code, capsys.readouterr().out) == (0, printed)


def test_timeout_bounds_each_request_the_token_included(monkeypatch, capsys) -> None:
    async def hanging_token(request: web.Request, handler: Handler):
        if request.path.endswith(TOKEN_PATH):
            await asyncio.sleep(30)
        return await handler(request)

    with command_against_simulator(monkeypatch, (hanging_token,)):
        started = time.monotonic()
        code = cli.main(["measurements", "--timeout", "0.2"])
        elapsed_s = time.monotonic() - started

    printed = capsys.readouterr()
    assert (code, printed.out) == (1, "")
    assert re.fullmatch(
        r"powerp: error: POST http://127\.0\.0\.1:\d+/rt-api/api/v1/auth/token: no "
        r"complete answer within 0\.2 s\n",
        printed.err,
    ), printed.err
    assert elapsed_s < 10


def test_a_timeout_of_zero_is_named_as_typed(capsys) -> None:
    code = cli.main(["measurements", "--timeout", "0"])

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp: error: argument --timeout: expected seconds above 0, got '0' (see "
        "powerp measurements --help)\n"
    )


def test_a_wrong_aggregation_is_named_by_its_option(monkeypatch, capsys) -> None:
    with command_against_simulator(monkeypatch):
        code = cli.main(
            [
                "query",
                "--database",
                "1",
                "--index",
                "1",
                "--since",
                "1m",
                "--agg",
                "a b",
            ]
        )

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp: error: --agg: expected the name of one, such as count, first, last, "
        "max, mean, median, min, sum (letters, digits and _), got 'a b'\n"
    )


def test_an_aggregation_the_server_does_not_know_is_its_to_refuse(
    monkeypatch, capsys
) -> None:
    with command_against_simulator(monkeypatch):
        code = cli.main(
            [*("query", "--database", "1", "--index", "1"), "--agg", "stddev"]
        )

    assert code == 1
    assert capsys.readouterr().err.endswith(
        ': HTTP 400: {"error":"unknown_aggregation","message":"aggFunction must '
        "be one of count, first, last, max, mean, median, min, sum, got 'stddev'\"}\n"
    )


def test_query_json_spells_nan_and_infinities_apart_from_null(capsys) -> None:
    table = float_points((math.nan, math.inf, -math.inf, None, 2.5))

    cli._print_table(table, "json")

    rows = orjson.loads(capsys.readouterr().out)
    assert [row["value_float"] for row in rows] == [
        "NaN",
        "Infinity",
        "-Infinity",
        None,
        2.5,
    ]
    assert rows[0]["timestamp"] == "2026-12-04T12:00:00Z"


def test_the_demo_simulator_is_not_handed_the_users_secret(monkeypatch) -> None:
    monkeypatch.setenv("POWERP_CLIENT_SECRET", "users-own-secret-1")
    monkeypatch.setenv("POWERP_CLIENT_ID", "me")

    handed = _demo.demo_environment()

    assert "POWERP_CLIENT_SECRET" not in handed
    assert handed["POWERP_CLIENT_ID"] == "me"
    assert handed["PATH"] == os.environ["PATH"]
