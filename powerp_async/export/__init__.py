"""Bulk exports to Parquet, CSV or JSON Lines that resume after any interruption."""

from __future__ import annotations

from ._formats import FORMATS, Format
from ._report import ExportReport, Gap
from ._run import DEFAULT_ROWS_PER_FLUSH, ExportSpec, export

__all__ = [
    "DEFAULT_ROWS_PER_FLUSH",
    "FORMATS",
    "ExportReport",
    "ExportSpec",
    "Format",
    "Gap",
    "export",
]
