"""The product as separate processes: ``powerp simulate`` and ``powerp`` commands."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

from powerp_async._time import format_wire, to_epoch_us

SECRET = "cli-secret-5a4b3c"


def powerp(
    *args: str, env: dict[str, str] | None = None, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run ``powerp ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "powerp_async", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env=env,
        check=False,
    )


@contextmanager
def simulator_process(anchor: datetime, *options: str) -> Iterator[str]:
    """``powerp simulate [OPTIONS]`` in its own process; yields its base URL."""
    command = [
        *(sys.executable, "-m", "powerp_async", "simulate", "--port", "0"),
        *("--client-id", "cli"),
        *("--anchor", format_wire(to_epoch_us(anchor)), *options),
    ]
    secret = {**os.environ, "POWERP_CLIENT_SECRET": SECRET}  # never on the command line
    server = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=secret)
    assert server.stdout is not None
    try:
        line = server.stdout.readline().strip()
        assert line.startswith("PowerP simulator serving http://127.0.0.1:")
        yield line.rsplit(" ", 1)[1]
    finally:
        server.terminate()
        server.wait(timeout=10)
        server.stdout.close()


def environment(base_url: str, secret: str = SECRET) -> dict[str, str]:
    """This process's environment, pointed at ``base_url`` and no other server."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}
    return {
        **clean,
        "POWERP_CLIENT_ID": "cli",
        "POWERP_CLIENT_SECRET": secret,
        "POWERP_API_BASE_URL": base_url,
    }
