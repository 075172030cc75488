"""The examples run as a user runs them, against the embedded simulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).parent.parent / "examples"


def test_notebook_tour_does_what_the_notebook_does() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}

    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "notebook_tour.py")],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "Total measurements: 1016"
    groups = [line for line in lines if line.startswith("Database ")]
    received = [line for line in lines if line.startswith("- received ")]
    assert len(groups) == len(received) >= 6
    assert all(int(line.split()[2]) > 0 for line in received)
    # 15 minutes of 200 ms windows from an unaligned start: 4,500 windows and a
    # partial one at each end, for each of the two signals (4,500 if "now" happened
    # to fall on the grid).
    chosen = re.fullmatch(
        r"Requested indexes \['1', '2'\] -> received (\d+) data points", lines[-1]
    )
    assert chosen is not None
    assert int(chosen.group(1)) in (9_000, 9_002)
    assert done.stderr == ""
