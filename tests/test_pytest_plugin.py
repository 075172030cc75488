"""The shipped ``powerp_simulator`` fixture, used the way a user's tests would."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
import requests

from powerp_async import PowerPClient
from powerp_async._time import to_epoch_us


def test_plain_http_against_the_fixture(powerp_simulator) -> None:
    token = requests.post(
        f"{powerp_simulator.base_url}/v1/auth/token",
        data={
            "client_id": "demo",
            "client_secret": "demo-secret",
            "grant_type": "client_credentials",
        },
        timeout=10,
    ).json()["access_token"]

    listing = requests.get(
        f"{powerp_simulator.base_url}/v1/measurements",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    ).json()

    assert len(listing) == len(powerp_simulator.tenant.signals)
    assert powerp_simulator.stats.tokens_issued == 1


@pytest.mark.powerp_simulator(client_id="mine", client_secret="s3", token_ttl_s=5)
async def test_my_async_code_with_chosen_settings(powerp_simulator) -> None:
    end = datetime(2026, 12, 4, 10, 0, tzinfo=UTC)

    async with PowerPClient(powerp_simulator.client_config()) as client:
        signals = (await client.measurements())[:3]
        table = await client.fetch_table(signals, end - timedelta(minutes=1), end)

    assert powerp_simulator.settings.token_ttl_s == 5
    assert client.config.client_id == "mine"
    expected = sum(
        len(
            powerp_simulator.tenant.points(
                s.database_id,
                s.index,
                s.aggregation,
                to_epoch_us(end - timedelta(minutes=1)),
                to_epoch_us(end),
                1_000_000,
            )
        )
        for s in signals
    )
    assert table.num_rows == expected > 0


TYPO_REFUSED = (
    "@pytest.mark.powerp_simulator: expected settings by name, got token_ttl; known "
    "settings: anchor_us, cache_answers, client_id, client_secret, copies, "
    "gzip_min_bytes, label, policies, retired, scenario, seed, token_ttl_s"
)


def test_a_marker_argument_that_is_no_setting_is_named() -> None:
    from powerp_async.errors import ConfigurationError
    from powerp_async.pytest_plugin import marker_settings

    with pytest.raises(ConfigurationError) as caught:
        marker_settings((), {"token_ttl": 2, "seed": 1})

    assert str(caught.value) == TYPO_REFUSED


USERS_TESTS = """
import pytest

@pytest.mark.powerp_simulator(token_ttl=2)
def test_typo(powerp_simulator):
    pass

@pytest.mark.powerp_simulator(token_ttl_s=0)
def test_out_of_range(powerp_simulator):
    pass

@pytest.mark.powerp_simulator(token_ttl_s=2)
@pytest.mark.asyncio
async def test_async_with_the_mark(powerp_simulator):
    assert powerp_simulator.settings.token_ttl_s == 2
"""


def test_a_users_suite_sees_one_line_per_wrong_marker(tmp_path) -> None:
    (tmp_path / "test_users.py").write_text(USERS_TESTS, encoding="utf-8")

    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rE"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "COLUMNS": "400"},
    )

    summary = [line for line in done.stdout.splitlines() if line.startswith("ERROR")]
    assert summary == [
        f"ERROR test_users.py::test_typo - Failed: {TYPO_REFUSED}",
        "ERROR test_users.py::test_out_of_range - Failed: SimulatorSettings."
        "token_ttl_s must be from 1 to 1,000,000,000 seconds, got 0",
    ]
    assert done.stdout.splitlines()[-1].startswith("1 passed, 2 errors in ")
    assert "TypeError" not in done.stdout
    assert "During handling" not in done.stdout
