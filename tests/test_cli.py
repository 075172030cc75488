"""The ``powerp`` command as a user runs it: separate processes, real exit codes."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pyarrow.dataset as ds
import pytest
import requests

from powerp_async._time import to_epoch_us
from powerp_async.models import POINT_SCHEMA, Block
from powerp_async.planning import TimeRange, plan_blocks, plan_totals
from powerp_async.simulator import SimulatorSettings, demo_tenant

from .conftest import ANCHOR
from .helpers import actual_points, expected_points
from .processes import SECRET, environment, powerp

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
    import pyarrow as pa

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
