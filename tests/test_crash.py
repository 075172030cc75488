"""Exports killed outright at random moments resume to exactly the same data."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest

from powerp_async.models import POINT_SCHEMA

from .helpers import actual_points
from .processes import environment, powerp

KILLS = 4
RANGE = ("--start", "2026-12-04T10:50:00Z", "--end", "2026-12-04T11:30:00Z")
SELECTION = ("--database", "1", "--database", "3", "--window", "5s")


def read(folder: Path) -> pa.Table:
    dataset = ds.dataset(folder, format="parquet", partitioning="hive")
    return dataset.to_table(columns=POINT_SCHEMA.names)


def test_sigkill_at_random_moments_then_resume_gives_the_same_data(
    served: str, tmp_path: Path
) -> None:
    env = environment(served)
    reference = tmp_path / "reference"
    done = powerp("export", "--out", str(reference), *RANGE, *SELECTION, env=env)
    assert done.returncode == 0, done.stderr

    crashed = tmp_path / "crashed"
    fresh = ("export", "--out", str(crashed), *RANGE, *SELECTION)
    resume = ("export", "--out", str(crashed), "--resume")
    rng = random.Random(20261204)
    killed = 0
    for _ in range(KILLS):
        # Killed before it wrote its journal, a run leaves nothing to resume.
        started = (crashed / "_manifest.journal").exists()
        after_s = rng.uniform(0.8, 3.0)
        killed += _run_and_kill(resume if started else fresh, env, after_s)

    finished = powerp(*resume, env=env)

    assert killed >= 3
    assert finished.returncode == 0, finished.stderr
    expected = actual_points(read(reference))  # also asserts no duplicates
    assert actual_points(read(crashed)) == expected
    assert len(expected) > 200_000
    assert not list(crashed.rglob("*.tmp"))


def _run_and_kill(
    arguments: tuple[str, ...], env: dict[str, str], after_s: float
) -> bool:
    """Start ``powerp ARGS`` and SIGKILL it after ``after_s``; False if it had ended."""
    command = [
        *(sys.executable, "-m", "powerp_async", *arguments),
        *("--quiet", "--flush-points", "20000"),
    ]
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    time.sleep(after_s)
    if child.poll() is None:
        child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    assert child.stderr is not None
    assert child.returncode in (0, -signal.SIGKILL), child.stderr.read()
    child.stderr.close()
    return child.returncode == -signal.SIGKILL


def test_ctrl_c_on_a_demo_export_then_resume_as_told(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}
    command = [
        *(sys.executable, "-m", "powerp_async", "export", "--demo", "--quiet"),
        *("--since", "30m", "--database", "1", "--out", str(out)),
        *("--fixed-rate", "10", "--flush-points", "5000"),
    ]
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    # Interrupted once a part is committed, well before the end of a job that
    # takes several seconds at 10 requests per second, however fast the machine.
    while not list(out.rglob("*.parquet")) and child.poll() is None:
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=60)

    assert child.returncode == 130, stderr
    assert stderr.strip().endswith(
        "--resume --demo --fixed-rate 10 --flush-points 5000 --quiet"  # as it went
    ), stderr
    assert "Traceback" not in stderr
    saved = read(out).num_rows
    resume = stderr.strip().split("Resume with: ")[1].split()[1:]

    finished = powerp(*resume, env=env)

    assert finished.returncode == 0, finished.stderr
    report = json.loads((out / "_report.json").read_text())
    assert report["complete"] is True
    assert 0 < saved < report["points"] == read(out).num_rows
    assert report["points"] == len(actual_points(read(out)))  # no duplicates


def _demo_export(
    out: Path, env: dict[str, str], *, ignore_ctrl_c: bool = False
) -> tuple[subprocess.Popen[str], int]:
    """A slow ``powerp -v export --demo`` under way, ignoring Ctrl-C if asked (as a
    script's background job does); it and its simulator's pid."""
    command = [
        *(sys.executable, "-m", "powerp_async", "-v", "export", "--demo", "--quiet"),
        *("--since", "30m", "--database", "1", "--out", str(out)),
        *("--fixed-rate", "20", "--flush-points", "1"),
    ]
    ignored = signal.SIG_IGN if ignore_ctrl_c else signal.SIG_DFL
    child = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, ignored),
    )
    assert child.stderr is not None
    for line in child.stderr:
        if "demo simulator serving" in line:
            return child, int(line.rsplit("(pid ", 1)[1].rstrip(")\n"))

    raise AssertionError(f"no simulator started: {child.wait()}")


def _ended(pid: int, deadline_s: float = 15.0) -> bool:
    """Whether process ``pid`` ends (or is a zombie nobody reaps) in ``deadline_s``."""
    stop = time.monotonic() + deadline_s
    while time.monotonic() < stop:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.05)
    return False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.parametrize(
    ("stop", "code", "how"),
    [(signal.SIGTERM, 143, "terminated"), (signal.SIGHUP, 129, "hung up")],
)
def test_a_stop_signal_on_a_demo_export_saves_tells_and_ends_its_simulator(
    tmp_path: Path, stop: signal.Signals, code: int, how: str
) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}
    child, simulator = _demo_export(out, env)
    while not list(out.rglob("*.parquet")) and child.poll() is None:
        time.sleep(0.05)  # until a part is committed

    child.send_signal(stop)
    _, stderr = child.communicate(timeout=60)

    assert child.returncode == code, stderr
    assert stderr.strip().splitlines()[-1] == (
        f"powerp: {how}; every block fetched whole so far is saved. Resume with: "
        f"powerp export --out {out} --resume --demo --fixed-rate 20 --flush-points 1 "
        "--quiet"
    )
    assert "Traceback" not in stderr
    assert _ended(simulator)
    assert read(out).num_rows > 0
    assert not list(out.rglob("*.tmp"))


def test_a_sigterm_to_a_background_export_that_ignores_ctrl_c_saves_and_tells(
    tmp_path: Path,
) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}
    child, _ = _demo_export(out, env, ignore_ctrl_c=True)
    while not list(out.rglob("*.parquet")) and child.poll() is None:
        time.sleep(0.05)  # until a part is committed

    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=60)

    assert child.returncode == 143, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("powerp: terminated; every block fetched whole so far is")
    assert "Traceback" not in stderr
    assert "KeyboardInterrupt" not in stderr


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_demo_simulator_ends_with_its_parent_even_on_sigkill(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}
    child, simulator = _demo_export(tmp_path / "demo", env)

    child.send_signal(signal.SIGKILL)
    child.communicate(timeout=60)

    assert child.returncode == -signal.SIGKILL
    assert _ended(simulator)
