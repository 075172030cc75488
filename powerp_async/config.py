"""Client configuration: one frozen object, validated before any request is sent."""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final, TypedDict, Unpack
from urllib.parse import urlsplit

from ._config_file import (
    named_with_file,
    refuse_blank_base_url,
    settings_from_file,
)
from ._rate_backend import check_backend_url, check_key
from ._redact import MASK, SecretText, mask_url
from .errors import ConfigurationError
from .models import MAX_SIGNALS_PER_QUERY

DEFAULT_BASE_URL: Final = "https://tenant.powerp.app/rt-api/api"
"""The notebook's default. Nothing in this project's tests or demos ever sends here."""

DEFAULT_BLOCK_SIZE: Final = MAX_SIGNALS_PER_QUERY
DEFAULT_INITIAL_RATE: Final = 4.0
DEFAULT_MAX_IN_FLIGHT: Final = 128
DEFAULT_TIMEOUT_S: Final = 60.0
DEFAULT_MAX_ATTEMPTS: Final = 8
DEFAULT_MAX_OUTAGE_S: Final = 300.0
MAX_IN_FLIGHT: Final = 1024
"""More concurrent requests than this would only queue inside the client."""

ENV_CLIENT_ID: Final = "POWERP_CLIENT_ID"
ENV_CLIENT_SECRET: Final = "POWERP_CLIENT_SECRET"
ENV_BASE_URL: Final = "POWERP_API_BASE_URL"


