"""The async client: one aiohttp session, one token, one pace, many queries.

>>> async with PowerPClient.from_env() as client:          # doctest: +SKIP
...     signals = await client.measurements()
...     async with client.fetch(signals, start, end, window="1s") as results:
...         async for result in results:
...             print(result.block.describe(), result.batch.num_rows)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import warnings
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self, Unpack

import aiohttp
import anyio
import orjson
import pyarrow as pa

from ._arguments import (
    as_block_size,
    as_config,
    as_database_id,
    as_indexes,
    as_moment,
    as_signals,
)
from ._assembly import BlockResult
from ._engine import (
    EXPORT_ADVICE,
    FETCH_ADVICE,
    Engine,
    EngineSettings,
    RunStats,
    StopAdvice,
)
from ._frames import import_pandas, points_frame
from ._hooks import check_hook
from ._http import AnswerTooLongError, error_for, send
from ._redact import excerpt, mask_url
from ._retry import backoff_s
from ._streams import stream_context
from ._time import format_wire, parse_duration_us, parse_wire_zoned, to_epoch_us
from ._token import TokenManager
from ._wire import json_kind
from .config import ClientConfig, ClientSettings
from .control import AdaptivePacer, RateController, RateSettings, SizeMemory
from .errors import (
    ConfigurationError,
    FetchFailedError,
    MalformedResponseError,
    PowerPError,
    ServerError,
    ThrottledError,
    TransportError,
)
from .events import EventHook
from .models import (
    AGGREGATIONS,
    LOCAL_TIME_LEAD_US,
    MAX_QUERY_SPAN_US,
    MAX_SIGNALS_PER_QUERY,
    POINT_SCHEMA,
    Block,
    Measurement,
)
from .pacing import FixedPacer, Pacer
from .planning import TimeRange, ends_after_now, plan_blocks

if TYPE_CHECKING:
    import pandas as pd

logger = logging.getLogger("powerp_async.client")

MAX_LISTING_BYTES: Final = 512 << 20
"""A million signals at 500 bytes each (the demo tenant's take some 210): a listing
that runs past this is not read on, where an endless one would fill the memory."""

LISTING_ATTEMPTS = 4


class PowerPClient:
    """An async context manager over one HTTP session to the PowerP API.

    Build it from a :class:`ClientConfig`, from keyword arguments, or from the
    ``POWERP_*`` environment variables with :meth:`from_env`. A closed client cannot be
    used again.

    >>> PowerPClient(client_id="demo", client_secret="s",
    ...              base_url="http://127.0.0.1:8765/rt-api/api")
    <PowerPClient http://127.0.0.1:8765/rt-api/api new>

    Example::

        async with PowerPClient.from_env() as client:
            signals = await client.measurements()
            frame = await client.fetch_frame(signals[:20], start, end, window="1m")
    """

    def __init__(
        self,
        config: ClientConfig | None = None,
        *,
        pacer: Pacer | None = None,
        on_event: EventHook | None = None,
        **settings: Unpack[ClientSettings],
    ) -> None:
        if config is None:
            config = ClientConfig(**settings)
        elif settings:
            config = as_config(config).with_changes(**settings)
        else:
            config = as_config(config)
        self.config = config
        # A pacer the client made is the client's to close (a shared one holds a
        # connection); one it was given stays open for its owner.
        self._owns_pacer = pacer is None
        self._pacer = pacer or default_pacer(config)
        check_hook("on_event", on_event)
        self._on_event = on_event
        # The signals of the latest listing: query() places values by their types.
        self._listed: list[Measurement] = []
        # What a 413 taught holds for the server, not for one call: every later call
        # goes out cut to fit rather than learn it again.
        self._sizes = SizeMemory()
        self._session: aiohttp.ClientSession | None = None
        self._tokens: TokenManager | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    @classmethod
    def from_env(
        cls,
        *,
        pacer: Pacer | None = None,
        on_event: EventHook | None = None,
        **overrides: Unpack[ClientSettings],
    ) -> Self:
        """A client configured from ``POWERP_*`` variables, ``overrides`` on top;
        ``pacer`` and ``on_event`` are those of the constructor."""
        config = ClientConfig.from_env(**overrides)
        return cls(config, pacer=pacer, on_event=on_event)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open" if self._session else "new"
        return f"<PowerPClient {mask_url(self.config.base_url)} {state}>"

    async def __aenter__(self) -> Self:
        if self._closed:
            raise RuntimeError("this PowerPClient is closed; create a new one")

        if self._session is not None:
            raise RuntimeError("this PowerPClient is open already; enter it once")

        self._loop = asyncio.get_running_loop()
        await self._check_pacer()
        connector = aiohttp.TCPConnector(
            limit=self.config.max_in_flight + 2,
            ssl=self.config.verify_tls,
        )
        # Bodies are decompressed as they are read, within their allowance (_http).
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=False
        )
        self._tokens = TokenManager(
            self._session,
            f"{self.config.base_url}/v1/auth/token",
            self.config.client_id,
            self.config.client_secret,
            timeout_s=self.config.timeout_s,
            max_wait_s=self.config.max_outage_s,
        )
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session, and the pacer the client made; safe to call twice, from
        the event loop the client was opened in."""
        if self._session is not None:
            self._open()  # its connections close in their own loop only
        self._closed = True
        if self._session is not None:
            await self._session.close()
            self._session = None

        close_pacer = getattr(self._pacer, "aclose", None)
        if self._owns_pacer and close_pacer is not None:
            self._owns_pacer = False
            await close_pacer()

    async def _check_pacer(self) -> None:
        """Refuse, before anything is sent, a pacer that cannot work (a shared pace
        whose backend does not answer); the pacer is closed if it is the client's."""
        check = getattr(self._pacer, "acheck", None)
        if check is None:
            return

        try:
            await check()
        except BaseException:
            await self.aclose()
            raise

    def __del__(self) -> None:
        session = getattr(self, "_session", None)  # __init__ may have failed early
        if session is None or session.closed:
            return

        # At interpreter exit the warnings machinery may be gone already; a client
        # left open then is not worth a traceback on the way out.
        with contextlib.suppress(Exception):
            warnings.warn(
                f"{self!r} was not closed; use 'async with PowerPClient(...)'",
                ResourceWarning,
                stacklevel=1,
            )

    @property
    def pacer(self) -> Pacer:
        return self._pacer

    async def measurements(self, *, attempts: int | None = None) -> list[Measurement]:
        """Every signal the credentials can see (``GET /v1/measurements``).

        Throttling, server errors and broken connections are retried, as for queries:
        up to ``attempts`` tries in all (default 4, or ``max_attempts`` if fewer).
        """
        # Fewer tries than for a block: a wrong address fails in seconds, not after
        # a minute of backoff; and no longer a wait in all than ``max_outage_s``,
        # whatever Retry-After says. An export waits longer for a server that is
        # down as it starts (``_export._listing``).
        if attempts is None:
            attempts = min(LISTING_ATTEMPTS, self.config.max_attempts)
        elif (
            isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1
        ):
            raise ConfigurationError(
                f"attempts: expected an integer of 1 or more, got {attempts!r:.60}"
            )

        _, tokens = self._open()
        waited_s = 0.0
        for attempt in range(1, attempts + 1):
            # Outside the retries: the token endpoint's failures were retried where
            # the token is fetched, and trying again here would multiply the tries.
            await tokens.token()
            try:
                self._listed = await self._list_measurements()
                return self._listed
            except (ThrottledError, ServerError, TransportError) as error:
                left_s = self.config.max_outage_s - waited_s
                if attempt == attempts or left_s <= 0:
                    raise
                delay = getattr(error, "retry_after", None) or backoff_s(attempt)
                delay = min(delay, left_s)
                waited_s += delay
                logger.warning("listing failed (%s); retrying in %.1f s", error, delay)
                await anyio.sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")

    async def _list_measurements(self, renewed: bool = False) -> list[Measurement]:
        session, tokens = self._open()
        url = f"{self.config.base_url}/v1/measurements"
        token = await tokens.token()
        try:
            response = await send(
                session,
                "GET",
                url,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json",
                },
                timeout_s=self.config.timeout_s,
                max_bytes=MAX_LISTING_BYTES,
            )
        except AnswerTooLongError as error:
            raise MalformedResponseError(
                f"listing measurements: the answer ran past {error.max_bytes:,} "
                "bytes, more than a listing of a million signals takes; the rest was "
                "not read",
                url=mask_url(url),
            ) from None
        if response.status == 401 and not renewed:
            await tokens.renew_after_rejection(token)
            return await self._list_measurements(renewed=True)
        if response.status >= 300:
            raise error_for(
                response, method="GET", url=url, what="listing measurements"
            )
        return _parse_measurements(response.body, mask_url(url))

    async def query(
        self,
        database_id: int,
        indexes: Sequence[str | int],
        start: datetime,
        end: datetime,
        *,
        aggregation: str = "last",
        window: str = "1s",
        stats: RunStats | None = None,
    ) -> pa.Table:
        """One query, sent as given: at most 20 signals over less than 30 minutes.

        The times are not moved to the window grid, so an unaligned start gives a
        partial first window, exactly as the server computes it. Use :meth:`fetch` for
        more signals, longer ranges or exact window alignment. A query the server
        refuses as too large (413, or held until ``timeout_s``) is cut in pieces on
        the window grid, its own edges kept, and the answers joined; the size learnt
        so holds for the client's later calls, as a fetch's does. A server that holds
        every query above an eighth of this one's size unanswered is taken for down.

        Values go to the column of their signal's type when :meth:`measurements` was
        called on this client before (a float signal's ``20`` is then a float, as in
        a fetch); otherwise to the column of their JSON type. Rows are sorted by
        signal and time, as :meth:`fetch_table` sorts them, whatever order the server
        answered in. Points the server sent twice, off the window grid, outside what
        was asked or with a time that is none are dropped with a warning, and
        counted in ``stats`` (:attr:`RunStats.dropped_points`) when one is given.
        """
        block = _single_block(database_id, indexes, start, end, aggregation, window)
        engine = self._engine(max_in_flight=1, isolate=False, stats=stats)
        engine.learn_types(self._listed)
        async with engine.run([block]) as results:
            outcome = [result async for result in results]
        _raise_failures(outcome)
        return _sorted_table([r.batch for r in outcome if r.batch])

    @stream_context
    async def fetch(
        self,
        signals: Iterable[Measurement],
        start: datetime,
        end: datetime,
        *,
        window: str = "1s",
        block_size: int | None = None,
        stats: RunStats | None = None,
    ) -> AsyncIterator[AsyncIterator[BlockResult]]:
        """Stream the points of many signals over a long range, block by block.

        The range is snapped to whole windows (see :class:`~powerp_async.TimeRange`).
        Results arrive in completion order with bounded memory. Blocks that fail after
        retries are held back until the stream ends, then raised together as
        :class:`~powerp_async.FetchFailedError`; everything else has been delivered.
        A signal the server refuses (400) does not cost the others of its block: the
        block arrives with their points, and the refused signal's part of it is among
        the failures (:attr:`BlockResult.refused` names it as it arrives).
        """
        signals = as_signals(signals)
        span = TimeRange.snap(
            as_moment("start", start), as_moment("end", end), _window_us(window)
        )
        block_size = as_block_size(block_size)
        if ends_after_now(span):
            logger.warning(
                "the range ends at %s, after now: the server has no data there yet, "
                "and the windows after now are asked for all the same",
                format_wire(span.end_us),
            )
        blocks = plan_blocks(
            signals, span, block_size=block_size or self.config.block_size
        )
        engine = self._engine(stats=stats)
        engine.learn_types(signals)
        failures: list[tuple[Block, BaseException]] = []

        async with engine.run(blocks) as results:
            yield _successes(results, failures)

        if failures:
            raise FetchFailedError(failures)

    async def fetch_table(
        self,
        signals: Iterable[Measurement],
        start: datetime,
        end: datetime,
        *,
        window: str = "1s",
        block_size: int | None = None,
    ) -> pa.Table:
        """All points of :meth:`fetch` as one table, sorted by signal and time.

        If some blocks fail, the :class:`~powerp_async.FetchFailedError` raised holds
        the table of every point that was fetched, as ``fetched``; so does the error
        that stops the run half way (an outage, refused credentials).
        """
        batches: list[pa.RecordBatch] = []
        try:
            async with self.fetch(
                signals, start, end, window=window, block_size=block_size
            ) as results:
                async for result in results:
                    assert result.batch is not None
                    batches.append(result.batch)
        except PowerPError as error:
            # Failed blocks, or a run stopped half way (an outage, say): what came
            # before is the caller's all the same.
            error.fetched = _sorted_table(batches)
            raise

        return _sorted_table(batches)

    @stream_context
    async def fetch_batches(
        self,
        signals: Iterable[Measurement],
        start: datetime,
        end: datetime,
        *,
        window: str = "1s",
        block_size: int | None = None,
    ) -> AsyncIterator[AsyncIterator[pa.RecordBatch]]:
        """:meth:`fetch` as plain Arrow record batches in :data:`POINT_SCHEMA`.

        One batch per block that has points (blocks with none are skipped), in
        completion order. A block that fails after retries does not stop the stream:
        every batch of the blocks that succeeded is delivered first, then leaving the
        ``async with`` raises :class:`~powerp_async.FetchFailedError` naming the failed
        blocks.

        Example::

            async with client.fetch_batches(signals, start, end) as batches:
                async for batch in batches:
                    writer.write_batch(batch)
        """
        async with self.fetch(
            signals, start, end, window=window, block_size=block_size
        ) as results:
            yield _batches(results)

    async def fetch_frame(
        self,
        signals: Iterable[Measurement],
        start: datetime,
        end: datetime,
        *,
        window: str = "1s",
        block_size: int | None = None,
    ) -> pd.DataFrame:
        """All points of :meth:`fetch` as a pandas DataFrame, with the signals'
        ``name``, ``unit`` and ``data_type`` joined on (database, index, aggregation).

        Needs the ``pandas`` extra. Timestamps are ``datetime64[us, UTC]``; the value
        columns are Arrow-backed, so integers stay exact and NaN stays apart from null
        (see :func:`~powerp_async.points_frame`). If some blocks fail, the
        :class:`~powerp_async.FetchFailedError` raised holds the DataFrame of every
        point that was fetched, as ``fetched``; so does the error that stops the run
        half way (an outage, refused credentials).

        Example::

            frame = await client.fetch_frame(signals[:20], start, end, window="1m")
            frame.groupby("name")["value_float"].mean()
        """
        import_pandas()  # fail before fetching anything, not after
        chosen = as_signals(signals)
        try:
            table = await self.fetch_table(
                chosen, start, end, window=window, block_size=block_size
            )
        except PowerPError as error:
            if error.fetched is not None:
                error.fetched = points_frame(error.fetched, chosen)
            raise

        return points_frame(table, chosen)

    def engine(self, *, stats: RunStats | None = None) -> Engine:
        """The worker pool of this client, for exporters that drive it directly: a
        run the server ends advises resuming the export."""
        return self._engine(stats=stats, advice=EXPORT_ADVICE)

    def _engine(
        self,
        *,
        max_in_flight: int | None = None,
        stats: RunStats | None = None,
        isolate: bool = True,
        advice: StopAdvice = FETCH_ADVICE,
    ) -> Engine:
        if stats is not None and not isinstance(stats, RunStats):
            # Taken for a RunStats, an empty dict would be ignored and its counts lost.
            raise ConfigurationError(
                f"stats: expected a RunStats or None, got {type(stats).__name__}"
            )
        session, tokens = self._open()
        settings = EngineSettings(
            query_url=f"{self.config.base_url}/v1/Query",
            max_in_flight=max_in_flight or self.config.max_in_flight,
            max_attempts=self.config.max_attempts,
            timeout_s=self.config.timeout_s,
            max_outage_s=self.config.max_outage_s,
            compression=self.config.wants_compression,
            isolate=isolate,
            advice=advice,
        )
        return Engine(
            session,
            tokens,
            self._pacer,
            settings,
            stats=stats,
            on_event=self._on_event,
            sizes=self._sizes,
        )

    def _open(self) -> tuple[aiohttp.ClientSession, TokenManager]:
        if self._session is None or self._tokens is None:
            state = "closed" if self._closed else "not open yet"
            raise RuntimeError(
                f"the client is {state}: use it inside 'async with PowerPClient(...)'"
            )

        if asyncio.get_running_loop() is not self._loop:
            # Its connections belong to the loop it was opened in.
            raise RuntimeError(
                "this PowerPClient was opened in another event loop; open a client "
                "in each loop that uses one"
            )
        return self._session, self._tokens


