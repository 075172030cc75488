"""Exports end to end against the in-process simulator, checked point by point."""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.dataset as ds
import pytest

from powerp_async import ExportSpec, export, plan_export
from powerp_async._export import _formats, _manifest
from powerp_async._time import format_wire, to_epoch_us
from powerp_async.errors import ConfigurationError
from powerp_async.models import POINT_SCHEMA
from powerp_async.planning import plan_blocks, time_slices

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points, float_points

START = ANCHOR - timedelta(minutes=50)
END = ANCHOR - timedelta(minutes=10)


def read_dataset(folder: Path) -> pa.Table:
    return ds.dataset(folder, format="parquet", partitioning="hive").to_table(
        columns=POINT_SCHEMA.names
    )


async def selected(client, databases=(1, 3), per_database=60):
    signals = await client.measurements()
    chosen = []
    for database in databases:
        chosen += [m for m in signals if m.database_id == database][:per_database]
    return chosen


async def test_parquet_export_is_exact_and_reports(client, simulator, tmp_path) -> None:
    signals = await selected(client)
    spec = ExportSpec(
        out=tmp_path / "out",
        start=START,
        end=END,
        window="2s",
        databases=(1, 3),
        indexes=tuple(m.index for m in signals),
        rows_per_flush=20_000,
    )

    seen = []
    report = await export(
        client, spec, progress=lambda stats, total: seen.append((stats.points, total))
    )

    table = read_dataset(spec.out)
    everything = await client.measurements()
    expected = expected_points(
        simulator.tenant, _matching(everything, spec), spec.time_range()
    )
    assert_exact(table, expected)
    assert seen[-1] == (len(expected), report.blocks_total)
    assert report.complete
    assert report.blocks_failed == 0
    assert report.points == report.points_this_run == len(expected)
    assert report.blocks_committed == report.blocks_total
    assert report.parts == len(list(spec.out.rglob("part-*.parquet")))
    written = json.loads((spec.out / "_report.json").read_text())
    assert written["points"] == len(expected)


def _matching(signals, spec):
    """The signals an export selects: in one of its databases and with one of its
    indexes (an index may exist in several databases)."""
    return [
        m
        for m in signals
        if (not spec.databases or m.database_id in spec.databases)
        and (not spec.indexes or m.index in spec.indexes)
    ]


async def test_dataset_opens_in_duckdb_pandas_and_polars(client, tmp_path) -> None:
    signals = await selected(client, databases=(2,), per_database=40)
    spec = ExportSpec(
        out=tmp_path / "out",
        start=START,
        end=START + timedelta(minutes=20),
        window="5s",
        databases=(2,),
        indexes=tuple(m.index for m in signals),
    )
    report = await export(client, spec)

    frame = pd.read_parquet(spec.out)
    duck = (
        duckdb.connect()
        .execute(
            "SELECT count(*), typeof(any_value(timestamp)), "
            "typeof(any_value(value_float)) FROM read_parquet(?)",
            [f"{spec.out}/**/*.parquet"],
        )
        .fetchone()
    )

    polar = pl.read_parquet(f"{spec.out}/**/*.parquet", hive_partitioning=True)

    assert len(frame) == report.points > 0
    assert str(frame["timestamp"].dtype) == "datetime64[us, UTC]"
    assert frame["value_float"].dtype == "float64"
    assert duck == (report.points, "TIMESTAMP WITH TIME ZONE", "DOUBLE")
    assert polar.height == report.points
    assert polar.schema["timestamp"] == pl.Datetime("us", "UTC")
    assert polar.schema["value_int"] == pl.Int64


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
async def test_text_formats_hold_the_same_points(client, tmp_path, fmt) -> None:
    signals = await selected(client, databases=(1, 2, 3), per_database=25)
    common = {
        "start": START,
        "end": START + timedelta(minutes=10),
        "window": "10s",
        "indexes": tuple(m.index for m in signals),
    }
    await export(client, ExportSpec(out=tmp_path / "pq", **common))
    await export(client, ExportSpec(out=tmp_path / fmt, format=fmt, **common))

    reference = read_dataset(tmp_path / "pq")
    text_rows = _read_text(tmp_path / fmt, fmt)
    assert len(text_rows) == reference.num_rows
    assert sorted(text_rows) == sorted(_as_text_rows(reference))


