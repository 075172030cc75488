"""Settings are checked on construction and never show the secret."""

from __future__ import annotations

import pytest

from powerp_async.errors import ConfigurationError
from powerp_async.simulator import SimulatorSettings


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"client_id": ""},
            "SimulatorSettings.client_id must be a non-empty string, got ''",
        ),
        (
            {"client_secret": ""},
            "SimulatorSettings.client_secret must be a non-empty string, "
            "got an empty string",
        ),
        (
            {"client_secret": 42},
            "SimulatorSettings.client_secret must be a non-empty string, got a int",
        ),
        (
            {"token_ttl_s": 0},
            "SimulatorSettings.token_ttl_s must be from 1 to 1,000,000,000 seconds, "
            "got 0",
        ),
        (
            {"token_ttl_s": float("inf")},
            "SimulatorSettings.token_ttl_s must be from 1 to 1,000,000,000 seconds, "
            "got inf",
        ),
        (
            # Issued as 0 whole seconds, a token nobody could use.
            {"token_ttl_s": 0.001},
            "SimulatorSettings.token_ttl_s must be from 1 to 1,000,000,000 seconds, "
            "got 0.001",
        ),
        (
            {"token_ttl_s": 1e300},
            "SimulatorSettings.token_ttl_s must be from 1 to 1,000,000,000 seconds, "
            "got 1e+300",
        ),
        (
            {"token_ttl_s": True},
            "SimulatorSettings.token_ttl_s must be from 1 to 1,000,000,000 seconds, "
            "got True",
        ),
        (
            {"label": "middle"},
            "SimulatorSettings.label must be 'stop' or 'start', got 'middle'",
        ),
        (
            {"anchor_us": 1.5},
            "SimulatorSettings.anchor_us must be an integer or None, got 1.5",
        ),
        (
            {"anchor_us": 10**20},
            "SimulatorSettings.anchor_us must be a time from 1970 to 2199 in epoch "
            "microseconds, got 100000000000000000000",
        ),
        (
            {"anchor_us": -(10**18)},
            "SimulatorSettings.anchor_us must be a time from 1970 to 2199 in epoch "
            "microseconds, got -1000000000000000000",
        ),
        ({"seed": -1}, "SimulatorSettings.seed must be 0 to 2**64 - 1, got -1"),
        ({"seed": "7"}, "SimulatorSettings.seed must be an integer, got '7'"),
        (
            {"gzip_min_bytes": -1},
            "SimulatorSettings.gzip_min_bytes must be >= 0 or None, got -1",
        ),
        (
            {"policies": [print]},
            "SimulatorSettings.policies must be a tuple of callables "
            "policy(request, handler), got list",
        ),
    ],
)
def test_bad_settings_name_the_field(changes, message) -> None:
    with pytest.raises(ConfigurationError) as caught:
        SimulatorSettings(**changes)

    assert str(caught.value) == message


def test_repr_hides_the_secret() -> None:
    settings = SimulatorSettings(client_secret="very-secret-value")

    assert "very-secret-value" not in repr(settings)
    assert repr(settings).startswith(
        "SimulatorSettings(client_id='demo', token_ttl_s=3600.0"
    )


def test_defaults_are_the_demo_tenant_settings() -> None:
    settings = SimulatorSettings()

    assert (settings.client_id, settings.client_secret) == ("demo", "demo-secret")
    assert (settings.label, settings.anchor_us, settings.seed) == ("stop", None, 0)
