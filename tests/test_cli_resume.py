"""``powerp export --resume``: only the parameters the user typed are compared."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from .conftest import ANCHOR
from .processes import environment, powerp

START = ANCHOR - timedelta(minutes=40)
END = ANCHOR - timedelta(minutes=10)


def test_resume_compares_what_was_typed_and_names_it(served: str, tmp_path) -> None:
    out = tmp_path / "out"
    env = environment(served)
    made = powerp(
        *("export", "--out", str(out), "--database", "1", "--index", "1"),
        *("--window", "10s", "--start", START.isoformat(), "--end", END.isoformat()),
        env=env,
    )

    def resume(*given: str):
        return powerp("export", "--out", str(out), "--resume", *given, env=env)

    other_format = resume("--format", "csv")
    retyped = resume(
        *("--format", "parquet", "--window", "10s", "--database", "1"),
        *("--start", START.isoformat()),
    )
    other_end_and_size = resume("--end", "2026-12-04T11:55:00Z", "--block-size", "10")
    after_the_end = resume("--start", "2026-12-04T11:55:00Z")
    no_window = resume("--window", "7x")
    no_zone = resume("--tz", "Mars/Olympus")

    assert (made.returncode, retyped.returncode) == (0, 0), retyped.stderr
    assert retyped.stdout.startswith("Export complete: 180 points")
    assert_refused(
        other_format, out, "--format: recorded parquet, given csv", "--format"
    )
    assert_refused(
        other_end_and_size,
        out,
        "--end: recorded 2026-12-04T11:50:00Z, given 2026-12-04T11:55:00Z; "
        "--block-size: recorded 20, given 10",
        "--end and --block-size",
    )
    assert (after_the_end.returncode, after_the_end.stdout) == (2, "")
    assert after_the_end.stderr == (
        f"powerp: error: cannot resume into {out} with --start: the range would run "
        "from 2026-12-04T11:55:00Z (given) to 2026-12-04T11:50:00Z (recorded), which "
        "is empty; resume without it, or export into a new folder\n"
    )
    assert (no_window.returncode, no_window.stdout) == (2, "")
    assert no_window.stderr == (
        f"powerp: error: cannot resume into {out} with --window: window: invalid "
        "duration '7x': expected a number with a unit (us, ms, s, m, h, d, w), such "
        "as '200ms', '1s' or '1h30m'; resume without it, or export into a new "
        "folder\n"
    )
    assert (no_zone.returncode, no_zone.stdout) == (2, "")
    assert no_zone.stderr == (
        "powerp: error: --tz: expected an IANA time zone such as Europe/Berlin, got "
        "'Mars/Olympus'\n"
    )
    assert sorted(p.suffix for p in out.rglob("part-*")) == [".parquet"]


def assert_refused(done, out: Path, details: str, flags: str) -> None:
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"powerp: error: cannot resume into {out}: it was made with other "
        f"parameters ({details}); resume without {flags}, or export into a new "
        "folder\n"
    )


def test_a_database_or_index_typed_twice_selects_the_same(
    served: str, tmp_path
) -> None:
    out = tmp_path / "out"
    env = environment(served)
    span = ("--window", "10s", "--start", START.isoformat(), "--end", END.isoformat())
    made = powerp(
        *("export", "--out", str(out), "--database", "1", "--database", "1"),
        *("--index", "1", "--index", "1", *span),
        env=env,
    )

    resumed = powerp(
        *("export", "--out", str(out), "--resume", "--database", "1", "--index", "1"),
        env=env,
    )

    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("Export complete: 180 points")
    assert (resumed.returncode, resumed.stderr) == (0, "")
    assert resumed.stdout.startswith("Export complete: 180 points")
