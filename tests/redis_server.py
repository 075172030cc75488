"""Redis for the shared pacer's tests: the server CI starts, or one of a test's own.

``.ci/run`` starts a Redis server on a free loopback port and names it in
``POWERP_TEST_REDIS_URL``; tests that need Redis skip only when that variable is unset,
so a developer without Redis still runs the rest. A test that kills Redis starts its
own with :func:`own_redis_server`, from the same ``redis-server`` program.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

import pytest

REDIS_URL_VARIABLE: Final = "POWERP_TEST_REDIS_URL"
READY_TIMEOUT_S: Final = 10.0


def redis_url_or_skip() -> str:
    """The address of the tests' Redis server; the test is skipped without one."""
    url = os.environ.get(REDIS_URL_VARIABLE)
    if not url:
        pytest.skip(
            f"needs a Redis server: set {REDIS_URL_VARIABLE}=redis://127.0.0.1:PORT/0 "
            "(.ci/run starts one)"
        )
    return url


def fresh_key() -> str:
    """A tenant key no other test uses, so tests share one server safely."""
    return f"test-{uuid.uuid4().hex}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def own_redis_server(
    port: int | None = None, password: str | None = None, *options: str
) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A Redis server of the test's own on loopback, no persistence, given more
    ``options``; yields its process and port, and stops it by its process id (if the
    test has not)."""
    program = shutil.which("redis-server")
    assert program, f"{REDIS_URL_VARIABLE} is set, so redis-server must be on PATH"
    port = port or free_port()
    with tempfile.TemporaryDirectory(prefix="powerp-redis-") as folder:
        server = start_redis(program, port, folder, password, *options)
        try:
            yield server, port
        finally:
            server.kill()
            server.wait(timeout=10)


def start_redis(
    program: str, port: int, folder: str, password: str | None = None, *options: str
) -> subprocess.Popen[bytes]:
    """``redis-server`` on ``port``, answering before this returns."""
    command = [program, "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--appendonly", "no", "--dir", folder]
    if password is not None:
        command += ["--requirepass", password]
    command += options
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _answers(port):
        assert server.poll() is None, f"redis-server exited with {server.returncode}"
        assert time.monotonic() < deadline, f"redis-server not ready on port {port}"
        time.sleep(0.02)

    return server


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
            connection.sendall(b"PING\r\n")
            # PONG, or NOAUTH from a server that wants a password: either way it is up.
            return connection.recv(16).startswith((b"+PONG", b"-NOAUTH"))
    except OSError:
        return False
