"""Exports that stop, fail to write or find their folder changed, and their resumes."""

from __future__ import annotations

import copy
import dataclasses
import errno
import fcntl
import json
import logging
import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pyarrow as pa
import pytest

from powerp_async import ExportSpec, PowerPClient, export, plan_export
from powerp_async._export import (
    ExportWriteError,
    RecordedSource,
    _manifest,
    _open,
    _parts,
    recorded_source,
)
from powerp_async._export import _run as _run_module
from powerp_async._export._manifest import Manifest, read_manifest
from powerp_async._export._parts import PartWriter
from powerp_async._export._report import REPORT_NAME, ExportReport
from powerp_async.errors import ConfigurationError
from powerp_async.models import POINT_SCHEMA
from powerp_async.planning import plan_blocks

from .conftest import ANCHOR, CLIENT_SECRET
from .helpers import assert_exact, expected_points
from .test_export import END, START, _matching, read_dataset, selected

JOURNAL = _manifest.MANIFEST_NAME
UNITS = {letter: letter * 24 for letter in "abcd"}
"""Unit ids by a short name: 24 hex digits, as a block's are."""
DEMO_SOURCE = "demo simulator (seed 7, anchor 2026-12-04T12:00:00Z)"
DISK_FULL = "No space left on device"


async def spec_for(client: PowerPClient, out: Path, **changes: Any) -> ExportSpec:
    """Forty minutes of some 60 signals in 5 s windows, in two time slices."""
    signals = await selected(client, databases=(1, 2), per_database=30)
    options: dict[str, Any] = {
        "start": START,
        "end": END,
        "window": "5s",
        "indexes": tuple(m.index for m in signals),
        "rows_per_flush": 10**9,
        **changes,
    }
    return ExportSpec(out=out, **options)


async def planned_blocks(client: PowerPClient, spec: ExportSpec) -> int:
    signals = _matching(await client.measurements(), spec)
    blocks = plan_blocks(
        signals, spec.time_range(), block_size=client.config.block_size
    )
    return sum(1 for _ in blocks)


async def expected_for(client, simulator, spec: ExportSpec) -> dict:
    everything = await client.measurements()
    return expected_points(
        simulator.tenant, _matching(everything, spec), spec.time_range()
    )


def stop_after(monkeypatch, adds: int, stop: Callable[[], None]) -> None:
    """Make the writer call ``stop`` right after buffering its ``adds``-th block."""
    original = PartWriter.add
    count = 0

    def add_then_stop(self, *args, **kwargs):
        nonlocal count
        original(self, *args, **kwargs)
        count += 1
        if count == adds:
            stop()

    monkeypatch.setattr(PartWriter, "add", add_then_stop)


