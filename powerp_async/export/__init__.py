"""Bulk exports to Parquet, CSV or JSON Lines that resume after any interruption."""

from __future__ import annotations

from ._formats import FORMATS, Format
from ._report import ExportReport, Gap
from ._run import ExportSpec, export

__all__ = ["FORMATS", "ExportReport", "ExportSpec", "Format", "Gap", "export"]
