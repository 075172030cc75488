"""``powerp export --dask-local N`` and ``--dask-scheduler ADDRESS``.

The cluster is started (or joined) before the export's event loop runs, and its
workers get their credentials from their environment: for ``--dask-local`` this
process puts the settings it resolved (from the environment, a ``--config`` file or
``--demo``) into its own environment before starting them, so they inherit it and
nothing secret is passed as an argument. Workers of ``--dask-scheduler`` must have
``POWERP_CLIENT_ID`` and ``POWERP_CLIENT_SECRET`` in theirs: each is asked before the
export's folder is made, so a refusal leaves nothing to resume.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from .config import ENV_BASE_URL, ENV_CLIENT_ID, ENV_CLIENT_SECRET, ClientConfig
from .errors import ConfigurationError

if TYPE_CHECKING:
    from distributed import Client

    from ._export import Executor
    from .dask_executor import WorkerSettings


MAX_LOCAL_WORKERS: Final = 256
SCHEDULER_SCHEMES: Final = ("tcp", "tls")
MAX_PORT: Final = 65535


def add_dask_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--dask-local",
        type=_worker_count,
        metavar="N",
        help="fetch on N local worker processes (a Dask cluster on loopback; needs "
        "the dask extra)",
    )
    group.add_argument(
        "--dask-scheduler",
        type=_scheduler_address,
        metavar="ADDRESS",
        help="fetch on the workers of this Dask scheduler (tcp://HOST:PORT); they "
        "need the export folder on a shared filesystem and the credentials in "
        "their environment",
    )


def wants_dask(options: argparse.Namespace) -> bool:
    return bool(getattr(options, "dask_local", None)) or _scheduler(options) is not None


def check_dask_installed(options: argparse.Namespace) -> None:
    """Fail before anything starts if a Dask option is given without the extra, or
    with --demo on a cluster elsewhere."""
    if not wants_dask(options):
        return

    if getattr(options, "demo", False) and _scheduler(options) is not None:
        # The demo server listens on this machine's loopback, and the workers of
        # another cluster would sign in with their own credentials, not the demo's.
        raise ConfigurationError(
            "--demo works with --dask-local, not --dask-scheduler: the demo server "
            "listens on this machine's loopback only"
        )

    try:
        import powerp_async.dask_executor  # noqa: F401
    except ImportError as error:
        flag = "--dask-local" if options.dask_local else "--dask-scheduler"
        _, _, rest = str(error).partition(": ")
        raise ConfigurationError(f"{flag}: {rest or error}") from None


@contextlib.contextmanager
def dask_executor(
    options: argparse.Namespace, config: ClientConfig
) -> Iterator[Executor | None]:
    """The executor the options ask for, its cluster running; None for the local
    engine."""
    if options.dry_run or not wants_dask(options):
        yield None
        return

    from .dask_executor import (
        DaskExecutor,
        WorkerSettings,
        local_cluster,
        scheduler_client,
    )

    # What the workers cannot be given, or cannot find in their environment, is
    # refused here, before the export's folder is made, so the corrected command
    # runs as a fresh export.
    settings = WorkerSettings.from_config(config)
    _warn_about_rates(config)
    address = _scheduler(options)
    if address is not None:
        with scheduler_client(address) as client:
            _check_workers(client, settings, "--dask-scheduler")
            yield DaskExecutor(client)
        return

    _export_credentials(config)
    # Dask logs to stderr through a handler of its own, warnings and up; passed on
    # to the command's handler as well, its every step would show there.
    logging.getLogger("distributed").propagate = False
    executor: DaskExecutor | None = None
    try:
        with local_cluster(options.dask_local) as client:
            _check_workers(client, settings, "--dask-local")
            executor = DaskExecutor(client)
            yield executor
    finally:
        if executor is not None:
            # The cluster and its workers are gone: nothing writes any more.
            executor.discard_abandoned_parts()


def _check_workers(client: Client, settings: WorkerSettings, flag: str) -> None:
    """Ask every worker whether it can fetch; a refusal names the option that chose
    them."""
    from .dask_executor import check_workers

    try:
        check_workers(client, settings)
    except ConfigurationError as error:
        raise ConfigurationError(f"{flag}: {error}") from None


def _export_credentials(config: ClientConfig) -> None:
    """Put the resolved settings where the local workers, started next, find them."""
    os.environ[ENV_CLIENT_ID] = config.client_id
    os.environ[ENV_CLIENT_SECRET] = config.client_secret
    os.environ[ENV_BASE_URL] = config.base_url


def _warn_about_rates(config: ClientConfig) -> None:
    """Say on stderr, ``-v`` or not, that a fixed rate is each worker's own: the run
    may send several times what the user named."""
    if not config.adaptive and config.rate_backend is None:
        print(
            f"powerp: warning: --fixed-rate without --rate-backend: each Dask worker "
            f"sends {config.max_rate:g} requests per second on its own; give "
            "--rate-backend to share one budget",
            file=sys.stderr,
        )


def _scheduler(options: argparse.Namespace) -> str | None:
    address: str | None = getattr(options, "dask_scheduler", None)
    return address


def _scheduler_address(text: str) -> str:
    """An argparse type: a scheduler's address, ``[tcp://|tls://]HOST:PORT``."""
    scheme, separator, rest = text.partition("://")
    if not separator:
        scheme, rest = "tcp", text

    host, colon, port = rest.rpartition(":")
    if scheme not in SCHEDULER_SCHEMES or not colon or not host or not _port(port):
        raise argparse.ArgumentTypeError(
            f"expected a scheduler address like tcp://HOST:PORT, got {text!r}"
        )
    return text


def _port(text: str) -> bool:
    return text.isdigit() and 1 <= int(text) <= MAX_PORT


def _worker_count(text: str) -> int:
    """An argparse type: a number of worker processes."""
    try:
        count = int(text)
    except ValueError:
        count = 0

    if not 1 <= count <= MAX_LOCAL_WORKERS:
        raise argparse.ArgumentTypeError(
            f"expected 1 to {MAX_LOCAL_WORKERS} worker processes, got {text!r}"
        )
    return count