def _read_text(folder: Path, fmt: str) -> list[tuple]:
    rows = []
    for path in sorted(folder.rglob(f"part-*.{fmt}")):
        if fmt == "jsonl":
            records = [
                json.loads(line) for line in path.read_text("utf-8").splitlines()
            ]
        else:
            raw = path.read_bytes()
            assert raw.startswith(b"\xef\xbb\xbf")
            options = pa_csv.ConvertOptions(
                column_types={
                    "index": pa.string(),
                    "timestamp": pa.string(),
                    "value_text": pa.string(),
                },
                strings_can_be_null=True,
            )
            records = pa_csv.read_csv(path, convert_options=options).to_pylist()
        rows += [_key(record) for record in records]
    return rows


def _key(record: dict) -> tuple:
    values = tuple(
        record[name]
        for name in ("value_float", "value_int", "value_bool", "value_text")
    )
    return (
        record["database_id"],
        str(record["index"]),
        record["aggregation"],
        str(record["timestamp"]).replace(" ", "T"),
        *values,
    )


def _as_text_rows(table: pa.Table) -> list[tuple]:
    rows = []
    for record in table.to_pylist():
        record["timestamp"] = record["timestamp"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        rows.append(_key(record))
    return rows


async def test_asked_for_values_that_match_nothing_are_refused_before_a_fetch(
    client, simulator, tmp_path
) -> None:
    spec = ExportSpec(
        out=tmp_path / "out",
        start=START,
        end=END,
        databases=(1, 3, 98, 99),
        indexes=("1", "2", "no-such", "nor-this"),
    )

    with pytest.raises(ConfigurationError) as caught:
        await export(client, spec)

    assert str(caught.value) == (
        "expected every database and index asked for to match a signal, but none of "
        "the 1,016 signals listed (in databases 1, 2, 3) matches databases 98, 99 or "
        "indexes 'no-such', 'nor-this'; nothing was fetched: check the databases "
        "and indexes asked for (--database and --index)"
    )
    assert simulator.stats.requests.get("query", {}) == {}
    assert not spec.out.exists()


async def test_a_dry_run_counts_what_the_export_fetches(client, tmp_path) -> None:
    # Late signals start 20 to 120 minutes before the anchor: some before this
    # range, some inside it, some after its end (which the export never asks for).
    start, end = ANCHOR - timedelta(minutes=90), ANCHOR - timedelta(minutes=50)
    spec = ExportSpec(out=tmp_path / "never", start=start, end=end, window="1m")
    span = spec.time_range()

    plan = await plan_export(client, spec)

    blocks = list(plan_blocks(await client.measurements(), span, block_size=20))
    fetched = {(b.database_id, b.aggregation, i) for b in blocks for i in b.indexes}
    firsts = {
        (m.database_id, m.aggregation, m.index): m.first_data_point
        for m in await client.measurements()
    }
    after_end = [k for k, first in firsts.items() if first and first >= end]
    late = [k for k in fetched if firsts[k] and to_epoch_us(firsts[k]) > span.start_us]
    assert (len(after_end), len(late)) == (14, 20)  # the range shows both kinds
    assert (plan.signals, plan.late_signals) == (len(fetched), len(late))
    assert plan.groups == len({(b.database_id, b.aggregation) for b in blocks})
    assert plan.requests == len(blocks)
    assert plan.signals == len(firsts) - len(after_end)


async def _one_minute_of_five(client, out):
    """Five signals of database 1, and a spec of one minute of them into ``out``."""
    signals = await selected(client, databases=(1,), per_database=5)
    spec = ExportSpec(
        out=out,
        start=START,
        end=START + timedelta(minutes=1),
        indexes=tuple(m.index for m in signals),
        databases=(1,),
    )
    return signals, spec


async def test_a_folder_holding_hidden_files_alone_takes_a_new_export(
    client, simulator, tmp_path
) -> None:
    signals, spec = await _one_minute_of_five(client, tmp_path / "out")
    spec.out.mkdir()
    (spec.out / ".gitkeep").write_text("")
    (spec.out / "notes.txt").write_text("")
    with pytest.raises(ConfigurationError, match="not empty; refusing to mix"):
        await export(client, spec)
    (spec.out / "notes.txt").unlink()

    report = await export(client, spec)

    assert report.complete
    assert (spec.out / ".gitkeep").exists()
    assert_exact(
        read_dataset(spec.out),
        expected_points(simulator.tenant, signals, spec.time_range()),
    )


async def test_refuses_to_mix_two_exports(client, tmp_path) -> None:
    _, spec = await _one_minute_of_five(client, tmp_path / "out")
    await export(client, spec)

    with pytest.raises(ConfigurationError, match="not empty; refusing to mix"):
        await export(client, spec)
    other = ExportSpec(
        out=spec.out,
        start=START,
        end=START + timedelta(minutes=2),
        indexes=spec.indexes,
        databases=(1,),
    )
    with pytest.raises(ConfigurationError, match=r"other parameters \(end: recorded"):
        await export(client, other, resume=True)


async def test_interrupted_export_resumes_exactly_once(
    client, simulator, tmp_path, monkeypatch
) -> None:
    signals = await selected(client, databases=(1, 2), per_database=40)
    spec = ExportSpec(
        out=tmp_path / "out",
        start=START,
        end=END,
        window="5s",
        indexes=tuple(m.index for m in signals),
        rows_per_flush=3_000,
    )
    commits = 0
    original = _manifest.Manifest.commit

    def commit_then_stop(self, *args, **kwargs):
        nonlocal commits
        original(self, *args, **kwargs)
        commits += 1
        if commits == 3:
            raise KeyboardInterrupt  # the user pressed Ctrl-C right after a commit

    monkeypatch.setattr(_manifest.Manifest, "commit", commit_then_stop)
    with pytest.raises(KeyboardInterrupt):
        await export(client, spec)
    monkeypatch.setattr(_manifest.Manifest, "commit", original)
    # Stopped between the journal line and the renames: the third flush is committed
    # but its parts are still hidden, so readers see only the first two.
    visible = read_dataset(spec.out).num_rows
    partial = _manifest.read_manifest(spec.out).points
    # A crash may also leave a hidden part that was never committed.
    (
        spec.out / "database=1" / "day=2026-12-04" / ".part-x-000099.parquet.tmp"
    ).write_bytes(b"junk")

    report = await export(client, ExportSpec.recorded(spec.out), resume=True)

    everything = await client.measurements()
    expected = expected_points(
        simulator.tenant, _matching(everything, spec), spec.time_range()
    )
    assert 0 < visible < partial < len(expected)
    assert_exact(read_dataset(spec.out), expected)
    assert report.points == len(expected)
    assert report.points_this_run == len(expected) - partial
    assert not list(spec.out.rglob("*.tmp"))


async def test_gaps_are_reported_per_signal(client, simulator, tmp_path) -> None:
    everything = await client.measurements()
    late = [m for m in everything if m.first_data_point and m.first_data_point > START]
    start_us, end_us = to_epoch_us(START), to_epoch_us(ANCHOR)
    offline = [
        m
        for m in everything
        if simulator.tenant.offline_intervals(m.database_id, m.index, start_us, end_us)
    ]
    assert late, "the demo tenant has signals that start inside a typical range"
    assert offline, "and signals with outages inside it"
    chosen = late[:4] + offline[:4]
    spec = ExportSpec(
        out=tmp_path / "out",
        start=START,
        end=ANCHOR,
        window="30s",
        indexes=tuple(m.index for m in chosen),
        databases=tuple({m.database_id for m in chosen}),
    )

    report = await export(client, spec)

    selected = _matching(everything, spec)
    span = spec.time_range()
    assert report.points == len(expected_points(simulator.tenant, selected, span))
    assert [(g.database_id, g.index, g.start, g.end) for g in report.gaps] == (
        _expected_gaps(simulator.tenant, selected, span)
    )
    assert report.gaps  # the late starters make gaps before their first point
    outages = {(m.database_id, m.index) for m in offline[:4]}
    inside = [g for g in report.gaps if (g.database_id, g.index) in outages]
    assert inside  # and outages inside a query's range are gaps too


def _expected_gaps(tenant, signals, span) -> list[tuple]:
    """Runs of windows in which a signal has no point, merged, in report order."""
    gaps = []
    window = span.window_us
    for signal in sorted(
        signals, key=lambda m: (m.database_id, m.index, m.aggregation)
    ):
        present = set()
        for start_us, end_us in time_slices(span):
            args = (signal.aggregation, start_us, end_us, window)
            points = tenant.points(signal.database_id, signal.index, *args)
            present.update(stamp - window for stamp, _ in points)  # stop labels
        runs: list[list[int]] = []
        for start in range(span.start_us, span.end_us, window):
            if start in present:
                continue
            if runs and runs[-1][1] == start:
                runs[-1][1] = start + window
            else:
                runs.append([start, start + window])
        gaps += [
            (signal.database_id, signal.index, format_wire(a), format_wire(b))
            for a, b in runs
        ]
    return gaps


async def test_cancelling_an_export_closes_cleanly(
    client, tmp_path, monkeypatch
) -> None:
    signals = await selected(client, databases=(1, 2, 3), per_database=60)
    spec = ExportSpec(
        out=tmp_path / "out",
        start=START,
        end=END,
        window="1s",
        indexes=tuple(m.index for m in signals),
        rows_per_flush=50_000,
    )
    original = _manifest.Manifest.commit

    with anyio.CancelScope() as scope:

        def commit_then_cancel(self, *args, **kwargs):
            original(self, *args, **kwargs)
            scope.cancel()  # as a caller's timeout would, mid-export

        monkeypatch.setattr(_manifest.Manifest, "commit", commit_then_cancel)
        await export(client, spec)

    assert scope.cancelled_caught
    journal = _manifest.read_manifest(spec.out)
    committed = sorted(str(p.relative_to(spec.out)) for p in spec.out.rglob("part-*"))
    assert committed == sorted(journal.parts)
    assert read_dataset(spec.out).num_rows == journal.points > 0
    assert client.pacer.in_flight == 0  # every request in flight was cancelled


async def test_the_journal_is_not_read_as_data(client, tmp_path) -> None:
    signals = await selected(client, databases=(2,), per_database=20)
    spec = ExportSpec(
        out=tmp_path / "out",
        start=START,
        end=START + timedelta(minutes=10),
        window="10s",
        format="jsonl",
        databases=(2,),
        indexes=tuple(m.index for m in signals),
    )
    report = await export(client, spec)

    count = (
        duckdb.connect()
        .execute(
            "SELECT count(*) FROM read_json(?, format='newline_delimited')",
            [f"{spec.out}/**/*.jsonl"],
        )
        .fetchone()
    )

    assert count == (report.points,)
    assert sorted(p.name for p in spec.out.iterdir() if p.is_file()) == [
        "_manifest.journal",
        "_report.json",
    ]


SPECIAL_FLOATS = (1.5, math.nan, math.inf, -math.inf, None, 0.1, -0.0, 1e20)


def test_csv_spells_nan_and_infinities_as_json_lines_does(tmp_path) -> None:
    table = float_points(SPECIAL_FLOATS)
    _formats.write_file(table, tmp_path / "points.csv", "csv")
    _formats.write_file(table, tmp_path / "points.jsonl", "jsonl")

    csv_lines = (tmp_path / "points.csv").read_text("utf-8-sig").splitlines()
    json_values = [
        json.loads(line)["value_float"]
        for line in (tmp_path / "points.jsonl").read_text("utf-8").splitlines()
    ]

    assert csv_lines == [
        '"database_id","index","aggregation","timestamp","value_float","value_int",'
        '"value_bool","value_text"',
        '1,"7","mean","2026-12-04T12:00:00.000000Z",1.5,,,',
        '1,"7","mean","2026-12-04T12:00:01.000000Z",NaN,,,',
        '1,"7","mean","2026-12-04T12:00:02.000000Z",Infinity,,,',
        '1,"7","mean","2026-12-04T12:00:03.000000Z",-Infinity,,,',
        '1,"7","mean","2026-12-04T12:00:04.000000Z",,,,',
        '1,"7","mean","2026-12-04T12:00:05.000000Z",0.1,,,',
        '1,"7","mean","2026-12-04T12:00:06.000000Z",-0.0,,,',
        '1,"7","mean","2026-12-04T12:00:07.000000Z",1e+20,,,',
    ]
    assert json_values == [1.5, "NaN", "Infinity", "-Infinity", None, 0.1, -0.0, 1e20]


def test_csv_text_is_otherwise_that_of_pyarrows_writer(tmp_path) -> None:
    """Every field but the special and whole floats is byte for byte what pyarrow
    writes."""
    texts = ["plain", "", 'say "hi"', "a,b", "two\nlines", "crlf\r\nend", "Zürich"]
    floats = [0.1, 1 / 3, 5e-324, 1.5e300, -2.5e-7, 1e16, 123456.5]
    rows = []
    for number in range(210):
        rows.append(
            {
                "database_id": number % 3 + 1,
                "index": texts[number % 7],
                "aggregation": "mean",
                "timestamp": pd.Timestamp(1_796_392_800 + number, unit="s", tz="UTC"),
                "value_float": _not_whole(floats[number % 7] * (number + 1)),
                "value_int": [None, 2**63 - 1, -(2**63), 0][number % 4],
                "value_bool": [None, True, False][number % 3],
                "value_text": [None, *texts][number % 8],
            }
        )
    table = pa.Table.from_pylist(rows, schema=POINT_SCHEMA)
    _formats.write_file(table, tmp_path / "points.csv", "csv")

    reference = io.BytesIO()
    pa_csv.write_csv(_formats._with_text_timestamps(table), reference)

    written = (tmp_path / "points.csv").read_bytes()
    assert written == b"\xef\xbb\xbf" + reference.getvalue()


def _not_whole(value: float) -> float:
    """``value``, moved off a whole number that pyarrow writes without a point."""
    return value + 0.5 if value.is_integer() and abs(value) < 1e15 else value


README_CSV_OPTIONS = pa_csv.ConvertOptions(
    # pyarrow counts "NaN" among its default null markers: only an empty field is
    # null here, and a quoted empty text stays a text.
    null_values=[""],
    strings_can_be_null=True,
    quoted_strings_can_be_null=False,
)


def test_readers_take_csv_specials_back_as_floats(tmp_path) -> None:
    path = tmp_path / "points.csv"
    _formats.write_file(float_points(SPECIAL_FLOATS), path, "csv")

    with_pandas = pd.read_csv(path, encoding="utf-8-sig")["value_float"].tolist()
    with_duckdb = [
        row[0]
        for row in duckdb.connect()
        .execute("SELECT value_float FROM read_csv(?)", [str(path)])
        .fetchall()
    ]
    with_pyarrow = pa_csv.read_csv(path, convert_options=README_CSV_OPTIONS)[
        "value_float"
    ]

    expected = ["1.5", "nan", "inf", "-inf", "null", "0.1", "-0.0", "1e+20"]
    assert _spelled(with_duckdb) == expected
    assert _spelled(with_pyarrow.to_pylist()) == expected
    # pandas has no null apart from NaN for a float column.
    assert _spelled(with_pandas) == [*expected[:4], "nan", *expected[5:]]


def test_whole_floats_keep_a_decimal_point_so_readers_take_them_as_floats(
    tmp_path,
) -> None:
    night = tmp_path / "night.csv"
    day = tmp_path / "day.csv"
    _formats.write_file(float_points((0.0, -0.0, 3.0, 2.0**53)), night, "csv")
    _formats.write_file(float_points((0.0, 50.002)), day, "csv")

    lines = night.read_text("utf-8-sig").splitlines()[1:]
    with_pandas = pd.read_csv(night, encoding="utf-8-sig")["value_float"]
    with_pyarrow = pa_csv.read_csv(night, convert_options=README_CSV_OPTIONS)
    both = ds.dataset([night, day], format="csv").to_table()

    assert [line.split(",")[4] for line in lines] == [
        "0.0",
        "-0.0",
        "3.0",
        "9.007199254740992e+15",  # as pyarrow writes it: an exponent says float
    ]
    assert str(with_pandas.dtype) == "float64"
    assert with_pyarrow.schema.field("value_float").type == pa.float64()
    assert both["value_float"].to_pylist() == [0.0, -0.0, 3.0, 2.0**53, 0.0, 50.002]


def test_the_readme_options_read_null_and_empty_texts_apart(tmp_path) -> None:
    path = tmp_path / "points.csv"
    table = float_points((None, None, None)).set_column(
        POINT_SCHEMA.get_field_index("value_text"),
        "value_text",
        pa.array([None, "", "x"], pa.string()),
    )
    _formats.write_file(table, path, "csv")

    read = pa_csv.read_csv(path, convert_options=README_CSV_OPTIONS)

    assert read["value_text"].to_pylist() == [None, "", "x"]
    assert read["value_float"].to_pylist() == [None, None, None]


def _spelled(values: list) -> list[str]:
    return ["null" if value is None else str(float(value)) for value in values]


async def test_blocks_split_by_a_size_limit_are_committed_as_planned(
    settings, tmp_path
) -> None:
    from dataclasses import replace

    from powerp_async import PowerPClient
    from powerp_async.simulator import Scenario, Simulator, SizeLimit

    limited = replace(settings, scenario=Scenario(size=SizeLimit(max_points=2_000)))
    simulator = Simulator(limited)
    spec = ExportSpec(
        out=tmp_path / "out",
        start=START,
        end=START + timedelta(minutes=20),
        window="5s",
        databases=(2,),
        block_size=20,
    )
    async with (
        simulator,
        PowerPClient(
            client_id="tester",
            client_secret=settings.client_secret,
            base_url=simulator.base_url,
            initial_rate=100,
        ) as client,
    ):
        report = await export(client, spec)
        everything = await client.measurements()

    journal = _manifest.read_manifest(spec.out)
    selected = _matching(everything, spec)
    planned = {
        b.unit_id for b in plan_blocks(selected, spec.time_range(), block_size=20)
    }
    assert simulator.stats.snapshot()["requests"]["query"]["413"] > 0
    assert set(journal.done_units) == planned  # halves are never committed on their own
    assert_exact(
        read_dataset(spec.out),
        expected_points(simulator.tenant, selected, spec.time_range()),
    )
    assert report.complete


async def test_a_range_ending_after_now_is_warned_of(client, tmp_path, caplog) -> None:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    future = ExportSpec(
        out=tmp_path / "later",
        start=now + timedelta(hours=1),
        end=now + timedelta(hours=1, minutes=2),
        window="1m",
        databases=(2,),
    )
    past = dataclasses.replace(
        future, out=tmp_path / "earlier", start=now - timedelta(minutes=2), end=now
    )

    plans = [await plan_export(client, spec) for spec in (past, future)]
    with caplog.at_level(logging.WARNING, logger="powerp_async.export.range"):
        await export(client, past)
        assert caplog.records == []
        later = await export(client, future)

    # The server has nothing there yet: every signal is one gap, as warned.
    assert later.points == 0
    assert {(gap.start, gap.end) for gap in later.gaps} == {
        (format_wire(to_epoch_us(future.start)), format_wire(to_epoch_us(future.end)))
    }

    end = format_wire(to_epoch_us(future.end))
    assert [record.getMessage() for record in caplog.records] == [
        f"the range ends at {end}, after now: the server has no data there yet, so "
        "those windows are recorded as gaps and a resume will not fetch them later; "
        "end the range at now or before, and export the rest once it has passed"
    ]
    # A dry run says it too, before anything is fetched.
    assert [plan.ends_after_now for plan in plans] == [False, True]
    assert "Ends after now" not in plans[0].describe()
    assert plans[1].describe().splitlines()[3] == (
        "Ends after now: the server has no data there yet, so a run records those "
        "windows as gaps and a resume will not fetch them later; end the range at "
        "now or before, and export the rest once it has passed"
    )
