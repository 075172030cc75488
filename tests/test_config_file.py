"""ClientConfig from a TOML file: every field, precedence, refusals, the secret."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from powerp_async import ClientConfig, ConfigurationError

SECRET = "file-secret-7c6b5a"
URL = "http://127.0.0.1:8765/rt-api/api"
NO_ENV: dict[str, str] = {}


def write(folder: Path, text: str, mode: int = 0o600) -> Path:
    path = folder / "powerp.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_every_field_can_be_set(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
        client_id = "reporting"
        client_secret = "{SECRET}"
        base_url = "http://powerp.internal/rt-api/api"
        block_size = 20
        max_rate = 40
        initial_rate = 12.5
        adaptive = false
        max_in_flight = 8
        timeout_s = 15
        max_attempts = 3
        max_outage_s = 90.0
        compression = true
        verify_tls = false
        allow_insecure_http = true
        rate_backend = "redis://127.0.0.1:6379/2"
        rate_key = "reporting"
        """,
    )

    config = ClientConfig.from_toml(path, NO_ENV)

    assert config == ClientConfig(
        client_id="reporting",
        client_secret=SECRET,
        base_url="http://powerp.internal/rt-api/api",
        block_size=20,
        max_rate=40.0,
        initial_rate=12.5,
        adaptive=False,
        max_in_flight=8,
        timeout_s=15.0,
        max_attempts=3,
        max_outage_s=90.0,
        compression=True,
        verify_tls=False,
        allow_insecure_http=True,
        rate_backend="redis://127.0.0.1:6379/2",
        rate_key="reporting",
    )
    assert {f.name for f in dataclasses.fields(ClientConfig)} == {
        *[line.split("=")[0].strip() for line in path.read_text().split("\n")[1:-1]]
    }
    assert type(config.max_rate) is float
    assert type(config.timeout_s) is float
    assert SECRET not in repr(config)


def test_keys_left_out_keep_their_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, f'client_id = "a"\nclient_secret = "{SECRET}"\n')

    config = ClientConfig.from_toml(path, NO_ENV)

    assert config == ClientConfig("a", SECRET)
    assert config.max_rate is None
    assert config.compression is None


def test_unknown_keys_are_named_with_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, 'client_id = "a"\nblocksize = 20\n[powerp]\nx = 1\n')

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": "s"})

    message = str(caught.value)
    assert "unknown key(s) 'blocksize', 'powerp'; known keys: adaptive, " in message
    assert message.endswith(", timeout_s, verify_tls")
    assert str(path) in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('block_size = "20"', "block_size: expected an integer, got a string"),
        ("block_size = 2.5", "block_size: expected an integer, got a float (2.5)"),
        ("adaptive = 1", "adaptive: expected true or false, got an integer (1)"),
        ("timeout_s = true", "timeout_s: expected a number, got a boolean (True)"),
        ('max_rate = "fast"', "max_rate: expected a number, got a string"),
        ("base_url = 8765", "base_url: expected a string, got an integer (8765)"),
        ("compression = [true]", "compression: expected true or false, got an array"),
        ("verify_tls = 2026-12-04", "verify_tls: expected true or false, got a date"),
    ],
)
def test_wrong_types_name_field_expectation_and_value(
    tmp_path: Path, line: str, expected: str
) -> None:
    path = write(tmp_path, f'client_id = "a"\n{line}\n')

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": "s"})

    assert str(caught.value).startswith(f"{path}: {expected}")


def test_a_secret_under_the_wrong_key_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, 'client_id = "a"\nblock_size = "Zq9-pasted-secret"\n')

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": "s"})

    assert str(caught.value) == (
        f"{path}: block_size: expected an integer, got a string"
    )


def test_a_secret_of_the_wrong_type_is_not_echoed(tmp_path: Path) -> None:
    path = write(tmp_path, 'client_id = "a"\nclient_secret = 918273645\n')

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, NO_ENV)

    assert str(caught.value) == (
        f"{path}: client_secret: expected a string, got an integer"
    )


def test_values_are_validated_as_arguments_are_and_name_the_file(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, 'client_id = "a"\nblock_size = 30\ntimeout_s = -1\n')

    with pytest.raises(ConfigurationError) as in_file:
        ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": "s"})
    with pytest.raises(ConfigurationError) as as_argument:
        ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": "s"}, block_size=0)

    assert str(in_file.value) == (
        f"{path}: block_size: expected an integer from 1 to 20 (the API's limit), "
        "got 30"
    )
    # The value refused came from the argument, not from the file.
    assert str(as_argument.value) == (
        "block_size: expected an integer from 1 to 20 (the API's limit), got 0"
    )


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_secret_in_a_file_others_can_read_or_change_is_refused(
    tmp_path: Path, mode: int
) -> None:
    path = write(tmp_path, f'client_id = "a"\nclient_secret = "{SECRET}"\n', mode)

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, NO_ENV)

    message = str(caught.value)
    assert message == (
        f"{path} holds client_secret but can be read or changed by group or others "
        f"(mode {mode:03o}); run 'chmod 600 {path}', or remove client_secret from "
        "it and set POWERP_CLIENT_SECRET instead"
    )
    assert SECRET not in message


@pytest.mark.parametrize(
    ("text", "mode"),
    [('client_id = "a"\n', 0o602), (f'client_secret = "{SECRET}"\n', 0o606)],
)
def test_a_file_anyone_can_change_is_refused_whatever_it_holds(
    tmp_path: Path, text: str, mode: int
) -> None:
    path = write(tmp_path, text, mode)

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": "from-env"})

    assert str(caught.value) == (
        f"{path} can be changed by anyone (mode {mode:03o}), and with it the server "
        f"your credentials are sent to; run 'chmod o-w {path}'"
    )


