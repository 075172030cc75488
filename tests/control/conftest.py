"""Fixtures for rate-control tests: everything runs on virtual time."""

from __future__ import annotations

import pytest

from powerp_async.control import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
