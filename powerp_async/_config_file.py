"""Client settings from a TOML file, checked key by key before any request is sent.

The file holds top-level keys named like the fields of ``ClientConfig``::

    client_id = "reporting"
    base_url = "https://tenant.powerp.app/rt-api/api"
    block_size = 20
    max_rate = 50.0

Precedence, highest first: explicit arguments, then the ``POWERP_*`` environment
variables, then the file, then the defaults. The client secret may sit in the file
only if neither group nor others can read or change it (``chmod 600``); otherwise it
belongs in ``POWERP_CLIENT_SECRET``. A file anyone can change is refused whatever it
holds: its ``base_url`` decides where the credentials go. Fields whose default is
``None`` (``max_rate``, ``compression``) are left out of the file to keep that
default, since TOML has no null. A ``rate_backend`` URL with a password in it is
held to the same rule as the secret. On Windows, where POSIX modes mean nothing, the
permission check is skipped.
"""

from __future__ import annotations

import dataclasses
import os
import stat
import sys
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from ._rate_backend import backend_password
from .errors import ConfigurationError

SECRET_FIELD: Final = "client_secret"
BACKEND_FIELD: Final = "rate_backend"
MAX_FILE_BYTES: Final = 1024 * 1024
"""The most a configuration file is read: a few lines are all it needs."""

ENVIRONMENT: Final = {
    "client_id": "POWERP_CLIENT_ID",
    "client_secret": "POWERP_CLIENT_SECRET",
    "base_url": "POWERP_API_BASE_URL",
}
"""The fields the environment can set, by variable."""

_KIND_NAMES: Final = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true or false",
}


def refuse_blank_base_url(environ: Mapping[str, str]) -> None:
    """Refuse ``POWERP_API_BASE_URL`` set to nothing: taken as unset, it would send
    the credentials meant for some other server to the default one."""
    variable = ENVIRONMENT["base_url"]
    value = environ.get(variable)
    if value is not None and not value.strip():
        raise ConfigurationError(
            f"{variable} is set but empty; unset it to use the default address, or "
            "set it to the API's address"
        )


def settings_from_file(
    config_type: type[Any],
    path: Path,
    environ: Mapping[str, str],
    overrides: Mapping[str, Any],
) -> tuple[dict[str, Any], frozenset[str]]:
    """The keyword arguments of ``config_type`` (file, environment, then overrides),
    and the keys whose values came from the file."""
    values = read_settings(config_type, path)
    from_file = set(values)
    for field_name, variable in ENVIRONMENT.items():
        if environ.get(variable):
            values[field_name] = environ[variable]
            from_file.discard(field_name)
    if overrides.get("base_url") is None:
        refuse_blank_base_url(environ)

    given = {k: v for k, v in overrides.items() if v is not None}
    values.update(given)
    from_file -= set(given)
    missing = [name for name in ("client_id", SECRET_FIELD) if not values.get(name)]
    if missing:
        variables = " and ".join(ENVIRONMENT[name] for name in missing)
        them = "them" if len(missing) > 1 else "it"
        raise ConfigurationError(
            f"{path}: {' and '.join(missing)} missing: put {them} in the file or set "
            f"{variables}"
        )
    return values, frozenset(from_file)


def named_with_file(
    path: Path, error: ConfigurationError, from_file: frozenset[str]
) -> ConfigurationError:
    """``error``, of a value the config refused, naming ``path`` where the key it
    names took its value from the file rather than the environment or an argument."""
    key = str(error).split(":", 1)[0]
    return ConfigurationError(f"{path}: {error}") if key in from_file else error


def read_settings(config_type: type[Any], path: Path) -> dict[str, Any]:
    """The file's settings, each checked against the field it names."""
    raw = _parse(path)
    kinds = _field_kinds(config_type)
    unknown = sorted(set(raw) - set(kinds))
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"known keys: {', '.join(sorted(kinds))}"
        )

    _check_not_open(path)
    if SECRET_FIELD in raw:
        _check_private(path)
    if isinstance(raw.get(BACKEND_FIELD), str) and backend_password(raw[BACKEND_FIELD]):
        _check_private(path, holds="a password in rate_backend")
    return {
        name: _checked(path, name, value, kinds[name]) for name, value in raw.items()
    }


