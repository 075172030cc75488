"""The hot-path benchmark's flush: what it times is what an export writes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pyarrow.dataset as ds

from benchmarks import hotpath


def test_a_flush_is_decoded_and_staged_point_for_point(tmp_path: Path) -> None:
    answers = asyncio.run(hotpath.fetch_answers("1s", 2))
    ways = hotpath.flush_ways(answers, tmp_path)
    names = list(ways)

    held = ways[names[0]]()
    decoded = ways[names[1]]()
    staged = ways[names[2]]()

    assert names[0] == "orjson.loads of every answer, all held (floor)"
    points = [len(answer) for answer in held]
    assert [batch.num_rows for batch in decoded] == points
    assert answers[1].block.end_us == answers[0].block.start_us
    files = [tmp_path / part.temporary for part in staged]
    assert ds.dataset(files, format="parquet").count_rows() == sum(points)
    assert hotpath.answers_per_flush(35_778) == 14
