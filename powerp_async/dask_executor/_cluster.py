"""The clusters `powerp export` starts or joins: --dask-local, --dask-scheduler."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from distributed import Client, LocalCluster

from ..errors import ConfigurationError

logger = logging.getLogger("powerp_async.dask_executor")

LOOPBACK: Final = "127.0.0.1"


@contextmanager
def local_cluster(workers: int) -> Iterator[Client]:
    """``workers`` worker processes of one thread each on this machine, listening on
    loopback only, with no dashboard; they inherit this process's environment.

    The scheduler's small HTTP server of status routes (health, metrics) listens on
    a free loopback port: distributed starts it whatever it is told.
    """
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host=LOOPBACK,
            worker_dashboard_address=None,
            # The scheduler serves its status routes whatever is asked; without an
            # address it takes port 8787, and with one like ":8787" every interface.
            scheduler_kwargs={"dashboard": False, "dashboard_address": f"{LOOPBACK}:0"},
        ) as cluster,
        Client(cluster) as client,
    ):
        logger.info("started a local Dask cluster of %d workers", workers)
        yield client


CONNECT_TIMEOUT_S: Final = 10.0
"""How long a scheduler has to answer; a port that is not one's never does."""

WORKERS_TIMEOUT_S: Final = 30.0
"""How long a scheduler has to show at least one worker before the export starts."""


@contextmanager
def scheduler_client(address: str) -> Iterator[Client]:
    """A client of the running cluster whose scheduler listens at ``address``, once
    it has a worker; raises :class:`ConfigurationError` if none comes in time."""
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise ConfigurationError(
            f"--dask-scheduler: no Dask scheduler answered at {address} within "
            f"{CONNECT_TIMEOUT_S:g} s ({type(error).__name__})"
        ) from None

    with client:
        _wait_for_a_worker(client, address)
        logger.info("connected to the Dask scheduler at %s", address)
        yield client


def _wait_for_a_worker(client: Client, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except TimeoutError:
        raise ConfigurationError(
            f"--dask-scheduler: the Dask scheduler at {address} had no worker "
            f"within {WORKERS_TIMEOUT_S:g} s; start workers for it, then run again"
        ) from None
