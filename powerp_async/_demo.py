"""The embedded simulator of ``--demo``, run in a child process.

A child process gives the simulator a core of its own, so a demo export measures the
client rather than a server sharing its event loop. It listens on a free loopback port
and prints its base URL on its first line, which is all the parent needs. Its standard
input is a pipe from the parent, and it stops when that pipe closes: when the parent
ends, however it ends (SIGKILL included), the simulator ends too.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Final

from .errors import PowerPError

logger = logging.getLogger("powerp_async.demo")

DEMO_CLIENT_ID: Final = "demo"
DEMO_CLIENT_SECRET: Final = "demo-secret"  # the simulator's public demo credential
SECRET_NAME: Final = "POWERP_CLIENT_SECRET"
READY_PREFIX: Final = "PowerP simulator serving "
START_TIMEOUT_S: Final = 30.0


@contextmanager
def demo_simulator(*extra_args: str) -> Iterator[str]:
    """Start ``powerp simulate`` on a free loopback port; yields its base URL."""
    command = [
        sys.executable,
        "-m",
        "powerp_async.simulator",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--stop-when-stdin-closes",
        # Named, so that a POWERP_CLIENT_SECRET of the user's is not taken instead.
        *("--client-secret", DEMO_CLIENT_SECRET),
        *extra_args,
    ]
    # Its log goes to a file, not a pipe: a full pipe nobody reads would stall it.
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env=demo_environment(),
        )
        try:
            yield _await_ready(child, log)
        finally:
            _stop(child)


def demo_environment() -> dict[str, str]:
    """This process's environment without the user's client secret, which the demo
    has no use for: a child's environment may be read by its owner's other
    processes (``/proc/PID/environ``) and lasts as long as it runs."""
    return {name: value for name, value in os.environ.items() if name != SECRET_NAME}


def _await_ready(child: subprocess.Popen[str], log: IO[str]) -> str:
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if not line.startswith(READY_PREFIX):
        _stop(child)
        log.seek(0)
        detail = log.read()[-500:].strip()
        raise PowerPError(f"the demo simulator did not start: {line or detail}")
    base_url = line[len(READY_PREFIX) :]
    logger.info("demo simulator serving %s (pid %d)", base_url, child.pid)
    return base_url


def _stop(child: subprocess.Popen[str]) -> None:
    for pipe in (child.stdin, child.stdout):
        if pipe is not None:
            pipe.close()

    if child.poll() is None:
        child.terminate()
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
