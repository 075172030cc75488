"""The command with a standard stream closed: started closed, or closed by its
reader while it runs."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from powerp_async import ExportReport

from .conftest import ANCHOR
from .processes import environment

RANGE = (
    *("--start", (ANCHOR - timedelta(minutes=30)).isoformat()),
    *("--end", ANCHOR.isoformat()),
)
EXPORT = ("export", "--database", "1", "--index", "1", "--window", "1m", *RANGE)


def test_an_export_started_with_stderr_closed_runs_and_reports(
    served: str, tmp_path
) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-m", "powerp_async", *EXPORT, "--out", str(out)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        env=environment(served),
        timeout=120,
        check=False,
        preexec_fn=_close_stderr,
    )

    assert done.returncode == 0
    assert done.stdout.startswith("Export complete: 30 points in 1 file, 2/2 blocks\n")
    assert ExportReport.read(out).complete


def _close_stderr() -> None:
    os.close(2)


def test_a_reader_gone_leaves_an_export_complete_and_quiet(
    served: str, tmp_path
) -> None:
    out = tmp_path / "out"
    done = _with_stdout_closed([*EXPORT, "--out", str(out)], served)

    assert (done.returncode, done.stderr) == (0, "")
    assert ExportReport.read(out).complete


def test_a_query_whose_reader_is_gone_stops_quietly_with_141(served: str) -> None:
    query = [
        *("query", "--database", "1", "--index", "1", "--window", "1s"),
        *("--start", (ANCHOR - timedelta(minutes=20)).isoformat()),
        *("--end", ANCHOR.isoformat()),
    ]
    done = _with_stdout_closed(query, served)

    assert (done.returncode, done.stderr) == (141, "")


def _with_stdout_closed(
    arguments: list[str], base_url: str
) -> subprocess.CompletedProcess[str]:
    """Run the command with a stdout pipe whose reading end is closed at once."""
    command = [sys.executable, "-m", "powerp_async", *arguments]
    with subprocess.Popen(
        command,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment(base_url),
    ) as process:
        assert process.stdout is not None
        process.stdout.close()
        _, errors = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, None, errors)
