"""An export's blocks fetched on a Dask cluster (the ``dask`` extra).

::

    check_workers     before the folder is made: every worker asked whether it can
                      fetch, with the settings of its own environment
    DaskExecutor      the driver's side: batches out, staged batches back, a few at
    │                 a time; pass it to export(executor=...)
    ├── BatchTask     one task: a handful of blocks and the settings to fetch them,
    │                 nothing secret (WorkerSettings)
    └── run_batch     the worker's side: fetch on the process's engine loop, stage
                      the parts under hidden names, describe them

The driver keeps the plan, the journal and the report, and alone commits: a batch's
parts become visible only once its journal line is written, and a batch computed
twice is committed once. Workers read their credentials from their own environment
and write into the export folder, which must be on a filesystem they share with the
driver. Nothing else in the package imports this module, so Dask is needed only here.
"""

from __future__ import annotations

try:
    import distributed  # noqa: F401
except ModuleNotFoundError as error:
    if error.name is None or error.name.partition(".")[0] not in (
        "dask",
        "distributed",
    ):
        raise
    raise ImportError(
        "powerp_async.dask_executor: expected the dask extra to be installed, got "
        f"no {error.name!r} module; pip install 'powerp-async[dask]'"
    ) from None

from ._cluster import local_cluster, scheduler_client
from ._executor import (
    BATCHES_PER_THREAD,
    MAX_BLOCKS_PER_BATCH,
    MIN_BLOCKS_PER_BATCH,
    POINTS_PER_BATCH,
    DaskExecutor,
)
from ._readiness import check_workers
from ._settings import WorkerSettings
from ._worker import BatchTask, WorkerStoppedError, run_batch

__all__ = [
    "BATCHES_PER_THREAD",
    "MAX_BLOCKS_PER_BATCH",
    "MIN_BLOCKS_PER_BATCH",
    "POINTS_PER_BATCH",
    "BatchTask",
    "DaskExecutor",
    "WorkerSettings",
    "WorkerStoppedError",
    "check_workers",
    "local_cluster",
    "run_batch",
    "scheduler_client",
]