def _parse(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            # Read no further than a settings file can reach: /dev/zero, or a log
            # given by mistake, would otherwise fill the memory.
            content = handle.read(MAX_FILE_BYTES + 1)
        if len(content) > MAX_FILE_BYTES:
            raise ConfigurationError(
                f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB, far more than a "
                "configuration file holds; is it the right file?"
            )
        # A byte-order mark, which some editors write, is no part of TOML.
        return tomllib.loads(content.decode("utf-8").removeprefix("\ufeff"))
    except OSError as error:
        raise ConfigurationError(
            f"{path}: cannot read the configuration file ({error.strerror or error})"
        ) from None
    except tomllib.TOMLDecodeError as error:
        # The parser's message gives a line and column, never the file's text.
        raise ConfigurationError(f"{path}: not valid TOML: {error}") from None
    except UnicodeDecodeError as error:
        # Its text quotes the bytes, which could be part of a secret: give the place.
        raise ConfigurationError(
            f"{path}: expected a TOML file in UTF-8, got a byte that is not UTF-8 at "
            f"offset {error.start}"
        ) from None


def _field_kinds(config_type: type[Any]) -> dict[str, type]:
    """Each field's value type, with ``X | None`` read as ``X``."""
    hints = typing.get_type_hints(config_type)
    kinds: dict[str, type] = {}
    for field in dataclasses.fields(config_type):
        hint = hints[field.name]
        if isinstance(hint, types.UnionType):
            hint = next(arg for arg in typing.get_args(hint) if arg is not type(None))
        kinds[field.name] = hint

    return kinds


def _checked(path: Path, name: str, value: object, kind: type) -> object:
    if _is_kind(value, kind):
        return float(value) if kind is float else value  # type: ignore[arg-type]

    came = _describe(value, show=name != SECRET_FIELD)
    raise ConfigurationError(
        f"{path}: {name}: expected {_KIND_NAMES.get(kind, kind.__name__)}, got {came}"
    )


def _is_kind(value: object, kind: type) -> bool:
    if kind is bool or isinstance(value, bool):
        return kind is bool and isinstance(value, bool)
    if kind is float:
        return isinstance(value, int | float)
    return isinstance(value, kind)


def _describe(value: object, *, show: bool) -> str:
    """What came, in TOML's words; the value itself only where it is no secret.

    No string is shown under any key: a secret pasted under the wrong one would be.
    """
    kinds = [(bool, "a boolean"), (int, "an integer"), (float, "a float")]
    kinds += [(str, "a string"), (list, "an array"), (dict, "a table")]
    name = next((text for t, text in kinds if isinstance(value, t)), "a date or time")
    scalar = isinstance(value, bool | int | float)
    return f"{name} ({value!r})" if show and scalar else name


def _check_not_open(path: Path) -> None:
    """Refuse a file that anyone may change: its ``base_url`` decides where the
    credentials go, wherever the secret itself comes from."""
    if sys.platform == "win32":
        return

    mode = os.stat(path).st_mode
    if mode & stat.S_IWOTH:
        raise ConfigurationError(
            f"{path} can be changed by anyone (mode {stat.S_IMODE(mode):03o}), and "
            "with it the server your credentials are sent to; run "
            f"'chmod o-w {path}'"
        )


def _check_private(path: Path, holds: str = SECRET_FIELD) -> None:
    """Refuse a secret in a file that others can read, or change to send it
    elsewhere: it would be theirs too."""
    if sys.platform == "win32":
        return

    mode = os.stat(path).st_mode
    if not mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IWGRP | stat.S_IWOTH):
        return

    shown = f"{path} holds {holds} but can be read or changed by group or others "
    shown += f"(mode {stat.S_IMODE(mode):03o}); run 'chmod 600 {path}'"
    if holds == SECRET_FIELD:
        shown += (
            f", or remove client_secret from it and set {ENVIRONMENT[SECRET_FIELD]} "
            "instead"
        )
    raise ConfigurationError(shown)
