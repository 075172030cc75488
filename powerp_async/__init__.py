"""powerp-async: fast, exact, resumable exports from the PowerP Real-Time API."""

from __future__ import annotations
