"""``cache_answers``: a repeated query is served the same bytes, rendered once."""

from __future__ import annotations

import pytest

from powerp_async.simulator import Simulator, SimulatorSettings, _app

from .conftest import ANCHOR_US, SECRET, fetch_token, post_query, query_body


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The points of every answer the simulator renders."""
    counted: list[int] = []
    render = _app.render_points

    def counting(*args, **kwargs):
        body, points = render(*args, **kwargs)
        counted.append(points)
        return body, points

    monkeypatch.setattr(_app, "render_points", counting)
    return counted


@pytest.mark.parametrize(
    ("cache", "rendered"), [(True, [20, 10]), (False, [20, 20, 10])]
)
async def test_a_repeated_query_is_rendered_once_when_cached(
    http, renders, cache: bool, rendered: list[int]
) -> None:
    settings = SimulatorSettings(
        client_id="tester",
        client_secret=SECRET,
        anchor_us=ANCHOR_US,
        cache_answers=cache,
    )
    async with Simulator(settings) as sim:
        token = await fetch_token(http, sim)
        first = await post_query(http, sim, token, query_body())
        again = await post_query(http, sim, token, query_body())
        await post_query(http, sim, token, query_body(measurementIndexes=["1"]))

    assert first == again
    assert first[0] == 200
    assert len(first[1]) == 20
    assert renders == rendered
