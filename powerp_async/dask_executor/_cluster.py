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
    loopback only, with no dashboard; they inherit this process's environment."""
    with (
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host=LOOPBACK,
            dashboard_address=None,
            worker_dashboard_address=None,
            # dashboard_address=None alone still serves one on the default port.
            scheduler_kwargs={"dashboard": False},
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
