"""The clusters `powerp export` starts or joins: --dask-local, --dask-scheduler."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Final

from distributed import Client, LocalCluster

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


@contextmanager
def scheduler_client(address: str) -> Iterator[Client]:
    """A client of the running cluster whose scheduler listens at ``address``."""
    with Client(address) as client:
        logger.info("connected to the Dask scheduler at %s", address)
        yield client
