"""The client settings that travel to the workers with every task: none secret.

A worker builds its client from its own environment (``POWERP_CLIENT_ID``,
``POWERP_CLIENT_SECRET``, ``POWERP_API_BASE_URL``, read by
:meth:`~powerp_async.ClientConfig.from_env`) with these settings on top. The client
secret is not a field, so no task argument, task repr, Dask log line or pickled task
can hold it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .._rate_backend import backend_password
from .._redact import mask_url
from ..config import ClientConfig
from ..errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class WorkerSettings:
    """A :class:`~powerp_async.ClientConfig` without the credentials.

    ``rate_backend`` may not hold a password: it would travel in the clear with every
    task (see the README's Dask section for sharing a pace through such a server).

    >>> config = ClientConfig("demo", "s3cret", base_url="http://127.0.0.1:8/api")
    >>> settings = WorkerSettings.from_config(config)
    >>> "s3cret" in repr(settings), settings.base_url
    (False, 'http://127.0.0.1:8/api')
    """

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

    def __post_init__(self) -> None:
        if self.rate_backend is not None and backend_password(self.rate_backend):
            raise ConfigurationError(
                f"rate_backend: expected a URL without a password for a Dask export, "
                f"got {mask_url(self.rate_backend)!r}; the URL travels to the "
                "workers with every task, and a password must not"
            )

    @classmethod
    def from_config(cls, config: ClientConfig) -> WorkerSettings:
        """Everything of ``config`` but its client id and secret."""
        return cls(
            base_url=config.base_url,
            block_size=config.block_size,
            max_rate=config.max_rate,
            initial_rate=config.initial_rate,
            adaptive=config.adaptive,
            max_in_flight=config.max_in_flight,
            timeout_s=config.timeout_s,
            max_attempts=config.max_attempts,
            max_outage_s=config.max_outage_s,
            compression=config.compression,
            verify_tls=config.verify_tls,
            allow_insecure_http=config.allow_insecure_http,
            rate_backend=config.rate_backend,
            rate_key=config.rate_key,
        )

    def client_config(self, environ: dict[str, str] | None = None) -> ClientConfig:
        """The worker's configuration: credentials from its environment, the rest
        from here; raises :class:`ConfigurationError` naming what is missing."""
        # Fields left None are left to ClientConfig's defaults, which are None too.
        fields: dict[str, Any] = asdict(self)
        return ClientConfig.from_env(environ, **fields)
