"""CSV for spreadsheets: formula-like text neutralised on request, numbers never."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from powerp_async import ExportSpec, cli, export
from powerp_async._export import _formats
from powerp_async._export._manifest import read_manifest
from powerp_async.errors import ConfigurationError
from powerp_async.models import POINT_SCHEMA

from .test_export import START, read_dataset
from .test_export_failures import command_against_simulator
from .test_export_recovery import JOURNAL, spec_for

FIRST = datetime(2026, 12, 4, 12, tzinfo=UTC)
TEXTS = (
    "=1+2",
    "+41 79",
    "-5",
    "@SUM(A1)",
    "\tpad",
    "\rline",
    "plain",
    "a=b",
    "",
    "-9223372036854775809",
    "-2+3",
)


def risky_points() -> pa.Table:
    """Text cells that start like formulas, beside negative and positive numbers."""
    rows = [
        {
            "database_id": 1,
            "index": "=7" if number == 0 else "7",
            "aggregation": "last",
            "timestamp": FIRST.replace(second=number),
            "value_text": text,
        }
        for number, text in enumerate(TEXTS)
    ]
    rows.append(
        {
            "database_id": 1,
            "index": "-8",
            "aggregation": "min",
            "timestamp": FIRST.replace(second=20),
            "value_float": -1.5,
        }
    )
    rows.append(
        {
            "database_id": 1,
            "index": "9",
            "aggregation": "min",
            "timestamp": FIRST.replace(second=21),
            "value_int": -3,
        }
    )
    return pa.Table.from_pylist(rows, schema=POINT_SCHEMA)


HEADER = (
    b'\xef\xbb\xbf"database_id","index","aggregation","timestamp","value_float",'
    b'"value_int","value_bool","value_text"\n'
)


def test_csv_is_exact_by_default(tmp_path) -> None:
    path = tmp_path / "points.csv"

    _formats.write_file(risky_points(), path, "csv")

    assert path.read_bytes() == HEADER + (
        b'1,"=7","last","2026-12-04T12:00:00.000000Z",,,,"=1+2"\n'
        b'1,"7","last","2026-12-04T12:00:01.000000Z",,,,"+41 79"\n'
        b'1,"7","last","2026-12-04T12:00:02.000000Z",,,,"-5"\n'
        b'1,"7","last","2026-12-04T12:00:03.000000Z",,,,"@SUM(A1)"\n'
        b'1,"7","last","2026-12-04T12:00:04.000000Z",,,,"\tpad"\n'
        b'1,"7","last","2026-12-04T12:00:05.000000Z",,,,"\rline"\n'
        b'1,"7","last","2026-12-04T12:00:06.000000Z",,,,"plain"\n'
        b'1,"7","last","2026-12-04T12:00:07.000000Z",,,,"a=b"\n'
        b'1,"7","last","2026-12-04T12:00:08.000000Z",,,,""\n'
        b'1,"7","last","2026-12-04T12:00:09.000000Z",,,,"-9223372036854775809"\n'
        b'1,"7","last","2026-12-04T12:00:10.000000Z",,,,"-2+3"\n'
        b'1,"-8","min","2026-12-04T12:00:20.000000Z",-1.5,,,\n'
        b'1,"9","min","2026-12-04T12:00:21.000000Z",,-3,,\n'
    )


def test_csv_for_spreadsheets_quotes_formulas_and_leaves_numbers_even_as_text(
    tmp_path,
) -> None:
    path = tmp_path / "points.csv"

    _formats.write_file(risky_points(), path, "csv", neutralise_formulas=True)

    assert path.read_bytes() == HEADER + (
        b'1,"\'=7","last","2026-12-04T12:00:00.000000Z",,,,"\'=1+2"\n'
        b'1,"7","last","2026-12-04T12:00:01.000000Z",,,,"\'+41 79"\n'
        b'1,"7","last","2026-12-04T12:00:02.000000Z",,,,"-5"\n'
        b'1,"7","last","2026-12-04T12:00:03.000000Z",,,,"\'@SUM(A1)"\n'
        b'1,"7","last","2026-12-04T12:00:04.000000Z",,,,"\'\tpad"\n'
        b'1,"7","last","2026-12-04T12:00:05.000000Z",,,,"\'\rline"\n'
        b'1,"7","last","2026-12-04T12:00:06.000000Z",,,,"plain"\n'
        b'1,"7","last","2026-12-04T12:00:07.000000Z",,,,"a=b"\n'
        b'1,"7","last","2026-12-04T12:00:08.000000Z",,,,""\n'
        b'1,"7","last","2026-12-04T12:00:09.000000Z",,,,"-9223372036854775809"\n'
        b'1,"7","last","2026-12-04T12:00:10.000000Z",,,,"\'-2+3"\n'
        b'1,"-8","min","2026-12-04T12:00:20.000000Z",-1.5,,,\n'
        b'1,"9","min","2026-12-04T12:00:21.000000Z",,-3,,\n'
    )


def test_the_option_is_for_csv_only(tmp_path) -> None:
    with pytest.raises(ConfigurationError, match=r"applies to CSV only.*'jsonl'"):
        ExportSpec(tmp_path, START, FIRST, format="jsonl", neutralise_formulas=True)


async def test_the_option_is_recorded_and_kept_by_a_resume(client, tmp_path) -> None:
    spec = await spec_for(
        client, tmp_path / "out", format="csv", neutralise_formulas=True
    )
    await export(client, spec)

    assert read_manifest(spec.out).header["parameters"]["neutralise_formulas"] is True
    assert ExportSpec.recorded(spec.out).neutralise_formulas is True
    plain = dataclasses.replace(spec, neutralise_formulas=False)
    with pytest.raises(ConfigurationError, match="neutralise_formulas: recorded True"):
        await export(client, plain, resume=True)


async def test_a_journal_from_before_the_option_resumes_as_exact_csv(
    client, tmp_path
) -> None:
    spec = await spec_for(client, tmp_path / "out", format="parquet")
    await export(client, spec)
    journal = tmp_path / "out" / JOURNAL
    lines = journal.read_bytes().split(b"\n")
    header = json.loads(lines[0])
    del header["parameters"]["neutralise_formulas"]
    del header["check"]  # nor were lines checked then
    lines[0] = json.dumps(header).encode()
    journal.write_bytes(b"\n".join(lines))

    report = await export(client, ExportSpec.recorded(spec.out), resume=True)

    assert report.complete
    assert report.points == read_dataset(spec.out).num_rows > 0


def test_the_command_keeps_the_option_on_resume_and_refuses_to_add_it(
    tmp_path, monkeypatch, capsys
) -> None:
    made_with, made_without = tmp_path / "with", tmp_path / "without"
    export_csv = [
        *("export", "--window", "10s", "--database", "1", "--index", "1"),
        *("--start", START.isoformat(), "--end", FIRST.isoformat()),
    ]
    with command_against_simulator(monkeypatch):
        codes = [
            cli.main([*export_csv, "--out", str(made_with), "--csv-for-spreadsheets"]),
            cli.main([*export_csv, "--out", str(made_without), "--format", "csv"]),
            cli.main(["export", "--out", str(made_with), "--resume"]),
            cli.main(["export", "--out", str(made_with), "--resume", "--quiet"]),
        ]
        capsys.readouterr()
        refused = cli.main(
            ["export", "--out", str(made_without), "--resume", "--csv-for-spreadsheets"]
        )

    assert codes == [0, 0, 0, 0]
    assert ExportSpec.recorded(made_with).neutralise_formulas is True
    assert ExportSpec.recorded(made_without).neutralise_formulas is False
    assert refused == 2
    assert capsys.readouterr().err == (
        f"powerp: error: cannot resume into {made_without} with "
        "--csv-for-spreadsheets: its files so far were written exactly; resume "
        "without the flag\n"
    )