def default_pacer(config: ClientConfig) -> Pacer:
    """The pacer a client gets unless it is given one: adaptive, or fixed if asked,
    shared through ``config.rate_backend`` if one is named."""
    if config.rate_backend is not None:
        return _shared_pacer(config)

    if not config.adaptive:
        assert config.max_rate is not None  # checked by ClientConfig
        return FixedPacer(config.max_rate)

    ceiling = config.max_rate or math.inf
    limits = RateSettings(
        initial_rate=min(config.initial_rate, ceiling),
        min_rate=min(0.1, ceiling),
        max_rate=ceiling,
    )
    return AdaptivePacer(
        max_in_flight=config.max_in_flight, controller=RateController(limits)
    )


def _shared_pacer(config: ClientConfig) -> Pacer:
    """A :class:`~powerp_async.redis_pacing.RedisPacer` for a fixed rate, else an
    :class:`~powerp_async.redis_pacing.AdaptiveRedisPacer`; Redis is imported only
    here, since it is an optional extra."""
    try:
        from .redis_pacing import AdaptiveRedisPacer, RedisPacer
    except ModuleNotFoundError as error:
        if error.name is None or error.name.partition(".")[0] != "redis":
            raise
        raise ConfigurationError(
            "rate_backend: expected the redis extra to be installed, got no 'redis' "
            "module; pip install 'powerp-async[redis]'"
        ) from None

    if config.adaptive:
        return AdaptiveRedisPacer.for_tenant(config)

    return RedisPacer.for_tenant(config)


