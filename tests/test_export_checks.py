"""A resume checks each committed part's size and SHA-256, and refuses unnamed data."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import pytest

from powerp_async import cli, export
from powerp_async._export import _manifest
from powerp_async._export._manifest import read_manifest
from powerp_async._progress import summary
from powerp_async._words import plural
from powerp_async.errors import ConfigurationError

from .conftest import ANCHOR
from .helpers import assert_exact
from .test_export import START, read_dataset
from .test_export_failures import command_against_simulator
from .test_export_recovery import expected_for, spec_for

JOURNAL = _manifest.MANIFEST_NAME


def sha256_of(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def refusal(client, spec) -> str:
    """The one line with which a resume into ``spec.out`` is refused."""
    with pytest.raises(ConfigurationError) as caught:
        await export(client, spec, resume=True)

    return str(caught.value)


async def exported(client, tmp_path):
    spec = await spec_for(client, tmp_path / "out", rows_per_flush=5_000)
    await export(client, spec)
    return spec, sorted(read_manifest(spec.out).parts)


async def test_each_commit_records_its_parts_sizes_and_digests(
    client, tmp_path
) -> None:
    spec, parts = await exported(client, tmp_path)

    journal = read_manifest(spec.out)
    assert len(parts) > 1
    assert {part: (c.size_bytes, c.sha256) for part, c in journal.checks.items()} == {
        part: ((spec.out / part).stat().st_size, sha256_of(spec.out / part))
        for part in parts
    }


async def test_a_truncated_part_refuses_a_resume(client, tmp_path) -> None:
    spec, parts = await exported(client, tmp_path)
    victim = parts[1]
    recorded = (spec.out / victim).stat().st_size
    with (spec.out / victim).open("r+b") as handle:
        handle.truncate(100)

    assert await refusal(client, spec) == (
        f"cannot resume into {spec.out}: committed part {victim} is 100 bytes, but "
        f"the journal recorded {recorded:,}; the file was changed outside the export, "
        "so the folder's data is no longer what was committed. Export again into a "
        "new folder"
    )


async def test_a_part_with_one_byte_flipped_refuses_a_resume(client, tmp_path) -> None:
    spec, parts = await exported(client, tmp_path)
    victim = spec.out / parts[2]
    recorded = sha256_of(victim)
    content = bytearray(victim.read_bytes())
    content[len(content) // 2] ^= 0x01
    victim.write_bytes(bytes(content))

    assert await refusal(client, spec) == (
        f"cannot resume into {spec.out}: committed part {parts[2]} has SHA-256 "
        f"{sha256_of(victim)}, but the journal recorded {recorded}; the file was "
        "changed outside the export, so the folder's data is no longer what was "
        "committed. Export again into a new folder"
    )


@pytest.mark.parametrize(
    "extra",
    ["database=1/day=2026-12-04/part-extra-000999.parquet", "copy.parquet"],
)
async def test_a_data_file_no_commit_names_refuses_a_resume(
    client, tmp_path, extra
) -> None:
    spec, parts = await exported(client, tmp_path)
    shutil.copy(spec.out / parts[0], spec.out / extra)

    assert await refusal(client, spec) == (
        f"cannot resume into {spec.out}: it holds 1 data file(s) that no commit of "
        f"its journal names, first {extra}; readers would take their points as part "
        "of the export. Move them out of the folder, then resume"
    )


async def test_files_readers_skip_are_left_alone(client, simulator, tmp_path) -> None:
    spec, parts = await exported(client, tmp_path)
    (spec.out / "_notes.txt").write_text("not data")
    (spec.out / ".hidden").mkdir()
    shutil.copy(spec.out / parts[0], spec.out / ".hidden" / "part-copy.parquet")

    report = await export(client, spec, resume=True)

    assert report.complete
    assert report.points_this_run == 0
    assert_exact(read_dataset(spec.out), await expected_for(client, simulator, spec))


async def test_a_journal_without_sizes_resumes_checking_presence_only(
    client, simulator, tmp_path, caplog
) -> None:
    spec, parts = await exported(client, tmp_path)
    _drop_checks_from_journal(spec.out / JOURNAL)
    with (spec.out / parts[0]).open("ab") as handle:
        handle.write(b"unnoticed")  # unnoticed without a recorded size

    with caplog.at_level(logging.WARNING, logger="powerp_async.export"):
        report = await export(client, spec, resume=True)

    assert read_manifest(spec.out).checks == {}
    assert report.complete
    assert report.unchecked_parts == len(parts)
    assert summary(report).splitlines()[-1] == (
        f"{plural(len(parts), 'file')} committed by a version that recorded no "
        "sizes or checksums: a resume checks only that they exist"
    )
    assert caplog.messages == [
        f"{len(parts)} of {len(parts)} committed parts in {spec.out} were written "
        "by a version that did "
        "not record sizes and checksums: they are checked for presence only"
    ]


def _drop_checks_from_journal(path) -> None:
    """Rewrite the journal as versions before sizes, checksums, counts of dropped
    points and checks of each line wrote it."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        record.pop("sizes", None)
        record.pop("sha256", None)
        record.pop("dropped", None)
        record.pop("check", None)
    path.write_text("".join(json.dumps(record) + "\n" for record in records))


def test_a_malformed_size_is_named(tmp_path) -> None:
    header = {"kind": "header", "version": 1, "parameters": {}, "signals": []}
    commit = {
        "kind": "commit",
        "parts": ["a.parquet"],
        "units": [],
        "points": 0,
        "empty": [],
        "sizes": [-1],
        "sha256": ["0" * 64],
    }
    (tmp_path / JOURNAL).write_text(
        json.dumps(header) + "\n" + json.dumps(commit) + "\n"
    )

    with pytest.raises(ConfigurationError) as caught:
        read_manifest(tmp_path)

    assert str(caught.value) == (
        f"{tmp_path / JOURNAL}, line 2, is unreadable (not a valid commit record): "
        "the journal was damaged or edited outside the export, so the folder cannot "
        "be resumed"
    )


def test_the_command_refuses_a_changed_part_in_one_line(
    tmp_path, monkeypatch, capsys
) -> None:
    out = tmp_path / "out"
    export_one = [
        *("export", "--out", str(out), "--window", "10s"),
        *("--start", START.isoformat(), "--end", ANCHOR.isoformat()),
        *("--database", "1", "--index", "1"),
    ]
    with command_against_simulator(monkeypatch):
        made = cli.main(export_one)
        part = read_manifest(out).parts[0]
        recorded = (out / part).stat().st_size
        with (out / part).open("r+b") as handle:
            handle.truncate(100)
        capsys.readouterr()
        refused = cli.main(["export", "--out", str(out), "--resume"])

    assert (made, refused) == (0, 2)
    assert capsys.readouterr().err == (
        f"powerp: error: cannot resume into {out}: committed part {part} is 100 "
        f"bytes, but the journal recorded {recorded:,}; the file was changed outside "
        "the export, so the folder's data is no longer what was committed. Export "
        "again into a new folder\n"
    )
