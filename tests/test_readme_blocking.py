"""The README's ``blocking.export`` example, run as written against the simulator."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow.csv as pa_csv

README = Path(__file__).parent.parent / "README.md"
WINDOWS_PER_DAY = 1_440


def blocking_example() -> str:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    (example,) = [b for b in blocks if "blocking.export(config, spec)" in b]
    return example


def test_the_blocking_export_example_runs_as_written(
    powerp_simulator, tmp_path, monkeypatch, capsys
) -> None:
    config = powerp_simulator.client_config()
    monkeypatch.setenv("POWERP_CLIENT_ID", config.client_id)
    monkeypatch.setenv("POWERP_CLIENT_SECRET", config.client_secret)
    monkeypatch.setenv("POWERP_API_BASE_URL", config.base_url)
    monkeypatch.chdir(tmp_path)

    exec(compile(blocking_example(), "README.md", "exec"), {"__name__": "__main__"})

    assert capsys.readouterr().out == f"{2 * WINDOWS_PER_DAY} points, complete\n"
    parts = sorted((tmp_path / "december").rglob("part-*.csv"))
    tables = [pa_csv.read_csv(part) for part in parts]
    assert sum(t.num_rows for t in tables) == 2 * WINDOWS_PER_DAY
    assert {i for t in tables for i in t["index"].to_pylist()} == {1, 2}