async def _successes(
    results: AsyncIterator[BlockResult], failures: list[tuple[Block, BaseException]]
) -> AsyncIterator[BlockResult]:
    async for result in results:
        if result.error is not None:
            failures.append((result.block, result.error))
        else:
            failures.extend(result.refused)
            yield result


async def _batches(
    results: AsyncIterator[BlockResult],
) -> AsyncIterator[pa.RecordBatch]:
    async for result in results:
        if result.batch is not None and result.batch.num_rows:
            yield result.batch


def _sorted_table(batches: list[pa.RecordBatch]) -> pa.Table:
    table = pa.Table.from_batches(batches, POINT_SCHEMA)
    return table.sort_by(
        [
            ("database_id", "ascending"),
            ("index", "ascending"),
            ("aggregation", "ascending"),
            ("timestamp", "ascending"),
        ]
    )


def _raise_failures(outcome: Sequence[BlockResult]) -> None:
    for result in outcome:
        if result.error is not None:
            raise result.error


def _window_us(window: str) -> int:
    try:
        return parse_duration_us(window)
    except ValueError as error:
        raise ConfigurationError(f"window: {error}") from None


def _single_block(
    database_id: int,
    indexes: Sequence[str | int],
    start: datetime,
    end: datetime,
    aggregation: str,
    window: str,
) -> Block:
    database_id = as_database_id(database_id)
    names = as_indexes(indexes)
    start, end = as_moment("start", start), as_moment("end", end)
    if not 1 <= len(names) <= MAX_SIGNALS_PER_QUERY:
        raise ConfigurationError(
            f"indexes: a query takes 1 to {MAX_SIGNALS_PER_QUERY} signals, got "
            f"{len(names)}; use fetch() to query more (powerp export on the command "
            "line), it splits them into blocks"
        )
    if not isinstance(aggregation, str) or not _AGGREGATION_NAME.fullmatch(aggregation):
        # Only the name's form is checked: the API's list of aggregations is not
        # published, and a server may well know more than the usual ones.
        raise ConfigurationError(
            f"aggregation: expected the name of one, such as "
            f"{', '.join(sorted(AGGREGATIONS))} (letters, digits and _), "
            f"got {aggregation!r}"
        )
    start_us, end_us = to_epoch_us(start), to_epoch_us(end)
    if not 0 < end_us - start_us < MAX_QUERY_SPAN_US:
        raise ConfigurationError(
            "end must be after start and less than 30 minutes later (the API's "
            "limit for one query); use fetch() for longer ranges (powerp export on "
            "the command line)"
        )
    return Block(database_id, aggregation, names, start_us, end_us, _window_us(window))


