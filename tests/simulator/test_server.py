"""Serving: lifecycle, stats, the policy seam, gzip, JSON answers for routing errors."""

from __future__ import annotations

import gzip

import aiohttp
import orjson
import pytest
from aiohttp import web

from powerp_async.simulator import Handler, Simulator, SimulatorSettings, build_app

from .conftest import ANCHOR_US, fetch_token, post_query, query_body


async def test_base_url_is_loopback_with_the_bound_port(sim) -> None:
    assert sim.base_url.startswith("http://127.0.0.1:")
    assert sim.base_url.endswith("/rt-api/api")
    assert int(sim.base_url.split(":")[2].split("/")[0]) > 0


async def test_a_stopped_simulator_has_no_url_and_closes_twice_quietly() -> None:
    simulator = Simulator(SimulatorSettings(anchor_us=ANCHOR_US))
    with pytest.raises(RuntimeError, match="the simulator is not running"):
        _ = simulator.base_url

    await simulator.start()
    with pytest.raises(RuntimeError, match="already running"):
        await simulator.start()
    await simulator.aclose()
    await simulator.aclose()

    assert repr(simulator) == "<Simulator not running seed=0>"


async def test_stats_count_requests_tokens_and_points(http, sim, token) -> None:
    await post_query(http, sim, token, query_body())
    await post_query(http, sim, "bogus", query_body())

    async with http.get(f"{sim.origin}/_simulator/stats") as response:
        snapshot = await response.json()

    assert snapshot["requests"] == {
        "query": {"200": 1, "401": 1},
        "token": {"200": 1},
    }
    assert snapshot["tokens_issued"] == 1
    assert snapshot["points_served"] == 20
    totals = [
        sum(s[k] for s in snapshot["per_second"])
        for k in ("accepted", "throttled", "failed")
    ]
    assert totals == [2, 0, 1]


async def test_policies_answer_before_the_handlers_and_are_counted(http) -> None:
    async def throttle_queries(
        request: web.Request, handler: Handler
    ) -> web.StreamResponse:
        if request.path.endswith("/Query"):
            return web.json_response({"error": "rate_limited"}, status=429)
        return await handler(request)

    calls: list[str] = []

    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        calls.append(request.path.rsplit("/", 1)[-1])
        return await handler(request)

    settings = SimulatorSettings(
        anchor_us=ANCHOR_US, policies=(record, throttle_queries)
    )
    async with Simulator(settings) as sim:
        token = await fetch_token(http, sim, "demo-secret", "demo")
        status, answer = await post_query(http, sim, token, query_body())
        async with http.get(f"{sim.origin}/_simulator/stats") as response:
            snapshot = await response.json()

    assert (status, answer) == (429, {"error": "rate_limited"})
    assert calls == ["token", "Query"]
    assert snapshot["requests"]["query"] == {"429": 1}
    assert [s["throttled"] for s in snapshot["per_second"]].count(1) == 1


async def test_large_answers_are_gzipped_when_the_client_accepts_it(sim, token) -> None:
    headers = {"Authorization": f"Bearer {token}", "Accept-Encoding": "gzip"}
    async with aiohttp.ClientSession(auto_decompress=False) as raw:
        url = f"{sim.base_url}/v1/Query"
        async with raw.post(url, json=query_body(), headers=headers) as response:
            encoding = response.headers.get("Content-Encoding")
            packed = await response.read()
        headers["Accept-Encoding"] = "identity"
        async with raw.post(url, json=query_body(), headers=headers) as response:
            plain_encoding = response.headers.get("Content-Encoding")
            plain = await response.read()

    assert encoding == "gzip"
    assert plain_encoding is None
    assert gzip.decompress(packed) == plain
    assert len(orjson.loads(plain)) == 20


async def test_unknown_paths_and_methods_answer_in_json(http, sim) -> None:
    async with http.get(f"{sim.base_url}/v2/measurements") as response:
        missing = response.status, await response.json()
    async with http.get(f"{sim.base_url}/v1/Query") as response:
        wrong_method = response.status, await response.json(), response.headers["Allow"]

    assert missing == (
        404,
        {
            "error": "not_found",
            "message": "no endpoint at /rt-api/api/v2/measurements: expected one of "
            "/_simulator/stats, /rt-api/api/v1/Query, /rt-api/api/v1/auth/token, "
            "/rt-api/api/v1/measurements, /rt-api/api/v1/query",
        },
    )
    assert wrong_method == (
        405,
        {
            "error": "method_not_allowed",
            "message": "GET is not allowed on /rt-api/api/v1/Query: use POST",
        },
        "POST",
    )


async def test_build_app_serves_without_the_context_manager() -> None:
    app = build_app(SimulatorSettings(anchor_us=ANCHOR_US))
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        port = runner.addresses[0][1]
        async with aiohttp.ClientSession() as http:
            url = f"http://127.0.0.1:{port}/_simulator/stats"
            async with http.get(url) as response:
                snapshot = await response.json()
    finally:
        await runner.cleanup()

    assert snapshot == {
        "requests": {},
        "tokens_issued": 0,
        "points_served": 0,
        "per_second": [],
    }


def test_public_surface_is_what_all_lists() -> None:
    import powerp_async.simulator as package

    # "@py_builtins" and the like: pytest's assertion rewriting, when the package is
    # loaded as a plugin of it (run alone, this file loads it so).
    public = {name for name in vars(package) if not name.startswith(("_", "@"))}
    assert public - {"annotations"} == set(package.__all__)
    assert len(package.__all__) == len(set(package.__all__)) == 21


@pytest.mark.parametrize(
    ("host", "prefix"), [("localhost", "http://127.0.0.1:"), ("::1", "http://[::1]:")]
)
async def test_other_loopback_hosts_give_one_usable_url(http, host, prefix) -> None:
    async with Simulator(SimulatorSettings(anchor_us=ANCHOR_US), host=host) as sim:
        base_url = sim.base_url
        async with http.get(f"{sim.origin}/_simulator/stats") as response:
            status = response.status

    assert base_url.startswith(prefix)
    assert base_url.endswith("/rt-api/api")
    assert status == 200