async def stopped_after_five_blocks(
    client: PowerPClient, out: Path, monkeypatch
) -> ExportSpec:
    """The spec of an export into ``out`` stopped by Ctrl-C after five blocks."""
    spec = await spec_for(client, out)
    stop_after(monkeypatch, 5, raising(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        await export(client, spec)

    monkeypatch.undo()
    return spec


def raising(error: BaseException) -> Callable[[], None]:
    def stop() -> None:
        raise error

    return stop


def commit_lines(out: Path) -> list[dict]:
    lines = (out / JOURNAL).read_bytes().split(b"\n")
    assert lines[-1] == b"", "the journal ends with a newline"
    records = [json.loads(line) for line in lines[:-1]]
    return [r for r in records if r["kind"] == "commit"]


# Interruption: fetched blocks are committed on the way out.


@pytest.mark.parametrize("how", ["ctrl-c", "error elsewhere", "cancelled"])
async def test_a_stopped_run_commits_the_blocks_it_fetched(
    client, simulator, tmp_path, monkeypatch, how
) -> None:
    spec = await spec_for(client, tmp_path / "out")
    scope = anyio.CancelScope()
    stops = {
        "ctrl-c": raising(KeyboardInterrupt()),
        "error elsewhere": raising(RuntimeError("a fault elsewhere")),
        "cancelled": scope.cancel,
    }
    stop_after(monkeypatch, 5, stops[how])

    stopped_by = await _run_until_stopped(client, spec, scope)

    assert (
        stopped_by
        == {
            "ctrl-c": "KeyboardInterrupt",
            "error elsewhere": "RuntimeError",
            "cancelled": "cancelled",
        }[how]
    )
    journal = read_manifest(spec.out)
    assert len(journal.done_units) == 5
    assert read_dataset(spec.out).num_rows == journal.points > 0
    # The account of the run as it stopped, not of any run before it.
    stopped = ExportReport.read(spec.out)
    assert (stopped.complete, stopped.blocks_committed) == (False, 5)
    assert stopped.points == stopped.points_this_run == journal.points

    monkeypatch.undo()
    report = await export(client, spec, resume=True)

    expected = await expected_for(client, simulator, spec)
    assert_exact(read_dataset(spec.out), expected)
    assert report.points_this_run == len(expected) - journal.points
    assert report.blocks_committed == report.blocks_total
    assert report.blocks_total == await planned_blocks(client, spec)


async def _run_until_stopped(client, spec, scope: anyio.CancelScope) -> str:
    try:
        with scope:
            await export(client, spec)
    except (KeyboardInterrupt, RuntimeError) as error:
        return type(error).__name__

    return "cancelled" if scope.cancelled_caught else "finished"


async def test_a_run_stopped_counts_as_its_own_the_points_it_committed(
    client, tmp_path, monkeypatch
) -> None:
    spec = await stopped_after_five_blocks(client, tmp_path / "out", monkeypatch)
    before = read_manifest(spec.out).points
    # The resume fetches more blocks than it commits before it is stopped: the
    # blocks on their way to the writer then are fetched again by the next run.
    stop_after(monkeypatch, 3, raising(KeyboardInterrupt()))
    handed_on = []
    original = ExportReport.build

    def build(journal, stats, *args):
        handed_on.append(stats.points)
        stats.points += 1_000_000  # as many more as a fast server could bring
        return original(journal, stats, *args)

    monkeypatch.setattr(ExportReport, "build", build)
    with pytest.raises(KeyboardInterrupt):
        await export(client, spec, resume=True)

    report = ExportReport.read(spec.out)
    assert handed_on
    assert report.points_this_run == report.points - before > 0


async def test_a_resume_removes_the_report_of_the_run_before_it_at_once(
    client, tmp_path, monkeypatch
) -> None:
    spec = await stopped_after_five_blocks(client, tmp_path / "out", monkeypatch)
    assert (spec.out / REPORT_NAME).is_file()
    # Killed before it could write its own: the folder then holds no report,
    # rather than the account of the run before it, which the resume outdid.
    stop_after(monkeypatch, 1, raising(SystemExit(137)))
    monkeypatch.setattr(_run_module, "_account_while_stopping", lambda *a: None)

    with pytest.raises(SystemExit):
        await export(client, spec, resume=True)

    assert not (spec.out / REPORT_NAME).exists()
    assert len(read_manifest(spec.out).done_units) > 5


async def test_a_failed_commit_while_stopping_keeps_the_first_error(
    client, simulator, tmp_path, monkeypatch, caplog
) -> None:
    spec = await spec_for(client, tmp_path / "out")
    stop_after(monkeypatch, 5, raising(KeyboardInterrupt()))
    monkeypatch.setattr(_parts, "write_file", _fill_the_disk)

    with (
        caplog.at_level(logging.WARNING, logger="powerp_async.export"),
        pytest.raises(KeyboardInterrupt),
    ):
        await export(client, spec)

    assert caplog.messages == [
        f"could not commit 5 fetched blocks while stopping: cannot write to the "
        f"export folder {spec.out}: {DISK_FULL}; everything committed before is "
        "kept, so the export can be resumed once this is fixed"
    ]
    journal = read_manifest(spec.out)
    assert (len(journal.done_units), journal.parts, journal.points) == (0, [], 0)
    assert list(spec.out.rglob("part-*")) == []
    assert list(spec.out.rglob(".part-*.tmp")) == []  # removed by the failed flush

    monkeypatch.undo()
    report = await export(client, spec, resume=True)

    assert_exact(read_dataset(spec.out), await expected_for(client, simulator, spec))
    assert report.complete
    assert list(spec.out.rglob("*.tmp")) == []


def _fill_the_disk(table: pa.Table, path: Path, fmt: str, **options: bool) -> None:
    path.write_bytes(b"PAR1 half a part")
    raise OSError(errno.ENOSPC, DISK_FULL, str(path))


# Commits on time, not only on size.


def _batch(rows: int) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [
            {
                "database_id": 1,
                "index": str(row),
                "aggregation": "mean",
                "timestamp": ANCHOR,
                "value_float": float(row),
            }
            for row in range(rows)
        ],
        schema=POINT_SCHEMA,
    )


def test_blocks_are_committed_once_the_oldest_waited_30_s(tmp_path) -> None:
    now_s = [1000.0]
    manifest = Manifest.create(tmp_path, {"parameters": {}, "signals": []})
    writer = PartWriter(
        tmp_path, "parquet", manifest, rows_per_flush=10**6, clock=lambda: now_s[0]
    )

    def committed() -> set[str]:
        return set(read_manifest(tmp_path).done_units)

    writer.add(UNITS["a"], _batch(2), [])
    now_s[0] = 1029.9
    writer.add(UNITS["b"], _batch(3), [])
    writer.flush_if_due()
    assert committed() == set()

    now_s[0] = 1030.0
    writer.flush_if_due()
    assert committed() == {UNITS["a"], UNITS["b"]}

    now_s[0] = 1045.0
    writer.add(UNITS["c"], _batch(1), [])  # the oldest is now "c", which has not waited
    assert committed() == {UNITS["a"], UNITS["b"]}

    now_s[0] = 1075.0
    writer.add(UNITS["d"], _batch(1), [])  # adding checks the time too
    assert committed() == {UNITS["a"], UNITS["b"], UNITS["c"], UNITS["d"]}
    assert read_manifest(tmp_path).points == 7
    manifest.close()


async def test_a_slow_export_commits_on_time_as_well(
    client, simulator, tmp_path, monkeypatch
) -> None:
    spec = await spec_for(client, tmp_path / "out")
    monkeypatch.setattr(_parts, "MAX_BUFFER_AGE_S", 0.0)  # every block is overdue

    report = await export(client, spec)

    assert len(commit_lines(spec.out)) == report.blocks_total
    assert report.blocks_total == await planned_blocks(client, spec)
    assert_exact(read_dataset(spec.out), await expected_for(client, simulator, spec))


# The journal: torn tails, damage, locks, missing parts.


async def test_a_torn_journal_tail_is_cut_before_resuming(
    client, simulator, tmp_path, monkeypatch
) -> None:
    spec = await stopped_after_five_blocks(client, tmp_path / "out", monkeypatch)
    intact = (spec.out / JOURNAL).read_bytes()
    # What a crash or a full disk leaves: a commit line cut short, without newline.
    with (spec.out / JOURNAL).open("ab") as journal:
        journal.write(b'{"kind":"commit","parts":["database=1/day=2026-12-04/pa')

    report = await export(client, spec, resume=True)

    assert_exact(read_dataset(spec.out), await expected_for(client, simulator, spec))
    assert report.complete
    assert (spec.out / JOURNAL).read_bytes().startswith(intact)
    assert len(commit_lines(spec.out)) == 2  # the one of the stop, the one of now
    assert read_manifest(spec.out).points == report.points


@pytest.mark.parametrize("written", [b"", b'{"kind":"header","vers'])
def test_a_journal_without_a_whole_header_has_nothing_to_resume(
    tmp_path, written: bytes
) -> None:
    # A run killed while writing its first line leaves the journal empty or torn.
    (tmp_path / JOURNAL).write_bytes(written)

    with pytest.raises(ConfigurationError) as caught:
        read_manifest(tmp_path)

    assert str(caught.value) == (
        f"nothing to resume in {tmp_path}: its journal holds no complete header, as "
        "the first run stopped while writing it; remove the folder and export again"
    )


async def test_a_resume_plan_counts_what_the_folder_still_lacks(
    client, simulator, tmp_path, monkeypatch
) -> None:
    spec = await stopped_after_five_blocks(client, tmp_path / "out", monkeypatch)
    journal_before = (spec.out / JOURNAL).read_bytes()
    listings_before = dict(simulator.stats.requests.get("measurements", {}))

    plan = await plan_export(client, spec, resume=True)

    # The recorded signals are planned: the listing is not fetched again.
    assert simulator.stats.requests.get("measurements", {}) == listings_before
    assert (spec.out / JOURNAL).read_bytes() == journal_before
    assert (plan.done, plan.requests, plan.remaining) == (5, 30, 25)
    assert plan.estimate_s(5.0) == 5.0
    assert plan.describe().splitlines()[3:] == [
        "Already exported: 5 of 30 blocks; a resume sends the other 25 queries",
        "Time for the queries: 5 s at 5 req/s, 1 s at 20 req/s, 0 s at 100 req/s",
    ]
    report = await export(client, spec, resume=True)
    assert report.requests == plan.remaining


def _longer_window(spec: ExportSpec) -> ExportSpec:
    return dataclasses.replace(spec, window="10s")


def _truncated_part(spec: ExportSpec) -> ExportSpec:
    part = sorted(spec.out.rglob("part-*.parquet"))[0]
    part.write_bytes(part.read_bytes()[:100])
    return spec


def _removed_part(spec: ExportSpec) -> ExportSpec:
    sorted(spec.out.rglob("part-*.parquet"))[-1].unlink()
    return spec


def _foreign_part(spec: ExportSpec) -> ExportSpec:
    part = sorted(spec.out.rglob("part-*.parquet"))[0]
    (part.parent / "part-copied-in.parquet").write_bytes(part.read_bytes())
    return spec


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (_longer_window, "window"),
        (_truncated_part, "is 100 bytes, but the journal recorded"),
        (_removed_part, "1 committed part file(s) are missing"),
        (_foreign_part, "part-copied-in.parquet"),
    ],
)
async def test_a_resume_plan_is_refused_as_the_resume_would_be(
    client, tmp_path, change, named: str
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    await export(client, spec)
    changed = change(spec)
    listing = sorted((p, p.stat().st_size) for p in spec.out.rglob("*"))

    with pytest.raises(ConfigurationError) as planned:
        await plan_export(client, changed, resume=True)
    assert sorted((p, p.stat().st_size) for p in spec.out.rglob("*")) == listing
    with pytest.raises(ConfigurationError) as resumed:
        await export(client, changed, resume=True)

    assert str(planned.value) == str(resumed.value)
    assert named in str(planned.value)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"window": "1x"},
            "window: invalid duration '1x': expected a number with a unit (us, ms, "
            "s, m, h, d, w), such as '200ms', '1s' or '1h30m'",
        ),
        ({"start": None}, "no 'start'"),
    ],
)
async def test_damaged_recorded_parameters_name_the_journal(
    client, tmp_path, change: dict, reason: str
) -> None:
    spec = await spec_for(client, tmp_path / "out")
    await export(client, spec)
    path = spec.out / JOURNAL
    header, *rest = path.read_bytes().split(b"\n")
    record = json.loads(header)
    del record["check"]  # as written before lines were checked, or recomputed
    for key, value in change.items():
        if value is None:
            del record["parameters"][key]
        else:
            record["parameters"][key] = value
    path.write_bytes(b"\n".join([json.dumps(record).encode(), *rest]))

    with pytest.raises(ConfigurationError) as caught:
        ExportSpec.recorded(spec.out)

    assert str(caught.value) == (
        f"the journal of {spec.out} records parameters that cannot be read "
        f"({reason}): it was damaged or edited outside the export, so the folder "
        "cannot be resumed"
    )


