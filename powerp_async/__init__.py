"""powerp-async: fast, exact, resumable exports from the PowerP Real-Time API.

The public surface is what this module exports; everything in modules whose names
start with an underscore is private and may change.

Each name is imported when it is first used: aiohttp, pyarrow and numpy take about
half a second to load, which the ``powerp`` command spends only once it can say what
it was doing if a Ctrl-C lands meanwhile (see ``_launch``), and which a program that
needs one exception class does not spend at all.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    __version__: str

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
    from .config import ClientConfig, ClientSettings
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
    "ClientSettings",
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

_MODULE_OF: Final = {
    "BlockResult": "._assembly",
    "RunStats": "._engine",
    **dict.fromkeys(
        ("ExportPlan", "ExportReport", "ExportSpec", "Gap", "export", "plan_export"),
        "._export",
    ),
    **dict.fromkeys(
        (
            "MEASUREMENT_SCHEMA",
            "measurements_frame",
            "measurements_table",
            "points_frame",
        ),
        "._frames",
    ),
    "PowerPClient": ".client",
    **dict.fromkeys(("ClientConfig", "ClientSettings"), ".config"),
    **dict.fromkeys((name for name in __all__ if name.endswith("Error")), ".errors"),
    **dict.fromkeys(("POINT_SCHEMA", "Block", "DataType", "Measurement"), ".models"),
    **dict.fromkeys(("FixedPacer", "Pacer"), ".pacing"),
    **dict.fromkeys(("TimeRange", "plan_blocks"), ".planning"),
}
"""The module each public name lives in."""


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if name == "__version__":
        value: Any = _installed_version()
    elif module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    else:
        value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later uses skip this function
    return value


def __dir__() -> list[str]:
    """The public names, loaded or not, and the module's own dunders; not the
    helpers this module imports for itself."""
    return sorted({*__all__, *(name for name in globals() if name.startswith("__"))})


def _installed_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("powerp-async")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"
