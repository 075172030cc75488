"""Retired signals: listed, but refused by every query that asks for them."""

from __future__ import annotations

from dataclasses import replace

import pytest

from powerp_async.errors import ConfigurationError
from powerp_async.simulator import Simulator, SimulatorSettings
from powerp_async.simulator._cli import run

from .conftest import post_query, query_body


@pytest.fixture
def sim_settings(sim_settings: SimulatorSettings) -> SimulatorSettings:
    return replace(sim_settings, retired=frozenset({(1, "2")}))


async def test_a_query_asking_for_a_retired_signal_is_refused_whole(
    http, sim, token
) -> None:
    status, answer = await post_query(http, sim, token, query_body())

    assert (status, answer) == (
        400,
        {
            "error": "retired_index",
            "message": "index '2' of database 1 is retired: it is listed, but no "
            "longer served",
        },
    )
    status, points = await post_query(
        http, sim, token, query_body(measurementIndexes=["1"])
    )
    assert status == 200
    assert {point["index"] for point in points} == {"1"}


async def test_a_retired_signal_is_still_listed(http, sim, token) -> None:
    headers = {"Authorization": f"Bearer {token}"}
    async with http.get(f"{sim.base_url}/v1/measurements", headers=headers) as got:
        listed = await got.json()

    assert {"databaseId": 1, "index": "2"}.items() <= next(
        m for m in listed if (m["databaseId"], m["index"]) == (1, "2")
    ).items()


@pytest.mark.parametrize(
    "retired",
    [{(1, 2)}, frozenset({(1,)}), frozenset({(True, "2")}), frozenset({("1", "2")})],
)
def test_retired_signals_must_be_pairs_of_database_and_index(retired) -> None:
    with pytest.raises(ConfigurationError, match="must be a frozenset of"):
        SimulatorSettings(retired=retired)


def test_a_retired_signal_the_tenant_does_not_list_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="cannot retire index '99' of "):
        Simulator(SimulatorSettings(retired=frozenset({(1, "99")})))


def test_the_command_takes_database_and_index(capsys) -> None:
    assert run(["--retire", "1", "--port", "0"]) == 2
    assert "expected DATABASE:INDEX, such as 1:5, got '1'" in capsys.readouterr().err

    assert run(["--retire", "2:nope", "--port", "0"]) == 2
    assert capsys.readouterr().err == (
        "powerp simulate: cannot retire index 'nope' of database 2: the tenant "
        "lists no such signal\n"
    )