def _edited(edit: Callable[[dict], object]) -> Callable[[bytes], bytes]:
    """A journal line as a hand edit of ``edit``'s kind would leave it."""

    def rewrite(line: bytes) -> bytes:
        record = json.loads(line)
        edit(record)
        return json.dumps(record, separators=(",", ":")).encode() + b"\n"

    return rewrite


EDITED = "its content does not match its check"


@pytest.mark.parametrize(
    ("line", "rewrite", "reason"),
    [
        (
            3,
            lambda line: b"garbage\n",
            "not JSON: unexpected character, expected a JSON value",
        ),
        # A unit taken out of a commit would be fetched, and written, twice.
        (2, _edited(lambda record: record["units"].pop()), EDITED),
        # Another format or window would mix two kinds of parts in one folder.
        (1, _edited(lambda record: record["parameters"].update(format="csv")), EDITED),
        (1, _edited(lambda record: record["parameters"].update(window="10s")), EDITED),
        (2, _edited(lambda record: record.update(points=-5)), EDITED),
    ],
)
async def test_a_damaged_or_edited_journal_line_is_named(
    client, tmp_path, line: int, rewrite: Callable[[bytes], bytes], reason: str
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    await export(client, spec)
    path = spec.out / JOURNAL
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) > 3
    lines[line - 1] = rewrite(lines[line - 1])
    path.write_bytes(b"".join(lines))

    with pytest.raises(ConfigurationError) as caught:
        await export(client, spec, resume=True)

    assert str(caught.value) == (
        f"{path}, line {line}, is unreadable ({reason}): the journal was damaged or "
        "edited outside the export, so the folder cannot be resumed"
    )


