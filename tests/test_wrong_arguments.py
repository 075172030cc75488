"""A client, spec or configuration of the wrong kind is named at once, before anything
is sent, rather than failing deep inside with an error about something else."""

from __future__ import annotations

from datetime import timedelta

import pytest

from powerp_async import (
    ClientConfig,
    ConfigurationError,
    ExportSpec,
    PowerPClient,
    blocking,
    export,
    plan_export,
)
from powerp_async.events import RequestDone

from .conftest import ANCHOR, CLIENT_SECRET

CONFIG_REFUSED = (
    "config: expected a ClientConfig, such as ClientConfig.from_env(), got {}; "
    "PowerPClient also takes the settings as keywords, client_id=... and "
    "client_secret=..."
)
START = ANCHOR - timedelta(minutes=20)


@pytest.mark.parametrize("config", ["my-secret-id", {"client_id": "x"}])
def test_a_client_given_something_else_than_a_config_names_its_type_only(
    config: object,
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        PowerPClient(config)  # type: ignore[arg-type]

    # Only the type: a text passed by mistake could be the secret.
    assert str(raised.value) == CONFIG_REFUSED.format(type(config).__name__)


@pytest.mark.parametrize(
    ("call", "given"),
    [
        (lambda spec: blocking.measurements(None), "NoneType"),
        (lambda spec: blocking.fetch_table("config", [], START, ANCHOR), "str"),
        (lambda spec: blocking.export(None, spec), "NoneType"),
    ],
)
def test_the_blocking_helpers_name_a_config_of_the_wrong_kind(
    tmp_path, call, given: str
) -> None:
    spec = ExportSpec(out=tmp_path / "out", start=START, end=ANCHOR)

    with pytest.raises(ConfigurationError) as raised:
        call(spec)

    assert str(raised.value) == CONFIG_REFUSED.format(given)
    assert not spec.out.exists()


async def test_an_export_names_a_spec_or_client_of_the_wrong_kind(
    client, tmp_path
) -> None:
    spec = ExportSpec(out=tmp_path / "out", start=START, end=ANCHOR)

    with pytest.raises(ConfigurationError) as no_spec:
        await export(client, {"out": "x"})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError) as no_client:
        await plan_export(ClientConfig("id", CLIENT_SECRET), spec)  # type: ignore[arg-type]

    assert str(no_spec.value) == (
        "spec: expected an ExportSpec, such as ExportSpec(out=..., start=..., "
        "end=...), got dict"
    )
    assert str(no_client.value) == "client: expected a PowerPClient, got ClientConfig"
    assert not spec.out.exists()


async def test_a_client_from_the_environment_takes_an_event_hook(
    simulator, monkeypatch
) -> None:
    monkeypatch.setenv("POWERP_CLIENT_ID", "tester")
    monkeypatch.setenv("POWERP_CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv("POWERP_API_BASE_URL", simulator.base_url)
    events: list[object] = []

    async with PowerPClient.from_env(on_event=events.append) as client:
        signals = (await client.measurements())[:2]
        await client.fetch_table(signals, START, ANCHOR, window="1m")

    assert RequestDone in {type(event) for event in events}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("rows_per_flush", None, "rows_per_flush: expected an integer, got None"),
        ("source", 5, "source: expected a text or None, got 5"),
        (
            "neutralise_formulas",
            "yes",
            "neutralise_formulas: expected True or False, got 'yes'",
        ),
    ],
)
def test_an_export_spec_names_a_field_of_the_wrong_kind(
    tmp_path, field: str, value: object, message: str
) -> None:
    fields = {"out": tmp_path / "out", "start": START, "end": ANCHOR, "format": "csv"}

    with pytest.raises(ConfigurationError) as raised:
        ExportSpec(**fields, **{field: value})  # type: ignore[arg-type]

    assert str(raised.value) == message


async def test_an_executor_of_the_wrong_kind_is_refused_before_the_folder_is_made(
    client, tmp_path
) -> None:
    spec = ExportSpec(out=tmp_path / "out", start=START, end=ANCHOR, databases=(2,))

    with pytest.raises(ConfigurationError) as raised:
        await export(client, spec, executor="local")  # type: ignore[arg-type]

    assert str(raised.value) == (
        "executor: expected an executor, such as DaskExecutor(...), or None for this "
        "process, got str"
    )
    assert not spec.out.exists()  # so the corrected call is a plain rerun


@pytest.mark.parametrize("attempts", ["2", 1.5, True, 0])
async def test_listing_attempts_of_the_wrong_kind_are_named(
    client, attempts: object
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        await client.measurements(attempts=attempts)  # type: ignore[arg-type]

    assert str(raised.value) == (
        f"attempts: expected an integer of 1 or more, got {attempts!r}"
    )


async def test_a_database_id_beyond_64_bits_is_named(client) -> None:
    with pytest.raises(ConfigurationError) as raised:
        await client.query(2**70, ["1"], START, ANCHOR)

    assert str(raised.value) == (
        f"database_id: expected an integer database id, got {2**70!r}"
    )
