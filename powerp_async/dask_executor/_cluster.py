"""The clusters `powerp export` starts or joins: --dask-local, --dask-scheduler."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Final

from distributed import Client, LocalCluster
from distributed.comm.core import CommClosedError, connect
from distributed.security import Security

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

SCHEDULER_TYPE: Final = "Scheduler"
"""What a Dask scheduler calls itself when asked who it is."""


@contextmanager
def scheduler_client(address: str) -> Iterator[Client]:
    """A client of the running cluster whose scheduler listens at ``address``, once
    it has a worker; raises :class:`ConfigurationError` if none comes in time, or if
    what listens there is not a Dask scheduler."""
    _check_is_a_scheduler(address)
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError) as error:
        raise _no_scheduler(address, error) from None

    with client:
        _wait_for_a_worker(client, address)
        logger.info("connected to the Dask scheduler at %s", address)
        yield client


def _check_is_a_scheduler(address: str) -> None:
    """Ask what listens at ``address`` who it is, within :data:`CONNECT_TIMEOUT_S`.

    distributed's own client waits without end for the greeting of a service that
    accepts the connection and says nothing, and a service that answers in another
    protocol makes it fail in any way at all (an HTTP server's answer read as a
    frame length asks for exabytes), so a short exchange of our own comes first.
    """
    arguments = Security().get_connection_args("client")
    if address.startswith("tls://") and arguments.get("ssl_context") is None:
        raise ConfigurationError(
            f"--dask-scheduler: {address} asks for TLS, and Dask's configuration "
            "holds no TLS settings for a client (distributed.comm.tls); nothing was "
            "created: set them, or give a tcp:// address, then run again"
        )

    with ThreadPoolExecutor(1, thread_name_prefix="powerp-dask-probe") as probe:
        # A thread of its own, with a loop of its own: callers may run in a loop.
        identity_of = _identity(address, arguments, CONNECT_TIMEOUT_S)
        asking = probe.submit(asyncio.run, identity_of)
        try:
            identity = asking.result()
        except (OSError, TimeoutError) as error:
            raise _no_scheduler(address, error) from None
        except Exception as error:
            raise ConfigurationError(
                f"--dask-scheduler: what listens at {address} does not speak Dask's "
                f"protocol ({type(error).__name__}); nothing was created: give the "
                "address of a Dask scheduler (usually port 8786), then run again"
            ) from None

    kind = identity.get("type") if isinstance(identity, dict) else None
    if kind != SCHEDULER_TYPE:
        raise ConfigurationError(
            f"--dask-scheduler: what listens at {address} is a Dask "
            f"{kind or 'service'}, not a scheduler; nothing was created: give the "
            "scheduler's address (usually port 8786), then run again"
        )


async def _identity(address: str, arguments: dict[str, Any], timeout_s: float) -> Any:
    """What the Dask server at ``address`` says it is, connected with ``arguments``
    (the security settings distributed's client would use); the whole exchange
    within ``timeout_s``."""

    async def ask() -> Any:
        comm = await connect(address, timeout=timeout_s, **arguments)
        try:
            await comm.write({"op": "identity", "reply": True})
            return await comm.read()
        finally:
            comm.abort()

    return await asyncio.wait_for(ask(), timeout_s)


def _no_scheduler(address: str, error: BaseException) -> ConfigurationError:
    if isinstance(error, CommClosedError):
        what = f"what listens at {address} closed the connection without answering"
    else:
        what = f"no Dask scheduler answered at {address} within {CONNECT_TIMEOUT_S:g} s"
    return ConfigurationError(
        f"--dask-scheduler: {what}; nothing was created: check the address and that "
        "the scheduler runs, then run again"
    )


def _wait_for_a_worker(client: Client, address: str) -> None:
    try:
        client.wait_for_workers(1, timeout=WORKERS_TIMEOUT_S)
    except TimeoutError:
        raise ConfigurationError(
            f"--dask-scheduler: the Dask scheduler at {address} had no worker "
            f"within {WORKERS_TIMEOUT_S:g} s; start workers for it, then run again"
        ) from None
