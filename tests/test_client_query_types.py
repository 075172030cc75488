"""One query places values by their signal's declared type once the listing is known."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from aiohttp import web

from powerp_async.simulator import SimulatorSettings
from powerp_async.simulator._settings import Handler

from .conftest import ANCHOR
from .helpers import rewriting_settings


async def whole_numbers_as_integers(
    request: web.Request, handler: Handler
) -> web.StreamResponse:
    """Write every whole float as a JSON integer, as many serialisers do."""
    response = await handler(request)
    if not request.path.endswith("/Query") or response.status != 200:
        return response

    assert isinstance(response, web.Response)
    points = orjson.loads(bytes(response.body))
    for point in points:
        value = point["value"]
        if isinstance(value, float) and value.is_integer():
            point["value"] = int(value)
    response.body = orjson.dumps(points)
    return response


@pytest.fixture
def settings() -> SimulatorSettings:
    return rewriting_settings(whole_numbers_as_integers)


async def test_a_float_signal_keeps_its_whole_numbers_as_floats(client) -> None:
    # Index 1, global irradiance, is 0 W/m2 at night (1 a.m. at the weather station):
    # whole numbers, which the server now sends as integers.
    end = ANCHOR - timedelta(hours=6)
    start = end - timedelta(minutes=10)
    before = await client.query(1, ["1"], start, end, aggregation="mean", window="1m")
    await client.measurements()
    after = await client.query(1, ["1"], start, end, aggregation="mean", window="1m")

    assert before.num_rows == after.num_rows == 10
    assert before.column("value_float").null_count == 10
    assert before.column("value_int").to_pylist() == [0] * 10
    assert after.column("value_float").to_pylist() == [0.0] * 10
    assert after.column("value_int").null_count == 10
