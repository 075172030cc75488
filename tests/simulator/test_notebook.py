"""The reference notebook, every code cell unchanged, against the simulator."""

from __future__ import annotations

import asyncio
import math
import os
import re
import sys
from pathlib import Path

import pytest

from powerp_async.simulator import Simulator, SimulatorSettings

NOTEBOOK = Path(__file__).parent.parent / "fixtures" / "reference_notebook.txt"
CELL_START = "In [None]:"
MARKDOWN_HEADING = re.compile(r"#{2,} ")


def code_cells(text: str) -> list[str]:
    """The code after each ``In [None]:`` up to the next markdown heading or cell."""
    cells: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.strip() == CELL_START:
            current = []
            cells.append(current)
        elif MARKDOWN_HEADING.match(line):
            current = None
        elif current is not None:
            current.append(line)

    return ["\n".join(lines).strip() + "\n" for lines in cells]


def test_the_notebook_has_six_code_cells() -> None:
    cells = code_cells(NOTEBOOK.read_text(encoding="utf-8"))

    assert len(cells) == 6
    assert cells[0].startswith("import os")
    assert cells[-1].startswith("# Replace with the indexes you want to inspect")


@pytest.mark.timeout(90)
async def test_every_code_cell_runs_unchanged(tmp_path) -> None:
    script = tmp_path / "notebook.py"
    script.write_text("\n".join(code_cells(NOTEBOOK.read_text(encoding="utf-8"))))
    settings = SimulatorSettings(client_id="notebook", client_secret="nb-secret-1")

    async with Simulator(settings) as sim:
        env = {
            **os.environ,
            "POWERP_CLIENT_ID": "notebook",
            "POWERP_CLIENT_SECRET": "nb-secret-1",
            "POWERP_API_BASE_URL": sim.base_url + "/",
            # datetime.utcnow() is deprecated from Python 3.12; the notebook uses it.
            "PYTHONWARNINGS": "ignore::DeprecationWarning",
        }
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            env=env,
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(child.communicate(), timeout=80)
        queries = sim.stats.requests.get("query", {})

    lines = out.decode().splitlines()
    assert (child.returncode, err.decode()) == (0, "")
    assert lines[:3] == [
        "Authenticating...",
        "Authenticated! Token length: 43",
        "Configuration ready; fetching metadata...",
    ]
    assert lines.count(f"Total measurements: {len(sim.tenant.signals)}") == 2

    groups = _groups(sim)
    headers = [line for line in lines if line.startswith("Database ")]
    assert headers == [
        f"Database {db} | Aggregation {agg or 'last'} | Signals {n}"
        for (db, agg), n in groups.items()
    ]
    blocks = [line for line in lines if line.startswith("- Block size ")]
    assert len(blocks) == sum(math.ceil(n / 10) for n in groups.values()) == 112
    assert queries == {200: len(blocks) + 1}

    assert "Querying Database 1 with Agg mean" in lines
    final = [line for line in lines if line.startswith("Requested indexes")]
    received = re.fullmatch(
        r"Requested indexes \['1', '2'\] -> received (\d+) data points", final[0]
    )
    assert received is not None
    points = int(received.group(1))
    assert points in (9000, 9002)  # 15 min of 200 ms windows, plus a partial one each
    assert points == len([line for line in lines if line.startswith("idx=")])


def _groups(sim: Simulator) -> dict[tuple[int, str | None], int]:
    groups: dict[tuple[int, str | None], int] = {}
    for spec in sim.tenant.signals:
        key = (spec.database_id, spec.default_agg)
        groups[key] = groups.get(key, 0) + 1
    return groups
