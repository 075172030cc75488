"""Progress of ``powerp export`` where stderr is a log, and ``--max-outage``."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from powerp_async import _progress, cli
from powerp_async._engine import RunStats
from powerp_async._progress import ProgressLog

from .conftest import ANCHOR
from .processes import environment, powerp, simulator_process
from .redis_server import free_port

START = ANCHOR - timedelta(minutes=20)
END = ANCHOR - timedelta(minutes=10)
DATABASE_1_BLOCKS = 24  # its 470 signals in blocks of 20, one time slice


def test_a_log_gets_a_line_per_interval() -> None:
    readings = iter([0.0, 10.0, 29.9, 30.0, 45.0, 61.0])
    sink = io.StringIO()
    log = ProgressLog(sink, interval_s=30.0, clock=lambda: next(readings))
    stats = RunStats(started_at=time.monotonic() - 90, requests=3, points=9_000)
    stats.blocks_done = 3

    for _ in range(6):
        log(stats, 10)
    log.close()

    line = (
        "powerp: 90 s: 3/10 blocks  9,000 points  3 requests  100 points/s  ETA 03:30\n"
    )
    assert sink.getvalue() == line * 2


LAST_500 = (
    'the last: HTTP 500: {"error":"internal_error","message":"the query failed on '
    'the server"}'
)
"""How the outage error names what the failing simulator answers."""


@pytest.fixture(scope="module")
def failing() -> Iterator[str]:
    """A simulator whose every query fails with HTTP 500; its listing works."""
    with simulator_process(ANCHOR, "--fault-rate", "1", "--fault-mix", "500=1") as url:
        yield url


def export_against(url: str, out: Path, *extra: str):
    return powerp(
        *("export", "--out", str(out), "--database", "1", "--max-outage", "2"),
        *("--start", START.isoformat(), "--end", END.isoformat(), *extra),
        env=environment(url),
    )


def test_a_server_that_fails_everything_is_given_up_on_after_max_outage(
    failing: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    done = export_against(failing, out)

    assert done.returncode == 1
    assert done.stderr == (
        f"powerp: error: the server failed every request for 2 s ({LAST_500}); "
        "stopped after 0 "
        "blocks (0 points) were fetched. An export keeps what it fetched, to be "
        "resumed once the server is back. Resume with: powerp export --out "
        f"{out} --resume --max-outage 2\n"
    )


def test_a_log_shows_the_run_is_alive_while_it_waits(
    failing: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    for name, value in environment(failing).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(_progress, "LOG_INTERVAL_S", 0.5)

    code = cli.main(
        [
            *("export", "--out", str(tmp_path / "out"), "--database", "1"),
            *("--start", START.isoformat(), "--end", END.isoformat()),
            *("--max-outage", "2"),
        ]
    )

    *progress, error = capsys.readouterr().err.splitlines()
    assert code == 1
    assert error.startswith("powerp: error: the server failed every request for 2 s")
    # The run lasts the 2 s outage at least, so a line every 0.5 s shows up.
    assert progress
    for line in progress:
        assert re.fullmatch(
            rf"powerp: \d+ s: 0/{DATABASE_1_BLOCKS} blocks  0 points  \d+ requests  "
            r"0 points/s  ETA --:--  [0-9.]+ req/s \w+, 0.0 answered/s, "
            r"\d+ in flight \(limit \d+\)"
            r"(, circuit [\w-]+ \d+ s)?  \(0 throttled, \d+ retr(y|ies)\)",
            line,
        ), line


def test_quiet_leaves_only_the_error(failing: str, tmp_path: Path) -> None:
    done = export_against(failing, tmp_path / "out", "--quiet")

    assert done.returncode == 1
    assert done.stderr.startswith("powerp: error: the server failed every request ")
    assert done.stderr.count("\n") == 1


@pytest.mark.parametrize("given", ["0", "-3", "soon", "inf", "nan"])
def test_max_outage_must_be_positive_seconds(given: str, tmp_path: Path) -> None:
    done = powerp("export", "--out", str(tmp_path / "x"), "--max-outage", given)

    assert done.returncode == 2
    assert done.stderr == (
        f"powerp: error: argument --max-outage: expected seconds above 0, got "
        f"'{given}' (see powerp export --help)\n"
    )


def test_a_server_refusing_connections_as_the_export_starts_is_waited_for(
    tmp_path: Path,
) -> None:
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/rt-api/api"

    done = export_against(url, tmp_path / "out")

    *waits, error = done.stderr.splitlines()
    token = f"POST {url}/v1/auth/token: cannot connect (Connect call failed "
    assert done.returncode == 1
    assert error == (
        "powerp: error: the server failed every request for 2 s; stopped before "
        f"anything was fetched (last: {token}('127.0.0.1', {port}))). Run it again "
        "once the server is back"
    )
    # Each try of the listing that failed, as the run waits (the first token's own
    # retries may have spent the 2 s already).
    assert all(
        "WARNING powerp_async.export.startup: the server fails the listing (" in line
        for line in waits
    ), waits
    assert not (tmp_path / "out").exists()


def test_a_server_down_as_the_export_starts_is_given_up_on_after_max_outage(
    tmp_path: Path,
) -> None:
    outage = ("--outage-at", "0", "--outage-s", "1000")  # Retry-After: the rest

    with simulator_process(ANCHOR, *outage) as url:
        done = export_against(url, tmp_path / "out", "--dry-run")

    error = done.stderr.splitlines()[-1]
    assert done.returncode == 1
    assert error.startswith(
        "powerp: error: the server failed every request for 2 s; stopped before "
        'anything was fetched (last: token request: HTTP 503: {"error":"unavailable",'
        '"message":"the service is down for maintenance; expected back in 99'
    )
    assert error.endswith(' s"}). Run it again once the server is back')


def test_a_fixed_pace_gives_up_after_max_outage_too(
    failing: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"

    done = export_against(failing, out, "--fixed-rate", "50", "--quiet")

    assert done.returncode == 1
    assert done.stderr == (
        f"powerp: error: the server failed every request for 2 s ({LAST_500}); "
        "stopped after 0 "
        "blocks (0 points) were fetched. An export keeps what it fetched, to be "
        "resumed once the server is back. Resume with: powerp export --out "
        f"{out} --resume --fixed-rate 50 --max-outage 2 --quiet\n"
    )


def test_a_resume_whose_server_is_gone_gives_up_after_max_outage(
    tmp_path: Path,
) -> None:
    out = tmp_path / "out"
    with simulator_process(ANCHOR, "--fault-rate", "1", "--fault-mix", "500=1") as url:
        first = export_against(url, out, "--quiet")
    assert first.returncode == 1, first.stderr  # stopped, its journal written

    # The server is gone now: the first token of the resume is refused a connection.
    resumed = powerp(
        *("export", "--out", str(out), "--resume", "--max-outage", "2", "--quiet"),
        env=environment(url),
    )

    assert resumed.returncode == 1
    # The system's words for the refused connection differ from one to another.
    said, _, rest = resumed.stderr.partition(")); stopped")
    assert said.startswith(
        "powerp: error: the server failed every request for 2 s (the last: POST "
        f"{url}/v1/auth/token: cannot connect ("
    )
    assert rest == (
        " after 0 blocks (0 points) were fetched. An export keeps what it fetched, to "
        "be resumed once the server is back. Resume with: powerp export --out "
        f"{out} --resume --max-outage 2 --quiet\n"
    )


def test_a_query_given_up_on_advises_asking_again_not_resuming(failing: str) -> None:
    done = powerp(
        *("query", "--database", "1", "--index", "1", "--max-outage", "2"),
        *("--start", START.isoformat(), "--end", END.isoformat()),
        env=environment(failing),
    )

    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == (
        f"powerp: error: the server failed every request for 2 s ({LAST_500}); "
        "stopped after 0 blocks (0 points) were fetched. Ask again once the server "
        "is back\n"
    )
