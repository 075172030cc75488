"""``powerp export --dask-local N``: worker processes that inherit the credentials."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pyarrow.dataset as ds
import pytest

from powerp_async.cli import main
from powerp_async.models import POINT_SCHEMA

from .conftest import ANCHOR
from .processes import SECRET, environment, powerp

pytest.importorskip("distributed")

RANGE = (
    *("--start", (ANCHOR - timedelta(minutes=45)).isoformat()),
    *("--end", (ANCHOR - timedelta(minutes=15)).isoformat()),
    *("--window", "5s", "--database", "2"),
)


def points(out: Path):
    table = ds.dataset(out, partitioning="hive").to_table(columns=POINT_SCHEMA.names)
    return table.sort_by([(name, "ascending") for name in POINT_SCHEMA.names[:4]])


def test_two_local_workers_export_what_one_process_does(served: str, tmp_path) -> None:
    env = environment(served)

    alone = powerp("export", "--out", str(tmp_path / "one"), "--quiet", *RANGE, env=env)
    done = powerp(
        *("export", "--out", str(tmp_path / "two"), "--dask-local", "2", *RANGE),
        env=env,
    )

    assert alone.returncode == 0, alone.stderr
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("Export complete: ")
    assert "Final pace" not in done.stdout  # the workers paced themselves
    assert SECRET not in done.stdout + done.stderr
    assert points(tmp_path / "two").equals(points(tmp_path / "one"))
    report = orjson.loads((tmp_path / "two" / "_report.json").read_bytes())
    assert report["complete"] is True
    assert report["points"] == points(tmp_path / "one").num_rows > 0


def test_a_demo_export_gives_its_workers_the_demo_credentials(tmp_path) -> None:
    out = tmp_path / "demo"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}

    done = powerp(
        *("export", "--demo", "--dask-local", "1", "--since", "3m"),
        *("--database", "1", "--out", str(out)),
        env=env,
    )

    assert done.returncode == 0, done.stderr
    report = orjson.loads((out / "_report.json").read_bytes())
    assert report["complete"] is True
    assert report["points"] > 0


def test_a_fixed_rate_without_a_backend_is_said_to_be_each_workers(capsys) -> None:
    from powerp_async._cli_dask import _warn_about_rates
    from powerp_async.config import ClientConfig

    url = "http://127.0.0.1:8765/rt-api/api"
    _warn_about_rates(ClientConfig("a", "s", base_url=url))
    _warn_about_rates(ClientConfig("a", "s", base_url=url, adaptive=False, max_rate=5))

    assert capsys.readouterr().err == (
        "powerp: warning: --fixed-rate without --rate-backend: each Dask worker sends "
        "5 requests per second on its own; give --rate-backend to share one budget\n"
    )


@pytest.mark.parametrize(
    "address", ["bogus://127.0.0.1:8786", "tcp://127.0.0.1:notaport", "127.0.0.1", ""]
)
def test_a_malformed_scheduler_address_is_a_usage_error(
    address: str, tmp_path, capsys
) -> None:
    out = tmp_path / "out"

    code = main(["export", "--out", str(out), "--dask-scheduler", address, *RANGE])

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp: error: argument --dask-scheduler: expected a scheduler address like "
        f"tcp://HOST:PORT, got {address!r} (see powerp export --help)\n"
    )
    assert not out.exists()


def test_a_demo_on_a_scheduler_elsewhere_is_refused(tmp_path, capsys) -> None:
    out = tmp_path / "out"

    code = main(
        ["export", "--demo", "--dask-scheduler", "tcp://127.0.0.1:9", "--out", str(out)]
    )

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp: error: --demo works with --dask-local, not --dask-scheduler: the "
        "demo server listens on this machine's loopback only\n"
    )
    assert not out.exists()


@pytest.fixture
def credentials(monkeypatch) -> None:
    """Credentials for the driver, and an API address where nothing listens."""
    monkeypatch.setenv("POWERP_CLIENT_ID", "tester")
    monkeypatch.setenv("POWERP_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("POWERP_API_BASE_URL", "http://127.0.0.1:9/rt-api/api")


@pytest.mark.usefixtures("credentials")
def test_a_backend_password_is_refused_before_the_folder_is_made(
    tmp_path, capsys
) -> None:
    out = tmp_path / "out"
    shared = ("--fixed-rate", "5", "--rate-backend", "redis://:hunter2@127.0.0.1:9/0")

    code = main(["export", "--out", str(out), "--dask-local", "1", *shared, *RANGE])

    error = capsys.readouterr().err
    assert code == 2
    assert "expected a URL without a password for a Dask export" in error
    assert "hunter2" not in error
    assert not out.exists()


@contextmanager
def listener(greeting: bytes = b"") -> Iterator[int]:
    """A loopback port that accepts connections, sends each ``greeting`` and then
    nothing more; yields the port."""
    with socket.create_server(("127.0.0.1", 0)) as server:
        accepted: list[socket.socket] = []

        def accept() -> None:
            with contextlib.suppress(OSError):  # the server closed on the way out
                while True:
                    connection = server.accept()[0]
                    accepted.append(connection)
                    connection.sendall(greeting)

        threading.Thread(target=accept, daemon=True).start()
        try:
            yield server.getsockname()[1]
        finally:
            server.shutdown(socket.SHUT_RDWR)
            for connection in accepted:
                connection.close()


class NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def http_server() -> Iterator[int]:
    """A plain HTTP server on a loopback port; yields the port."""
    with ThreadingHTTPServer(("127.0.0.1", 0), NotFound) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()


PROBE_TIMEOUT_S = 1.5
SILENT = (
    "no Dask scheduler answered at {} within 1.5 s; nothing was created: check the "
    "address and that the scheduler runs, then run again"
)
SPEAKS_ANOTHER_PROTOCOL = (
    "what listens at {} does not speak Dask's protocol (MemoryError); nothing was "
    "created: give the address of a Dask scheduler (usually port 8786), then run again"
)


@pytest.mark.parametrize(
    ("serving", "what"),
    [
        (listener, SILENT),
        # It waits for the end of a request line that never comes.
        (http_server, SILENT),
        # The greeting's first eight bytes, read as a frame length, ask for exabytes.
        (lambda: listener(b"SSH-2.0-OpenSSH_9.6\r\n"), SPEAKS_ANOTHER_PROTOCOL),
    ],
    ids=["silent", "http", "greeting"],
)
@pytest.mark.usefixtures("credentials")
def test_a_port_that_is_no_scheduler_is_refused_in_time(
    serving, what: str, tmp_path, capsys, monkeypatch
) -> None:
    from powerp_async.dask_executor import _cluster as cluster_module

    monkeypatch.setattr(cluster_module, "CONNECT_TIMEOUT_S", PROBE_TIMEOUT_S)
    out = tmp_path / "out"

    with serving() as port:
        address = f"tcp://127.0.0.1:{port}"
        started_s = time.monotonic()
        code = main(["export", "--out", str(out), "--dask-scheduler", address, *RANGE])
        took_s = time.monotonic() - started_s

    assert code == 2
    error = f"powerp: error: --dask-scheduler: {what.format(address)}\n"
    assert capsys.readouterr().err == error
    assert took_s < PROBE_TIMEOUT_S + 2
    assert not out.exists()


@pytest.mark.usefixtures("credentials")
def test_a_tls_scheduler_without_tls_settings_is_refused(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    address = "tls://127.0.0.1:9"

    code = main(["export", "--out", str(out), "--dask-scheduler", address, *RANGE])

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp: error: --dask-scheduler: tls://127.0.0.1:9 asks for TLS, and Dask's "
        "configuration holds no TLS settings for a client (distributed.comm.tls); "
        "nothing was created: set them, or give a tcp:// address, then run again\n"
    )
    assert not out.exists()
