"""Bulk exports to Parquet, CSV or JSON Lines that resume after any interruption."""

from __future__ import annotations

from ._formats import FORMATS, Format
from ._plan import ExportPlan, plan_export
from ._report import ExportReport, Gap
from ._run import export
from ._spec import DEFAULT_ROWS_PER_FLUSH, ExportSpec

__all__ = [
    "DEFAULT_ROWS_PER_FLUSH",
    "FORMATS",
    "ExportPlan",
    "ExportReport",
    "ExportSpec",
    "Format",
    "Gap",
    "export",
    "plan_export",
]