@pytest.mark.parametrize("copied", ["its own last line", "another export's line"])
async def test_a_journal_committing_blocks_twice_is_refused(
    client, tmp_path, copied: str
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    await export(client, spec)
    path = spec.out / JOURNAL
    lines = path.read_bytes().splitlines(keepends=True)
    if copied == "its own last line":
        path.write_bytes(b"".join([*lines, lines[-1]]))
    else:
        # The same export made again elsewhere: its second line commits the same
        # blocks as this one's, in files of other names.
        other = dataclasses.replace(spec, out=tmp_path / "other")
        await export(client, other)
        theirs = (other.out / JOURNAL).read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join([*lines, theirs[1]]))

    with pytest.raises(ConfigurationError) as caught:
        await export(client, spec, resume=True)

    assert str(caught.value) == (
        f"{path}, line {len(lines) + 1}, commits blocks or files that an earlier "
        "line committed already: the journal was edited, or given a line of another "
        "export's, and resuming would count their points twice; the folder cannot "
        "be resumed"
    )


async def test_a_second_run_or_its_dry_run_into_a_busy_folder_stops_at_once(
    client, tmp_path
) -> None:
    spec = await spec_for(client, tmp_path / "out")
    await export(client, spec)

    with (spec.out / JOURNAL).open("rb") as busy:
        fcntl.flock(busy.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a run holds it
        with pytest.raises(ConfigurationError) as caught:
            await export(client, spec, resume=True)
        with pytest.raises(ConfigurationError) as planning:
            await plan_export(client, spec, resume=True)
        with pytest.raises(ConfigurationError) as fresh:  # not "resume it" while busy
            await export(client, spec)

    plan = await plan_export(client, spec, resume=True)
    report = await export(client, spec, resume=True)

    busy_folder = (
        f"another export is writing to {spec.out}; wait for it to finish, or stop it, "
        "and try again"
    )
    assert str(caught.value) == str(planning.value) == busy_folder
    assert str(fresh.value) == busy_folder
    assert plan.remaining == 0
    assert report.complete
    assert report.points_this_run == 0


@pytest.mark.parametrize(
    ("finished", "advice"),
    [
        (
            True,
            "(it holds a finished export, complete; choose another folder, or "
            "remove this one to export again)",
        ),
        (False, "(continue it with resume=True; --resume on the command line)"),
    ],
)
async def test_a_plan_into_a_used_folder_is_refused_as_the_export_is(
    client, tmp_path, finished: bool, advice: str
) -> None:
    spec = await spec_for(client, tmp_path / "out")
    await export(client, spec)
    if not finished:
        (spec.out / "_report.json").unlink()  # as a run killed outright leaves it

    with pytest.raises(ConfigurationError) as planning:
        await plan_export(client, spec)  # a dry run, not a resume
    with pytest.raises(ConfigurationError) as running:
        await export(client, spec)

    assert (
        str(planning.value)
        == str(running.value)
        == f"output folder {spec.out} is not empty; refusing to mix two "
        f"exports {advice}"
    )


async def test_a_committed_part_that_went_missing_refuses_a_resume(
    client, tmp_path
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    await export(client, spec)
    victim = sorted(read_manifest(spec.out).parts)[1]
    (spec.out / victim).unlink()

    with pytest.raises(ConfigurationError) as caught:
        await export(client, spec, resume=True)

    hidden = f".{Path(victim).name}.tmp"
    assert str(caught.value) == (
        f"cannot resume into {spec.out}: 1 committed part file(s) are missing, first "
        f"{victim} (nor is it there under the hidden name {hidden}, which a run "
        "stopped before revealing it leaves); the folder was modified outside the "
        "export, so its data can no longer be completed exactly. Export again into a "
        "new folder"
    )


async def test_a_part_a_crash_left_hidden_is_checked_before_readers_see_it(
    client, tmp_path
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    await export(client, spec)
    committed = sorted(read_manifest(spec.out).parts)
    # Committed, then the run stopped before the rename that shows it to readers;
    # and the hidden file damaged since, as a failing disk might.
    victim = spec.out / committed[1]
    hidden = victim.with_name(f".{victim.name}.tmp")
    os.replace(victim, hidden)
    size = hidden.stat().st_size
    os.truncate(hidden, 50)
    leftover = victim.with_name(".part-left-over.parquet.tmp")
    leftover.write_bytes(b"never committed")
    listing = sorted((p, p.stat().st_size) for p in spec.out.rglob("*"))

    with pytest.raises(ConfigurationError) as planned:
        await plan_export(client, spec, resume=True)
    with pytest.raises(ConfigurationError) as resumed:
        await export(client, spec, resume=True)

    # Refused, by the dry run as by the resume, and nothing in the folder changed:
    # the damaged part is still hidden from readers.
    assert str(resumed.value) == str(planned.value)
    assert str(resumed.value) == (
        f"cannot resume into {spec.out}: committed part {committed[1]} (still "
        f"under the hidden name {hidden.name}) is 50 bytes, but the journal "
        f"recorded {size:,}; the file was changed outside the export, so the "
        "folder's data is no longer what was committed. Export again into a new "
        "folder"
    )
    assert sorted((p, p.stat().st_size) for p in spec.out.rglob("*")) == listing


async def test_a_part_a_crash_left_hidden_intact_is_revealed_by_the_resume(
    client, simulator, tmp_path
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    await export(client, spec)
    victim = spec.out / sorted(read_manifest(spec.out).parts)[1]
    os.replace(victim, victim.with_name(f".{victim.name}.tmp"))

    await export(client, spec, resume=True)

    assert victim.is_file()
    assert list(spec.out.rglob("*.tmp")) == []
    assert_exact(read_dataset(spec.out), await expected_for(client, simulator, spec))


# The source of the data.


async def test_a_resume_from_another_source_is_refused(
    client, simulator, tmp_path
) -> None:
    spec = await spec_for(client, tmp_path / "out")
    await export(client, spec)
    elsewhere_url = simulator.base_url.replace("127.0.0.1", "localhost")

    async with PowerPClient(
        client_id="tester", client_secret=CLIENT_SECRET, base_url=elsewhere_url
    ) as elsewhere:
        with pytest.raises(ConfigurationError) as caught:
            await export(elsewhere, spec, resume=True)

    assert str(caught.value) == (
        f"cannot resume into {spec.out}: its data came from {simulator.base_url!r}, "
        f"but this run reads from {elsewhere_url!r}; resume from the same source, or "
        "export into a new folder"
    )


async def test_a_named_source_is_recorded_and_compared(client, tmp_path) -> None:
    details = {"seed": 7, "anchor": "2026-12-04T12:00:00Z"}
    spec = await spec_for(
        client, tmp_path / "out", source=DEMO_SOURCE, source_details=details
    )
    await export(client, spec)
    other = dataclasses.replace(spec, source=DEMO_SOURCE.replace("seed 7", "seed 8"))

    with pytest.raises(ConfigurationError) as caught:
        await export(client, other, resume=True)
    resumed = await export(client, spec, resume=True)

    assert recorded_source(spec.out) == RecordedSource(DEMO_SOURCE, details)
    assert str(caught.value) == (
        f"cannot resume into {spec.out}: its data came from {DEMO_SOURCE!r}, but "
        f"this run reads from {other.source!r}; resume from the same source, or "
        "export into a new folder"
    )
    assert resumed.complete


async def test_the_default_source_is_the_masked_base_url(
    client, simulator, tmp_path
) -> None:
    spec = await spec_for(client, tmp_path / "out")
    await export(client, spec)

    assert recorded_source(spec.out) == RecordedSource(simulator.base_url, {})


def test_source_details_must_be_json(tmp_path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ExportSpec(
            out=tmp_path, start=START, end=END, source_details={"seed": object()}
        )

    assert str(caught.value) == (
        "source_details: expected string keys and JSON values, got Type is not JSON "
        "serializable: object"
    )


def test_a_spec_pickles_and_copies_whole_for_other_processes(tmp_path) -> None:
    spec = ExportSpec(
        out=tmp_path / "out",
        start=START,
        end=END,
        window="1m",
        format="csv",
        databases=(1, 3),
        indexes=("7",),
        source="demo",
        source_details={"seed": 7, "nested": {"ids": [1, 2]}},
        neutralise_formulas=True,
    )

    for copied in (pickle.loads(pickle.dumps(spec)), copy.deepcopy(spec)):
        assert copied == spec
        assert copied.source_details == {"seed": 7, "nested": {"ids": [1, 2]}}
        with pytest.raises(TypeError):
            copied.source_details["seed"] = 8  # type: ignore[index]


# Refused before anything is fetched or written.


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"window": "30m"},
            "window: 30m is too long: a query must span less than 30 minutes, so "
            "the window must be shorter than that",
        ),
        ({"block_size": 21}, "block_size: expected 1 to 20 signals per query, got 21"),
        ({"rows_per_flush": 0}, "rows_per_flush: expected at least 1, got 0"),
        (
            {"source": " "},
            "source: expected a description of where the data comes from, got ' '",
        ),
    ],
)
def test_a_spec_that_cannot_run_is_refused_on_construction(
    tmp_path, changes, message
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ExportSpec(out=tmp_path / "out", start=START, end=END, **changes)

    assert str(caught.value) == message
    assert not (tmp_path / "out").exists()


async def test_a_plan_error_leaves_no_folder(client, tmp_path, monkeypatch) -> None:
    spec = await spec_for(client, tmp_path / "deep" / "out")

    def refuse(*args, **kwargs):
        raise ConfigurationError("the plan cannot be served")

    monkeypatch.setattr(_open, "plan_totals", refuse)
    with pytest.raises(ConfigurationError, match=r"^the plan cannot be served$"):
        await export(client, spec)

    assert list(tmp_path.iterdir()) == []


def _count_listings(client, monkeypatch) -> list[int]:
    calls = [0]
    original = client.measurements

    async def counted():
        calls[0] += 1
        return await original()

    monkeypatch.setattr(client, "measurements", counted)
    return calls


@pytest.mark.parametrize("where", ["out is a file", "parent is a file", "read-only"])
async def test_an_unusable_folder_is_refused_before_any_request(
    client, tmp_path, monkeypatch, where
) -> None:
    spec = await spec_for(client, tmp_path / "blocker" / "out")
    blocker = tmp_path / "blocker"
    if where == "out is a file":
        blocker.mkdir()
        spec.out.write_text("not a folder")
    elif where == "parent is a file":
        blocker.write_text("not a folder")
    else:
        blocker.mkdir()
        real_access = os.access
        monkeypatch.setattr(
            os,
            "access",
            lambda p, mode, **kw: Path(p) != blocker and real_access(p, mode, **kw),
        )
    listings = _count_listings(client, monkeypatch)

    with pytest.raises(ConfigurationError) as caught:
        await export(client, spec)

    assert (
        str(caught.value)
        == {
            "out is a file": f"output folder {spec.out} is a file, not a folder",
            "parent is a file": f"cannot create output folder {spec.out}: {blocker} "
            "is a file, not a folder",
            "read-only": f"cannot create output folder {spec.out}: {blocker} is not "
            "writable",
        }[where]
    )
    assert listings == [0]


# Failing to write during the run.


@pytest.mark.parametrize("what", ["part", "journal", "journal and its closing"])
async def test_a_disk_that_fills_up_is_one_clear_error_and_resumable(
    client, simulator, tmp_path, monkeypatch, what
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    _fill_disk_on_third_write(monkeypatch, what)

    with pytest.raises(ExportWriteError) as caught:
        await export(client, spec)

    assert str(caught.value) == (
        f"cannot write to the export folder {spec.out}: {DISK_FULL}; everything "
        "committed before is kept, so the export can be resumed once this is fixed"
    )
    assert (caught.value.folder, caught.value.reason) == (spec.out, DISK_FULL)
    committed = read_manifest(spec.out)
    assert read_dataset(spec.out).num_rows == committed.points > 0
    if what == "part":  # nothing committed the flush's parts: it removed them
        assert list(spec.out.rglob(".part-*.tmp")) == []
    else:  # the journal line may have made it: the resume decides
        hidden = [p.relative_to(spec.out) for p in spec.out.rglob(".part-*.tmp")]
        revealed = {str(p.with_name(p.name[1 : -len(".tmp")])) for p in hidden}
        assert hidden
        assert revealed.isdisjoint(committed.parts)

    monkeypatch.undo()
    report = await export(client, spec, resume=True)

    assert_exact(read_dataset(spec.out), await expected_for(client, simulator, spec))
    assert report.points_this_run == report.points - committed.points
    assert list(spec.out.rglob("*.tmp")) == []
    commit_lines(spec.out)  # every line whole again


@pytest.mark.parametrize("how", ["folder removed", "journal moved", "journal replaced"])
async def test_a_journal_gone_during_the_run_stops_it_at_once(
    client, tmp_path, monkeypatch, how
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    journal = spec.out / "_manifest.journal"
    original_add = PartWriter.add
    added = 0

    def add(self, *args, **kwargs):
        nonlocal added
        added += 1
        if added == 1:
            if how == "folder removed":
                shutil.rmtree(spec.out)
            else:
                journal.rename(tmp_path / "moved.journal")
            if how == "journal replaced":
                journal.write_bytes(b"")
        return original_add(self, *args, **kwargs)

    monkeypatch.setattr(PartWriter, "add", add)

    with pytest.raises(ExportWriteError) as caught:
        await export(client, spec)

    moved = (
        "was moved away or replaced during the run; what was committed went with the "
        "journal: resume the export in the folder that holds it now (a folder "
        "renamed, say)"
    )
    deleted = (
        "was deleted during the run; what was written can no longer be resumed: "
        "remove what is left of the folder and run the export again"
    )
    assert str(caught.value) == (
        f"cannot write to the export folder {spec.out}: its journal "
        f"_manifest.journal {deleted if how == 'folder removed' else moved}"
    )
    assert not caught.value.resumable
    written = sorted(p.name for p in spec.out.rglob("*")) if spec.out.exists() else []
    # Nothing written after: no folder recreated, no part beside a lost journal.
    assert written == (["_manifest.journal"] if how == "journal replaced" else [])


async def test_a_folder_renamed_during_the_run_resumes_where_it_went(
    client, simulator, tmp_path, monkeypatch
) -> None:
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    renamed = dataclasses.replace(spec, out=tmp_path / "renamed")
    original_add = PartWriter.add
    added = 0

    def add(self, *args, **kwargs):
        nonlocal added
        added += 1
        if added == 4:  # after some commits
            spec.out.rename(renamed.out)
        return original_add(self, *args, **kwargs)

    monkeypatch.setattr(PartWriter, "add", add)
    with pytest.raises(ExportWriteError) as caught:
        await export(client, spec)
    monkeypatch.undo()

    kept = read_manifest(renamed.out)
    report = await export(client, renamed, resume=True)

    assert "resume the export in the folder that holds it now" in str(caught.value)
    assert kept.points > 0
    assert report.complete
    assert report.points_this_run == report.points - kept.points
    assert_exact(read_dataset(renamed.out), await expected_for(client, simulator, spec))


class _FailsToClose:
    """A journal file whose closing fails, as a buffered one does when it last
    failed to write."""

    def __init__(self, handle) -> None:
        self._handle = handle

    def __getattr__(self, name: str) -> Any:
        return getattr(self._handle, name)

    def close(self) -> None:
        self._handle.close()
        raise OSError(errno.EFBIG, "File too large")


def _fill_disk_on_third_write(monkeypatch, what: str) -> None:
    """The third part file, or the third commit line, finds the disk full."""
    writes = 0

    def third_fails() -> bool:
        nonlocal writes
        writes += 1
        return writes == 3

    if what == "part":
        original_file = _parts.write_file

        def write_file(table, path, fmt, **options):
            if third_fails():
                _fill_the_disk(table, path, fmt)
            return original_file(table, path, fmt, **options)

        monkeypatch.setattr(_parts, "write_file", write_file)
        return

    original_append = _manifest.Manifest._append

    def append(self, record):
        if record["kind"] == "commit" and third_fails():
            self._handle.write(json.dumps(record).encode()[:40])  # torn, no newline
            self._handle.flush()
            if what == "journal and its closing":
                # What failed to reach the disk stays in the file's buffer, and
                # closing the file tries to write it again.
                self._handle = _FailsToClose(self._handle)
            raise OSError(errno.ENOSPC, DISK_FULL)
        original_append(self, record)

    monkeypatch.setattr(_manifest.Manifest, "_append", append)


# The journal's header, written whole or not at all.

HEADER = {"parameters": {}, "signals": [{"index": str(n)} for n in range(5_000)]}


def test_a_crash_writing_the_header_leaves_no_journal(tmp_path, monkeypatch) -> None:
    def torn(path: Path, content: bytes, mode: str = "wb") -> None:
        path.write_bytes(content[: len(content) // 2])
        raise OSError(errno.ENOSPC, DISK_FULL, str(path))

    monkeypatch.setattr(_manifest, "_write_synced", torn)
    with pytest.raises(OSError, match=DISK_FULL):
        Manifest.create(tmp_path, HEADER)

    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    Manifest.create(tmp_path, HEADER).close()
    assert len(read_manifest(tmp_path).header["signals"]) == 5_000


async def test_a_journal_that_cannot_be_written_leaves_no_folder_made_for_it(
    client, tmp_path, monkeypatch
) -> None:
    def full(folder: Path, header: Any) -> Manifest:
        raise OSError(errno.ENOSPC, DISK_FULL)

    monkeypatch.setattr(Manifest, "create", full)
    spec = ExportSpec(
        out=tmp_path / "a" / "b" / "out", start=START, end=END, window="1m"
    )

    with pytest.raises(ExportWriteError) as caught:
        await export(client, spec)

    assert caught.value.reason == DISK_FULL
    assert list(tmp_path.iterdir()) == []


async def test_a_folder_that_cannot_be_made_is_refused_and_leaves_nothing(
    client, tmp_path, monkeypatch
) -> None:
    original_mkdir = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self.name == "out":
            raise OSError(errno.EROFS, "Read-only file system")
        return original_mkdir(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    out = tmp_path / "a" / "b" / "out"
    spec = ExportSpec(out=out, start=START, end=END, window="1m")

    with pytest.raises(ConfigurationError) as caught:
        await export(client, spec)

    assert str(caught.value) == (
        f"cannot create output folder {out}: Read-only file system"
    )
    assert list(tmp_path.iterdir()) == []


async def test_a_draft_a_killed_run_left_is_no_export_to_refuse(
    client, tmp_path
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    draft = out / f".{_manifest.MANIFEST_NAME}.4242.0badc0de"
    draft.write_bytes(b'{"kind":"header","version":')
    spec = ExportSpec(out=out, start=START, end=END, window="1m", databases=(2,))

    report = await export(client, spec)

    assert report.complete
    assert read_manifest(out).points == report.points > 0


def test_without_hard_links_the_header_is_written_in_place(
    tmp_path, monkeypatch
) -> None:
    def refused(source: Path, target: Path) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(_manifest.os, "link", refused)
    Manifest.create(tmp_path, HEADER).close()

    assert [p.name for p in tmp_path.iterdir()] == [_manifest.MANIFEST_NAME]
    assert len(read_manifest(tmp_path).header["signals"]) == 5_000


async def test_a_resume_with_no_journal_says_to_start_afresh(client, tmp_path) -> None:
    out = tmp_path / "never-started"
    spec = ExportSpec(out=out, start=START, end=END, window="1m", databases=(2,))

    with pytest.raises(ConfigurationError) as caught:
        await export(client, spec, resume=True)

    assert str(caught.value) == (
        f"nothing to resume in {out}: it has no _manifest.journal, so no export was "
        "started there or none got as far as writing one; start it afresh, without "
        "resuming"
    )