class ClientSettings(TypedDict, total=False):
    """The fields of :class:`ClientConfig` as keywords, each optional: what
    ``PowerPClient(...)``, ``from_env`` and ``with_changes`` take, so that a type
    checker catches a misspelt or mistyped setting before it runs. A key left out
    keeps its default, or its value from the environment or file.

    >>> settings: ClientSettings = {"max_rate": 50.0, "adaptive": False}
    >>> base = ClientConfig("demo", "s", base_url="http://127.0.0.1:8765/rt-api/api")
    >>> base.with_changes(**settings).max_rate
    50.0
    """

    client_id: str
    client_secret: str
    base_url: str
    block_size: int
    max_rate: float | None
    initial_rate: float
    adaptive: bool
    max_in_flight: int
    timeout_s: float
    max_attempts: int
    max_outage_s: float
    compression: bool | None
    verify_tls: bool
    allow_insecure_http: bool
    rate_backend: str | None
    rate_key: str | None


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """Everything a :class:`~powerp_async.PowerPClient` needs, checked up front.

    The pace is discovered from the server's answers, starting at ``initial_rate``
    requests per second; ``max_rate`` caps it where the limit is known, and
    ``adaptive=False`` holds exactly ``max_rate`` instead. ``timeout_s`` bounds one
    request from send to the last byte; ``max_outage_s`` is how long a run waits for
    a server that fails every request. Plain ``http://`` is refused for any host but
    loopback unless ``allow_insecure_http`` is set, so credentials never cross a
    network in clear text by accident. ``client_secret`` is kept as a string whose
    ``repr`` is masked, so that printing the configuration taken apart (with
    ``dataclasses.asdict``, say) does not show it.

    ``rate_backend`` (``redis://HOST:PORT[/DB]``, needs the ``redis`` extra) shares
    the pace with every process that names the same backend and tenant key: with
    ``adaptive=False``, the fixed pace of ``max_rate``, which together they never
    exceed; otherwise a rate they discover together from the server's answers, within
    ``max_rate`` if given. The key is derived from ``base_url`` and ``client_id``
    unless ``rate_key`` names it.

    >>> ClientConfig("demo", "s", base_url="http://127.0.0.1:8765/rt-api/api")
    ... # doctest: +ELLIPSIS
    ClientConfig(base_url='http://127.0.0.1:8765/rt-api/api', client_id='demo', ...)
    """

    client_id: str
    client_secret: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    block_size: int = DEFAULT_BLOCK_SIZE
    max_rate: float | None = None
    initial_rate: float = DEFAULT_INITIAL_RATE
    adaptive: bool = True
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_outage_s: float = DEFAULT_MAX_OUTAGE_S
    compression: bool | None = None
    verify_tls: bool = True
    allow_insecure_http: bool = False
    rate_backend: str | None = None
    rate_key: str | None = None

    def __post_init__(self) -> None:
        _check_types(self)
        object.__setattr__(self, "base_url", self.base_url.strip().rstrip("/"))
        object.__setattr__(self, "client_secret", SecretText(self.client_secret))
        # Blank is as good as empty: no server issues a token for spaces alone.
        _require(bool(self.client_id.strip()), "client_id", "a non-blank client id")
        _require(
            bool(self.client_secret.strip()), "client_secret", "a non-blank secret"
        )
        # A line break read from a file with the value is the usual cause; the
        # server would refuse the credentials without saying why. The value itself
        # is never shown.
        for name, value in (
            ("client_id", self.client_id),
            ("client_secret", self.client_secret),
        ):
            _require(
                not _CONTROL_CHARACTERS.search(value),
                name,
                "no control characters, such as a line break read from a file",
            )
            _require(
                _is_utf8_text(value),
                name,
                "UTF-8 text, not bytes of another encoding (as an environment "
                "variable set from a file saved in Latin-1 holds)",
            )
        _require(
            1 <= self.block_size <= MAX_SIGNALS_PER_QUERY,
            "block_size",
            f"an integer from 1 to {MAX_SIGNALS_PER_QUERY} (the API's limit)",
            self.block_size,
        )
        _require(
            self.max_rate is None or 0.001 <= self.max_rate < math.inf,
            "max_rate",
            "requests per second from 0.001 up (unset, the rate is discovered)",
            self.max_rate,
        )
        _require(
            0.001 <= self.initial_rate < math.inf,
            "initial_rate",
            "requests per second from 0.001 up",
            self.initial_rate,
        )
        _require(
            self.adaptive or self.max_rate is not None,
            "max_rate",
            "a rate when adaptive=False (a fixed pace needs to be told its rate)",
        )
        _require(
            0 < self.max_outage_s < math.inf,
            "max_outage_s",
            "seconds > 0",
            self.max_outage_s,
        )
        _require(
            1 <= self.max_in_flight <= MAX_IN_FLIGHT,
            "max_in_flight",
            f"1 to {MAX_IN_FLIGHT}",
            self.max_in_flight,
        )
        _require(
            0 < self.timeout_s < math.inf, "timeout_s", "seconds > 0", self.timeout_s
        )
        _require(
            self.max_attempts >= 1, "max_attempts", "at least 1", self.max_attempts
        )
        self._check_url()
        self._check_rate_backend()

    def __repr__(self) -> str:
        shared = ""
        if self.rate_backend is not None:
            shared = f", rate_backend={mask_url(self.rate_backend)!r}"
        return (
            f"ClientConfig(base_url={mask_url(self.base_url)!r}, "
            f"client_id={self.client_id!r}, client_secret={MASK!r}, "
            f"block_size={self.block_size}, max_rate={self.max_rate}, "
            f"adaptive={self.adaptive}, max_in_flight={self.max_in_flight}, "
            f"timeout_s={self.timeout_s}{shared})"
        )

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        **overrides: Unpack[ClientSettings],
    ) -> ClientConfig:
        """Read ``POWERP_CLIENT_ID``, ``..._SECRET`` and ``..._API_BASE_URL``.

        Keyword ``overrides`` win over the environment.
        """
        env = os.environ if environ is None else environ
        if overrides.get("base_url") is None:
            refuse_blank_base_url(env)
        values: dict[str, Any] = {
            "client_id": env.get(ENV_CLIENT_ID, ""),
            "client_secret": env.get(ENV_CLIENT_SECRET, ""),
            "base_url": env.get(ENV_BASE_URL) or DEFAULT_BASE_URL,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        if not values["client_id"] or not values["client_secret"]:
            raise ConfigurationError(
                f"credentials missing: set {ENV_CLIENT_ID} and {ENV_CLIENT_SECRET} "
                "(or pass client_id and client_secret)"
            )
        return cls(**values)

    @classmethod
    def from_toml(
        cls,
        path: str | os.PathLike[str],
        environ: Mapping[str, str] | None = None,
        **overrides: Unpack[ClientSettings],
    ) -> ClientConfig:
        """Read the settings from a TOML file whose keys are this class's fields.

        Precedence, highest first: keyword ``overrides``, then ``POWERP_CLIENT_ID``,
        ``..._SECRET`` and ``..._API_BASE_URL``, then the file. Unknown keys and values
        of the wrong type are refused, naming the key. ``client_secret`` is accepted in
        the file only if group and others cannot read it (``chmod 600``); otherwise
        set it in the environment. A leading ``~`` in ``path`` is expanded.

        >>> import pathlib, tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = pathlib.Path(folder, "powerp.toml")
        ...     _ = path.write_text('client_id = "demo"\\nblock_size = 20\\n')
        ...     config = ClientConfig.from_toml(path, {"POWERP_CLIENT_SECRET": "s3"})
        >>> config.client_id, config.block_size
        ('demo', 20)
        """
        env = os.environ if environ is None else environ
        file = Path(path).expanduser()
        settings, from_file = settings_from_file(cls, file, env, overrides)
        try:
            return cls(**settings)
        except ConfigurationError as error:
            raise named_with_file(file, error, from_file) from None

    @property
    def wants_compression(self) -> bool:
        """Ask for gzip unless told otherwise, except from a loopback server, where
        compressing only costs CPU on both sides."""
        if self.compression is not None:
            return self.compression
        return not is_loopback(urlsplit(self.base_url).hostname or "")

    def with_changes(self, **changes: Unpack[ClientSettings]) -> ClientConfig:
        """A copy with some fields changed, validated again."""
        return replace(self, **changes)

    def _check_url(self) -> None:
        try:
            parts = urlsplit(self.base_url)
            host = parts.hostname or ""
        except ValueError:
            parts, host = None, ""
        try:
            _ = parts and parts.port
        except ValueError:
            raise ConfigurationError(
                f"base_url: {mask_url(self.base_url)!r} names no valid port; a port "
                "is a number from 1 to 65535"
            ) from None
        if parts is None or parts.scheme not in ("http", "https") or not host:
            raise ConfigurationError(
                f"base_url: expected an http(s) URL such as {DEFAULT_BASE_URL!r}, "
                f"got {mask_url(self.base_url)!r}"
            )
        if parts.username is not None or parts.password is not None:
            # aiohttp would send them as Basic auth, which clashes with both the
            # token request's form credentials and the bearer token of every query.
            raise ConfigurationError(
                f"base_url: {mask_url(self.base_url)!r} holds credentials; the API "
                "takes client_id and client_secret instead, so remove 'user:...@'"
            )
        if "?" in self.base_url or "#" in self.base_url:
            # The API's paths are appended to the base URL, so a query would end up
            # in the middle of every request's path. Not shown: it may hold a key.
            bare = parts._replace(query="", fragment="").geturl()
            raise ConfigurationError(
                f"base_url: {mask_url(bare)!r} is followed by a query or fragment "
                "('?...' or '#...'), which the API's paths cannot follow; remove it"
            )
        if parts.scheme == "http" and not (
            is_loopback(host) or self.allow_insecure_http
        ):
            raise ConfigurationError(
                f"base_url: plain http to {host!r} would send credentials unencrypted; "
                "use https, or set allow_insecure_http=True if you really mean it"
            )

    def _check_rate_backend(self) -> None:
        if self.rate_backend is None:
            _require(
                self.rate_key is None,
                "rate_key",
                "a rate_backend (--rate-backend) to go with it",
            )
            return

        check_backend_url(self.rate_backend)
        if self.rate_key is not None:
            check_key(self.rate_key)


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses (127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_FIELD_TYPES: Final[Mapping[str, tuple[tuple[type, ...], str]]] = MappingProxyType(
    {
        "client_id": ((str,), "a string"),
        "client_secret": ((str,), "a string"),
        "base_url": ((str,), "a string"),
        "block_size": ((int,), "an integer"),
        "max_rate": ((int, float, type(None)), "a number or None"),
        "initial_rate": ((int, float), "a number"),
        "adaptive": ((bool,), "True or False"),
        "max_in_flight": ((int,), "an integer"),
        "timeout_s": ((int, float), "a number"),
        "max_attempts": ((int,), "an integer"),
        "max_outage_s": ((int, float), "a number"),
        "compression": ((bool, type(None)), "True, False or None"),
        "verify_tls": ((bool,), "True or False"),
        "allow_insecure_http": ((bool,), "True or False"),
        "rate_backend": ((str, type(None)), "a URL or None"),
        "rate_key": ((str, type(None)), "a string or None"),
    }
)
"""Each setting's accepted types, checked before its value is: a value of the wrong
type is named as such, not met later as an error of Python's own."""


def _check_types(config: ClientConfig) -> None:
    for name, (types, expected) in _FIELD_TYPES.items():
        value = getattr(config, name)
        # bool is an int to Python, never a count or a rate to a user.
        if isinstance(value, types) and (bool in types or not isinstance(value, bool)):
            continue

        # The secret's value is never shown, even a wrong one.
        kind = type(value).__name__
        shown = kind if name == "client_secret" else f"{kind} {value!r:.60}"
        raise ConfigurationError(f"{name}: expected {expected}, got {shown}")


_CONTROL_CHARACTERS: Final = re.compile(r"[\x00-\x1f\x7f]")


def _is_utf8_text(value: str) -> bool:
    """Whether ``value`` can be sent as UTF-8: text the system read from bytes of
    another encoding keeps each such byte as a lone surrogate, which none holds."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _require(ok: bool, name: str, expected: str, got: object = None) -> None:
    if not ok:
        shown = "" if got is None else f", got {got!r}"
        raise ConfigurationError(f"{name}: expected {expected}{shown}")