def test_a_file_without_the_secret_its_group_can_change_is_accepted(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, 'client_id = "a"\n', 0o664)

    config = ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": "from-env"})

    assert (config.client_id, config.client_secret) == ("a", "from-env")


def test_secret_in_a_private_file_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, f'client_id = "a"\nclient_secret = "{SECRET}"\n', 0o600)

    assert ClientConfig.from_toml(path, NO_ENV).client_secret == SECRET


def test_a_readable_file_without_the_secret_takes_it_from_the_environment(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, f'client_id = "a"\nbase_url = "{URL}"\n', 0o644)

    config = ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": SECRET})

    assert (config.client_id, config.client_secret, config.base_url) == (
        "a",
        SECRET,
        URL,
    )


def test_environment_beats_the_file_and_arguments_beat_both(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f'client_id = "file"\nclient_secret = "{SECRET}"\nbase_url = "{URL}"\n'
        "block_size = 5\nmax_in_flight = 4\n",
    )
    env = {
        "POWERP_CLIENT_ID": "env",
        "POWERP_API_BASE_URL": "http://localhost:9000/api",
        "POWERP_CLIENT_SECRET": "",  # set but empty: the file's secret stays
    }

    config = ClientConfig.from_toml(path, env, block_size=12, max_in_flight=None)

    assert (config.client_id, config.client_secret) == ("env", SECRET)
    assert config.base_url == "http://localhost:9000/api"
    assert (config.block_size, config.max_in_flight) == (12, 4)


def test_missing_credentials_say_where_to_put_them(tmp_path: Path) -> None:
    path = write(tmp_path, "block_size = 5\n")
    (tmp_path / "id-only").mkdir()
    secret_only = write(tmp_path / "id-only", 'client_id = "me"\n')

    with pytest.raises(ConfigurationError) as both:
        ClientConfig.from_toml(path, NO_ENV)
    with pytest.raises(ConfigurationError) as one:
        ClientConfig.from_toml(secret_only, NO_ENV)

    assert str(both.value) == (
        f"{path}: client_id and client_secret missing: put them in the file or set "
        "POWERP_CLIENT_ID and POWERP_CLIENT_SECRET"
    )
    assert str(one.value) == (
        f"{secret_only}: client_secret missing: put it in the file or set "
        "POWERP_CLIENT_SECRET"
    )


def test_a_missing_file_is_one_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, NO_ENV)

    assert str(caught.value) == (
        f"{path}: cannot read the configuration file (No such file or directory)"
    )


def test_broken_toml_names_the_line_and_never_the_text(tmp_path: Path) -> None:
    path = write(tmp_path, f'client_id = "a"\nclient_secret = "{SECRET}\n')

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, NO_ENV)

    message = str(caught.value)
    assert message.startswith(f"{path}: not valid TOML: ")
    assert "line 2" in message
    assert SECRET not in message


def test_a_file_not_in_utf8_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "powerp.toml"
    path.write_bytes(b'client_id = "a"\n\xff\xfe bad')
    path.chmod(0o600)

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, NO_ENV)

    assert str(caught.value) == (
        f"{path}: expected a TOML file in UTF-8, got a byte that is not UTF-8 at "
        "offset 16"
    )


def test_a_byte_order_mark_an_editor_wrote_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "powerp.toml"
    path.write_bytes(f'\ufeffclient_id = "a"\r\nbase_url = "{URL}"\r\n'.encode())

    config = ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": SECRET})

    assert (config.client_id, config.base_url) == ("a", URL)


def test_a_file_far_too_large_is_refused_unread(tmp_path: Path) -> None:
    path = write(tmp_path, f'client_id = "a"\n# {"-" * 1024 * 1024}\n')

    with pytest.raises(ConfigurationError) as caught:
        ClientConfig.from_toml(path, NO_ENV)

    assert str(caught.value) == (
        f"{path}: larger than 1024 KiB, far more than a configuration file holds; "
        "is it the right file?"
    )


def test_a_path_from_the_home_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    write(tmp_path, 'client_id = "home"\n')

    config = ClientConfig.from_toml("~/powerp.toml", {"POWERP_CLIENT_SECRET": "s"})

    assert config.client_id == "home"


@pytest.mark.parametrize("blank", ["", "  "])
def test_a_blank_address_in_the_environment_is_refused_not_taken_for_the_default(
    tmp_path: Path, blank: str
) -> None:
    environ = {
        "POWERP_CLIENT_ID": "demo",
        "POWERP_CLIENT_SECRET": SECRET,
        "POWERP_API_BASE_URL": blank,
    }
    message = "POWERP_API_BASE_URL is set but empty; unset it to use the default"
    with pytest.raises(ConfigurationError, match=message):
        ClientConfig.from_env(environ)

    path = write(tmp_path, f'base_url = "{URL}"\n')
    with pytest.raises(ConfigurationError, match=message):
        ClientConfig.from_toml(path, environ)

    # An address given outright needs nothing from the environment.
    assert ClientConfig.from_env(environ, base_url=URL).base_url == URL
    assert ClientConfig.from_toml(path, environ, base_url=URL).base_url == URL


@pytest.mark.parametrize("port", ["99999", "http", "-1"])
def test_an_address_with_no_valid_port_is_refused(port: str) -> None:
    address = f"http://127.0.0.1:{port}/rt-api/api"
    with pytest.raises(ConfigurationError) as caught:
        ClientConfig("demo", SECRET, base_url=address)

    assert str(caught.value) == (
        f"base_url: {address!r} names no valid port; a port is a number from 1 to 65535"
    )