def _parse_measurements(body: bytes, url: str) -> list[Measurement]:
    """The listing's signals, each (database, index) once, in the server's order.

    A signal listed again is kept once, as first listed, and a ``dataType`` this
    client does not know leaves the signal's type unknown, so its values land in the
    column of their JSON type; each is named in a WARNING, since a listing that
    contradicts itself or grows new types is worth a look.
    """
    try:
        rows = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        not_json: str | None = str(error)
    else:
        not_json = None
    if not_json is not None:
        # Raised apart from the parser's error, which holds the whole body (a page
        # echoing the token, say) for a traceback or an error tracker to show.
        raise MalformedResponseError(
            "measurements: expected a JSON array of signals, got a body that is not "
            f"JSON ({not_json})",
            url=url,
            excerpt=excerpt(body),
        )
    if not isinstance(rows, list):
        raise MalformedResponseError(
            f"measurements: expected a JSON array of signals, got {json_kind(rows)}",
            url=url,
            excerpt=excerpt(body),
        )
    for position, row in enumerate(rows):
        if not isinstance(row, dict):
            raise MalformedResponseError(
                "measurements: expected each signal as a JSON object, got "
                f"{json_kind(row)} at position {position}",
                url=url,
                excerpt=excerpt(body),
            )
    listed = []
    for row in rows:
        signal, unreadable = _signal_or_why(row)
        if signal is None:
            # Raised apart from the parser's error, which quotes the field whole (a
            # listing that echoes the token in it, say) for a traceback to show.
            raise MalformedResponseError(
                f"measurements: a signal could not be read ({unreadable})", url=url
            )
        listed.append((signal, row.get("dataType")))

    _warn_unknown_types(listed)
    _warn_unread_times(rows, [signal for signal, _ in listed])
    return _listed_once(signal for signal, _ in listed)


