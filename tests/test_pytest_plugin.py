"""The shipped ``powerp_simulator`` fixture, used the way a user's tests would."""

from __future__ import annotations

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
