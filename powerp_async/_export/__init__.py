"""Bulk exports to Parquet, CSV or JSON Lines that resume after any interruption."""

from __future__ import annotations

from ..errors import ExportWriteError
from ._executor import Executor, ExportJob, LocalExecutor
from ._formats import FORMATS, Format
from ._manifest import MANIFEST_NAME
from ._plan import ExportPlan, plan_export
from ._report import ExportReport, Gap, failure_reason
from ._run import export
from ._spec import DEFAULT_ROWS_PER_FLUSH, ExportSpec, RecordedSource, recorded_source
from ._staged import StagedBatch, StagedPart

__all__ = [
    "DEFAULT_ROWS_PER_FLUSH",
    "FORMATS",
    "MANIFEST_NAME",
    "Executor",
    "ExportJob",
    "ExportPlan",
    "ExportReport",
    "ExportSpec",
    "ExportWriteError",
    "Format",
    "Gap",
    "LocalExecutor",
    "RecordedSource",
    "StagedBatch",
    "StagedPart",
    "export",
    "failure_reason",
    "plan_export",
    "recorded_source",
]