def _signal_or_why(row: dict[str, Any]) -> tuple[Measurement | None, str]:
    """The signal ``row`` lists, or ``None`` and why it cannot be read."""
    try:
        return Measurement.from_api(row), ""
    except (AttributeError, TypeError, ValueError) as error:
        return None, str(error)


def _warn_unread_times(rows: list[Any], signals: list[Measurement]) -> None:
    _warn_zoneless_times(rows, signals)
    for row, signal in zip(rows, signals, strict=True):
        given = row.get("firstDataPoint")
        if given and signal.first_data_point is None:
            logger.warning(
                "signal %s has firstDataPoint %r, which is not a time this client "
                "reads: it is asked for from the start of every range",
                _signal_name(signal),
                given,
            )


_AGGREGATION_NAME: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")


def _warn_zoneless_times(rows: list[Any], signals: list[Measurement]) -> None:
    """One warning for every first data point read without an offset, which may be
    a local time: each is taken as the earliest instant it can mean."""
    zoneless = [
        given
        for row, signal in zip(rows, signals, strict=True)
        if signal.first_data_point is not None
        and not _zoned(given := row.get("firstDataPoint"))
    ]
    if zoneless:
        logger.warning(
            "%d signal(s) give firstDataPoint without a time zone, such as %r: each "
            "is taken as the earliest instant it can mean, %d hours before that time "
            "in UTC, so that no data is skipped before it",
            len(zoneless),
            zoneless[0],
            LOCAL_TIME_LEAD_US // 3_600_000_000,
        )


def _zoned(text: str) -> bool:
    return parse_wire_zoned(text)[1]


def _warn_unknown_types(listed: list[tuple[Measurement, object]]) -> None:
    for signal, raw_type in listed:
        if raw_type is not None and signal.data_type is None:
            logger.warning(
                "signal %s has dataType %r, which this client does not know: its "
                "values are placed by their JSON type",
                _signal_name(signal),
                raw_type,
            )


def _listed_once(signals: Iterable[Measurement]) -> list[Measurement]:
    kept: dict[tuple[int, str], Measurement] = {}
    for signal in signals:
        key = (signal.database_id, signal.index)
        first = kept.setdefault(key, signal)
        if first is not signal:
            logger.warning(
                "signal %s is listed more than once; kept as first listed%s",
                _signal_name(signal),
                "" if first == signal else " (the later listing differs)",
            )
    return list(kept.values())


def _signal_name(signal: Measurement) -> str:
    return f"database {signal.database_id} index {signal.index!r}"
