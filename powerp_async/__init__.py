"""powerp-async: fast, exact, resumable exports from the PowerP Real-Time API.

The public surface is what this module exports; everything in modules whose names
start with an underscore is private and may change.
"""

from __future__ import annotations

import logging
from importlib.metadata import PackageNotFoundError, version

from ._assembly import BlockResult
from ._engine import RunStats
from ._export import ExportPlan, ExportReport, ExportSpec, Gap, export, plan_export
from ._frames import (
    MEASUREMENT_SCHEMA,
    measurements_frame,
    measurements_table,
    points_frame,
)
from .client import PowerPClient
from .config import ClientConfig
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    ExportWriteError,
    FetchFailedError,
    MalformedResponseError,
    PayloadTooLargeError,
    PermissionDeniedError,
    PowerPError,
    ServerError,
    ServerUnavailableError,
    ThrottledError,
    TokenExpiredError,
    TransportError,
)
from .models import POINT_SCHEMA, Block, DataType, Measurement
from .pacing import FixedPacer, Pacer
from .planning import TimeRange, plan_blocks

try:
    __version__ = version("powerp-async")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

# A library stays quiet unless its user configures logging: without a handler of its
# own, Python's last resort would print every warning (each retry) to stderr.
logging.getLogger("powerp_async").addHandler(logging.NullHandler())

__all__ = [
    "MEASUREMENT_SCHEMA",
    "POINT_SCHEMA",
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "Block",
    "BlockResult",
    "ClientConfig",
    "ConfigurationError",
    "DataType",
    "ExportPlan",
    "ExportReport",
    "ExportSpec",
    "ExportWriteError",
    "FetchFailedError",
    "FixedPacer",
    "Gap",
    "MalformedResponseError",
    "Measurement",
    "Pacer",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "PowerPClient",
    "PowerPError",
    "RunStats",
    "ServerError",
    "ServerUnavailableError",
    "ThrottledError",
    "TimeRange",
    "TokenExpiredError",
    "TransportError",
    "__version__",
    "export",
    "measurements_frame",
    "measurements_table",
    "plan_blocks",
    "plan_export",
    "points_frame",
]
