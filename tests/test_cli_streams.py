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
    done = _with_closed(2, [*EXPORT, "--out", str(out)], served)

    assert done.returncode == 0
    assert done.stdout.startswith("Export complete: 30 points in 1 file, 2/2 blocks\n")
    assert ExportReport.read(out).complete


def _with_closed(
    descriptor: int, arguments: list[str], base_url: str
) -> subprocess.CompletedProcess[str]:
    """Run the command with a standard stream (1 or 2) closed as it starts."""
    return subprocess.run(
        [sys.executable, "-m", "powerp_async", *arguments],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=environment(base_url),
        timeout=120,
        check=False,
        preexec_fn=lambda: os.close(descriptor),
    )


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


def test_a_reader_that_stops_after_a_line_of_a_long_listing_ends_it_with_141(
    served: str,
) -> None:
    # The listing runs well past what a pipe holds: the part the pipe took must not
    # pass for the whole once the reader is gone (powerp measurements | head -1).
    done = _with_stdout_closed(["measurements"], served, after_lines=1)

    assert done.stdout.split() == [
        *("databaseId", "index", "name", "aggregation", "dataType", "unit"),
        "firstDataPoint",
    ]
    assert (done.returncode, done.stderr) == (141, "")


def _to_full_disk(
    arguments: list[str], base_url: str
) -> subprocess.CompletedProcess[str]:
    """Run the command with its standard output on a disk that is full."""
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [sys.executable, "-m", "powerp_async", *arguments],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=environment(base_url),
            timeout=120,
            check=False,
        )


def _with_stdout_closed(
    arguments: list[str], base_url: str, *, after_lines: int = 0
) -> subprocess.CompletedProcess[str]:
    """Run the command with a stdout pipe whose reading end is closed at once, or
    once ``after_lines`` lines were read (its ``stdout``)."""
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
        read = "".join(process.stdout.readline() for _ in range(after_lines))
        process.stdout.close()
        _, errors = process.communicate(timeout=120)
    return subprocess.CompletedProcess(command, process.returncode, read, errors)


def test_an_export_whose_summary_meets_a_full_disk_keeps_its_outcome(
    served: str, tmp_path
) -> None:
    out = tmp_path / "out"
    done = _to_full_disk([*EXPORT, "--out", str(out)], served)

    assert done.returncode == 0
    assert done.stderr == (
        "powerp: the summary could not be written to standard output (No space left "
        "on device); _report.json holds it\n"
    )
    assert ExportReport.read(out).complete


def test_a_listing_with_nowhere_to_go_is_a_failure_naming_standard_output(
    served: str,
) -> None:
    to_full = _to_full_disk(["measurements"], served)
    closed = _with_closed(1, ["measurements"], served)

    assert (to_full.returncode, to_full.stderr) == (
        1,
        "powerp: error: could not write to standard output: No space left on device\n",
    )
    assert (closed.returncode, closed.stderr) == (
        1,
        "powerp: error: could not write to standard output: it was closed\n",
    )


def test_stop_signals_after_the_command_ended_change_nothing() -> None:
    # The second of a supervisor's pair may land while the interpreter shuts down.
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import signal, sys\n"
            "from powerp_async._launch import main\n"
            "code = main(['measurements', '--format', 'nope'])\n"
            "print([signal.getsignal(s) == signal.SIG_IGN for s in "
            "(signal.SIGINT, signal.SIGTERM, signal.SIGHUP)])\n"
            "sys.exit(code)\n",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert (done.returncode, done.stdout) == (2, "[True, True, True]\n")
