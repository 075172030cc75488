"""Settings of the wrong type are refused by name, before anything runs."""

from __future__ import annotations

import dataclasses
import typing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from powerp_async import ClientConfig, ClientSettings, ExportSpec
from powerp_async.errors import ConfigurationError

START = datetime(2026, 12, 4, tzinfo=UTC)
END = START + timedelta(minutes=2)


def spec(**fields) -> ExportSpec:
    return ExportSpec(**{"out": Path("out"), "start": START, "end": END, **fields})


def test_the_typed_settings_are_the_fields_of_the_configuration() -> None:
    fields = typing.get_type_hints(ClientConfig)

    assert typing.get_type_hints(ClientSettings) == fields
    assert list(fields) == [field.name for field in dataclasses.fields(ClientConfig)]
    assert not ClientSettings.__required_keys__


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"indexes": "12"},
            "indexes: expected a sequence of signal indexes, such as ('12',) for "
            "one, got the bare value '12'",
        ),
        (
            {"databases": "12"},
            "databases: expected a sequence of integer database ids, such as (1, 2), "
            "got the bare value '12'",
        ),
        (
            {"databases": 12},
            "databases: expected a sequence of integer database ids, such as (1, 2), "
            "got the bare value 12",
        ),
        ({"databases": ("1",)}, "databases: expected integer database ids, got '1'"),
        ({"databases": (True,)}, "databases: expected integer database ids, got True"),
        ({"indexes": (1.5,)}, "indexes: expected signal indexes (texts), got 1.5"),
        ({"indexes": None}, "indexes: expected a sequence, got NoneType None"),
        ({"out": 3}, "out: expected a folder path, got 3"),
        ({"out": " "}, "out: expected a folder path, got ' '"),
        (
            {"start": "2026-12-04T00:00Z"},
            "start: expected a datetime, got str '2026-12-04T00:00Z'",
        ),
        ({"end": 1.0}, "end: expected a datetime, got float 1.0"),
        ({"window": 60}, "window: expected a text, got 60"),
        ({"block_size": "5"}, "block_size: expected an integer, got '5'"),
        ({"rows_per_flush": True}, "rows_per_flush: expected an integer, got True"),
    ],
)
def test_a_spec_of_the_wrong_type_is_refused_by_name(fields, error) -> None:
    with pytest.raises(ConfigurationError) as refused:
        spec(**fields)

    assert str(refused.value) == error


def test_a_spec_takes_a_text_path_and_whole_number_indexes() -> None:
    made = spec(out="exports/week", databases=[2, 1], indexes=[12, "a"])

    assert (made.out, made.databases, made.indexes) == (
        Path("exports/week"),
        (2, 1),
        ("12", "a"),
    )


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"timeout_s": "abc"}, "timeout_s: expected a number, got str 'abc'"),
        ({"block_size": "5"}, "block_size: expected an integer, got str '5'"),
        ({"block_size": True}, "block_size: expected an integer, got bool True"),
        ({"adaptive": 1}, "adaptive: expected True or False, got int 1"),
        ({"max_rate": "10"}, "max_rate: expected a number or None, got str '10'"),
        ({"client_secret": 12345}, "client_secret: expected a string, got int"),
    ],
)
def test_a_client_setting_of_the_wrong_type_is_refused_by_name(fields, error) -> None:
    settings = {"client_id": "id", "client_secret": "secret", **fields}

    with pytest.raises(ConfigurationError) as refused:
        ClientConfig(**settings)

    assert str(refused.value) == error
    assert "12345" not in str(refused.value)


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        (
            {"client_secret": "s3cr3t-Wq\n"},
            "client_secret: expected no control characters, such as a line break "
            "read from a file",
        ),
        (
            {"client_id": "id\r\n"},
            "client_id: expected no control characters, such as a line break read "
            "from a file",
        ),
        (
            {"client_secret": "s3cr3t\x00Wq"},
            "client_secret: expected no control characters, such as a line break "
            "read from a file",
        ),
        (
            # What os.environ holds for POWERP_CLIENT_SECRET=$'p\xe4sswort' in bytes.
            {"client_secret": "p\udce4sswort-Wq"},
            "client_secret: expected UTF-8 text, not bytes of another encoding (as "
            "an environment variable set from a file saved in Latin-1 holds)",
        ),
        ({"client_id": " "}, "client_id: expected a non-blank client id"),
        ({"client_secret": " \t "}, "client_secret: expected a non-blank secret"),
        (
            {"client_id": "r\udce9porting"},
            "client_id: expected UTF-8 text, not bytes of another encoding (as an "
            "environment variable set from a file saved in Latin-1 holds)",
        ),
    ],
)
def test_credentials_no_server_can_be_sent_are_refused_unshown(fields, error) -> None:
    settings = {"client_id": "id", "client_secret": "secret", **fields}

    with pytest.raises(ConfigurationError) as refused:
        ClientConfig(**settings)

    assert str(refused.value) == error
    assert "s3cr3t" not in str(refused.value)
