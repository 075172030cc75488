"""``python -m powerp_async.simulator``: the same as ``powerp simulate``."""

from __future__ import annotations

from ._cli import run

raise SystemExit(run())
