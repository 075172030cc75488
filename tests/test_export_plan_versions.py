"""Blocks are planned even in size; a folder planned otherwise resumes as planned."""

from __future__ import annotations

import json

import pytest

from powerp_async import export
from powerp_async._export import _manifest, _open
from powerp_async._export._manifest import read_manifest
from powerp_async.errors import ConfigurationError, FetchFailedError
from powerp_async.planning import plan_blocks

from .helpers import assert_exact
from .test_export import _matching, read_dataset
from .test_export_failures import FailingQueries
from .test_export_recovery import expected_for, spec_for

JOURNAL = _manifest.MANIFEST_NAME
BLOCK_SIZE = 8
"""Groups of 10 and 11 signals: blocks of 8 and the rest, or of 5 and 6."""


def _filled_in_order(*args, balanced: bool = True, **options):
    """The plan of versions before blocks were balanced, whatever is asked."""
    return plan_blocks(*args, balanced=False, **options)


async def test_a_new_export_plans_even_blocks_and_says_so(client, tmp_path) -> None:
    spec = await spec_for(client, tmp_path / "out", block_size=BLOCK_SIZE)
    signals = _matching(await client.measurements(), spec)
    even = list(plan_blocks(signals, spec.time_range(), block_size=BLOCK_SIZE))

    report = await export(client, spec)

    journal = read_manifest(spec.out)
    assert report.complete
    assert journal.header["version"] == 2
    assert journal.plans_balanced
    assert set(journal.done_units) == {block.unit_id for block in even}


async def test_a_folder_planned_by_an_earlier_version_resumes_as_it_was_planned(
    client, simulator, tmp_path, monkeypatch
) -> None:
    spec = await spec_for(client, tmp_path / "out", block_size=BLOCK_SIZE)
    signals = _matching(await client.measurements(), spec)
    span = spec.time_range()
    filled = list(plan_blocks(signals, span, block_size=BLOCK_SIZE, balanced=False))
    even = {b.unit_id for b in plan_blocks(signals, span, block_size=BLOCK_SIZE)}
    doomed = [b for b in filled if b.unit_id not in even][:2]
    assert [len(b.indexes) for b in doomed] == [BLOCK_SIZE, 2]

    # As the earlier version ran it: blocks filled in order, journal version 1, and
    # two blocks that an even plan does not hold failed.
    with monkeypatch.context() as earlier:
        earlier.setattr(_manifest, "VERSION", 1)
        earlier.setattr(_open, "plan_blocks", _filled_in_order)
        FailingQueries(earlier, doomed)
        with pytest.raises(FetchFailedError):
            await export(client, spec)

    assert read_manifest(spec.out).header["version"] == 1
    queries = FailingQueries(monkeypatch, [])
    report = await export(client, spec, resume=True)

    # The two blocks it lacked, asked for as planned, and not a point twice.
    assert report.complete
    assert queries.seen == 2
    assert report.blocks_total == len(filled)
    journal = read_manifest(spec.out)
    assert set(journal.done_units) == {block.unit_id for block in filled}
    assert journal.header["version"] == 1
    assert_exact(read_dataset(spec.out), await expected_for(client, simulator, spec))


@pytest.mark.parametrize("version", [0, 3, "2", 2.0, True, None])
def test_a_journal_of_a_version_unknown_here_is_refused(tmp_path, version) -> None:
    header = {"kind": "header", "version": version, "parameters": {}, "signals": []}
    (tmp_path / JOURNAL).write_text(json.dumps(header) + "\n")

    with pytest.raises(ConfigurationError) as caught:
        read_manifest(tmp_path)

    assert str(caught.value) == (
        f"{tmp_path / JOURNAL} was written by an incompatible version (journal "
        f"version {version!r}, expected one of 1, 2)"
    )
