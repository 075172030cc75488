"""The worker pool: blocks in, decoded results out, under a pacer and with retries.

A dispatcher feeds blocks from a lazy plan into a zero-buffer queue, so planning runs
only as fast as workers take blocks. Workers each send one request at a time; one is
started only when a block is ready and every worker is busy, up to ``max_in_flight``,
so a run of two blocks starts two rather than the whole pool (starting and ending 128
idle tasks cost some 5 ms of CPU per run, measured). The pacer's concurrency gate keeps
fewer requests in flight than there are workers; the others wait. The dispatcher hands
a block on only while the points of the blocks under way stay within
``MAX_POINTS_IN_FLIGHT``, which bounds memory however large the blocks are. Results
leave through a bounded stream (``RESULT_BUFFER``): when the consumer (an export
writer, say) falls behind, workers wait, and memory stays flat.

Each block is retried on throttling, server errors, broken connections and malformed
bodies. A block the server finds too large (413) is cut into pieces, by time first,
and the size the server took is remembered, so later blocks of the same database and
aggregation go out already cut to fit (``control.SizeMemory``), in queries packed
across the boundaries of the planned blocks (``control.Packer``); the answers' points
are put back together into the blocks as planned (``_assembly``), and a block's
points count as in flight until it is handed on whole. A block that still fails is
reported as a failed result, never dropped silently. Refused credentials end the whole
run at once, since every block would fail.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from contextlib import (
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
    nullcontext,
)
from dataclasses import dataclass, field, replace
from typing import Final

import aiohttp
import anyio
import pyarrow as pa
from anyio.streams.memory import (
    MemoryObjectReceiveStream,
    MemoryObjectSendStream,
)

from ._announced import AnnouncedHold
from ._assembly import Assembly, BlockResult
from ._decode import decode_block
from ._groups import plain_errors
from ._http import (
    AnswerTooLongError,
    Response,
    answer_text,
    error_for,
    failed_on_server,
    send,
)
from ._labels import LabelSide
from ._outage import OutageClock
from ._redact import mask_url
from ._refusals import Refusals, RunStopped
from ._retry import backoff_s, outage_error, parse_retry_after, throttled_error
from ._signal_refusals import SignalRefusals, refuses_signals
from ._token import TokenManager
from ._words import plural
from .control import (
    AdaptivePacer,
    Packer,
    Piece,
    PointsInFlight,
    SizeMemory,
    TimeoutJudge,
    cut_to_fit,
)
from .errors import (
    APIError,
    AuthenticationError,
    MalformedResponseError,
    PayloadTooLargeError,
    PowerPError,
    ServerError,
    ThrottledError,
    TokenExpiredError,
    TransportError,
)
from .events import (
    BlockDone,
    BlockFailed,
    BlockSizeLearned,
    ControlChanged,
    EventHook,
    EventSink,
    RequestDone,
    RetryScheduled,
)
from .models import POINT_SCHEMA, Block, DataType, Measurement
from .pacing import Pacer, Permit

logger = logging.getLogger("powerp_async.engine")
size_logger = logging.getLogger("powerp_async.engine.sizes")
"""Shown on the command line without ``-v``: a server that holds queries too large for
it until the timeout makes a run wait a whole timeout with no progress to show."""

OUTAGE_CHECK_S = 1.0
OUTAGE_PAST_S: Final = 0.01
"""How far past ``max_outage_s`` the watch looks, so that one look is enough."""


@dataclass(frozen=True, slots=True)
class StopAdvice:
    """What a run the server ended advises, after saying what was fetched: an
    export keeps what it fetched and can be resumed, a fetch can only be asked
    again."""

    outage: str
    throttled: str


FETCH_ADVICE: Final = StopAdvice(
    outage="Ask again once the server is back",
    throttled="Its quota may be used up for now: ask again later",
)
EXPORT_ADVICE: Final = StopAdvice(
    outage="An export keeps what it fetched, to be resumed once the server is back",
    throttled=(
        "Its quota may be used up for now. An export keeps what it fetched, to be "
        "resumed later"
    ),
)

RESULT_BUFFER: Final = 4
"""Fetched results waiting for the consumer beyond those ``MAX_POINTS_IN_FLIGHT``
counts; a few smooth the hand-over, more would only hold memory."""

MAX_POINTS_IN_FLIGHT: Final = 450_000
"""Points of the blocks being fetched or handed on at once, about 30 MB of JSON:
many small blocks may be in flight, but only some 12 of 20 signals x 1,799 windows.
A block counts until it is handed on whole, so the blocks waiting for a rest carried
to the next slice (packed queries) and those of a query the server holds until a
timeout count too. Against a server that holds queries too large for it (the
``size-timeout`` benchmark), 300,000 let those stall the plan behind them (72% of the
ceiling, 80% at this size); 600,000 let more queries pile up against a cost quota
(92% of its ceiling, 95.7% at this size and at 300,000). Peak memory of a
50-million-point export was the same within its noise at 300,000 and 600,000."""

DOWN_AFTER_S: Final = 0.5
"""Every request failing this long shows a server down, whose announced waits then
hold every request under a pacer without a breaker (``_announced``)."""

MAX_BYTES_PER_POINT: Final = 2_048
"""A point of an answer takes some 70 bytes of JSON; this allows long texts too."""

ANSWER_SLACK_BYTES: Final = 1 << 20
"""Allowed on top of the points, for the brackets and whatever a small answer adds."""


def longest_answer_bytes(block: Block) -> int:
    """The most an answer to ``block`` may hold, decompressed, before it is refused:
    more cannot be the points asked for (a decompression bomb, a proxy's page)."""
    return ANSWER_SLACK_BYTES + block.max_points * MAX_BYTES_PER_POINT


TOKEN_REPLACEMENTS = 3
"""Tries with a replaced token after 401s; one fetched for the block itself ends it."""

MAX_BUDGET_HOLD_S = 5.0
"""Longest a failed block waits for the retry budget before it goes again anyway."""

MAX_THROTTLED_ATTEMPTS = 60
"""429s do not count as failures, but a block throttled this often is given up."""


@dataclass(slots=True)
class RunStats:
    """Counters of one run, read by progress displays and summaries.

    Pass one to :meth:`PowerPClient.fetch` (``stats=``) to watch a fetch as it goes:

    >>> stats = RunStats()
    >>> stats.requests, stats.points, stats.dropped_points
    (0, 0, 0)
    """

    started_at: float = field(default_factory=time.monotonic)
    requests: int = 0
    retries: int = 0
    throttled: int = 0
    server_errors: int = 0
    transport_errors: int = 0
    splits: int = 0
    presplit_blocks: int = 0
    blocks_done: int = 0
    blocks_resumed: int = 0
    blocks_failed: int = 0
    signals_refused: int = 0
    """Signals the server refused in blocks whose other signals were fetched; each
    such signal's part of the block is reported as failed on its own."""
    points: int = 0
    """Points of the blocks handed on, counted as each block is: a piece's points
    count once its whole block is answered, and not at all if the block fails."""
    dropped_points: int = 0
    bytes_received: int = 0

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_at


@dataclass(frozen=True, slots=True)
class EngineSettings:
    query_url: str
    max_in_flight: int
    max_attempts: int
    timeout_s: float
    max_outage_s: float = 300.0
    compression: bool = True
    isolate: bool = True
    """Whether a query refused for what may be one of its signals is asked for in
    parts, so that the others are fetched; off for a query sent as given."""
    advice: StopAdvice = FETCH_ADVICE


class Engine:
    """Fetches blocks concurrently for one client; see the module docstring."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        tokens: TokenManager,
        pacer: Pacer,
        settings: EngineSettings,
        data_types: Mapping[tuple[int, str], DataType | None] | None = None,
        stats: RunStats | None = None,
        on_event: EventHook | None = None,
        sizes: SizeMemory | None = None,
    ) -> None:
        self._session = session
        self._tokens = tokens
        self._pacer = pacer
        self._settings = settings
        self._shown_url = mask_url(settings.query_url)
        # Keyed by (database, index): the same index may name different signals, of
        # different types, in two databases.
        self.data_types: Mapping[tuple[int, str], DataType | None] = data_types or {}
        # A signal given with an aggregation of its own may declare its own type (a
        # count is an integer whatever the signal counts): those come first.
        self._aggregation_types: dict[tuple[int, str, str], DataType | None] = {}
        self.stats = stats or RunStats()
        self._fatal: PowerPError | None = None
        self._last_failure: str | None = None
        self._outage = OutageClock()
        # A server that refuses every request as too many is up, but a run that
        # gets nothing for as long as it would wait out an outage stops as well:
        # a quota used up for the day would otherwise hold it for hours.
        self._refused = OutageClock()
        # The adaptive pacer's breaker stops sends in an outage; other pacers don't.
        self._announced = None if isinstance(pacer, AdaptivePacer) else AnnouncedHold()
        self._refusals = Refusals()
        self._signals = SignalRefusals()
        self._search_locks: dict[tuple[int, str, tuple[str, ...]], anyio.Lock] = {}
        # Groups whose smallest query, one signal over one window, was refused as
        # too large: nothing of them can be fetched, so none of theirs is sent.
        self._refused_whole: dict[tuple[int, str], PowerPError] = {}
        self._labels = LabelSide()
        self._events = EventSink(on_event)
        self.sizes = sizes if sizes is not None else SizeMemory()
        """Query sizes the server took or refused: for the life of this engine, or of
        the client that gave it."""
        self._held_groups: set[tuple[int, str]] = set()
        """Groups whose queries the server held until the timeout, told once each."""
        self._timeouts = TimeoutJudge(settings.timeout_s)
        self._points = PointsInFlight(MAX_POINTS_IN_FLIGHT)
        self._control_state = ("startup", "closed")

    @property
    def label_side(self) -> str | None:
        """The window edge the server labels points by, once its answers showed it."""
        return self._labels.side

    def learn_types(self, signals: Iterable[Measurement]) -> None:
        """Remember each signal's declared type, which guides how values are decoded."""
        signals = list(signals)
        self.data_types = {(m.database_id, m.index): m.data_type for m in signals}
        self._aggregation_types = {
            (m.database_id, m.index, m.aggregation): m.data_type for m in signals
        }

    @asynccontextmanager
    async def run(
        self, blocks: Iterable[Block], *, buffer: int | None = None
    ) -> AsyncIterator[MemoryObjectReceiveStream[BlockResult]]:
        """Fetch ``blocks``; yields a stream of results that ends when all are done.

        Leaving the ``async with`` early cancels every request still in flight.
        """
        self._fatal = self._last_failure = None
        # An outage that stopped an earlier run counts afresh: the server may be
        # back, and an engine that serves many runs (a worker's) outlives it.
        self._outage = OutageClock()
        self._refused = OutageClock()
        # What a run learns of refused signals is of its own signals and range: an
        # engine that serves many runs (a worker's) starts each afresh.
        self._signals = SignalRefusals()
        self._search_locks = {}
        self._refused_whole = {}
        size = buffer if buffer is not None else RESULT_BUFFER
        results_in, results_out = anyio.create_memory_object_stream[BlockResult](size)
        with plain_errors(), self._pacer_run():
            async with anyio.create_task_group() as group:
                scope = group.cancel_scope
                group.start_soon(self._task, scope, self._dispatch, blocks, results_in)
                group.start_soon(self._task, scope, self._watch_outage)
                try:
                    yield results_out
                finally:
                    # Cancelled before the stream closes: a worker waiting to hand
                    # over a result must meet the cancellation, not a closed stream.
                    group.cancel_scope.cancel()
                    results_out.close()

        if self._fatal is not None:
            raise self._fatal

    @contextmanager
    def _pacer_run(self) -> Iterator[None]:
        """The run as the adaptive pacer counts it; other pacers keep no count."""
        pacer = self._pacer
        if not isinstance(pacer, AdaptivePacer):
            yield
            return

        pacer.begin_run()
        try:
            yield
        finally:
            pacer.end_run()

    def _planning(self) -> AbstractContextManager[None]:
        """While the plan's blocks are taken, for the adaptive pacer's account."""
        pacer = self._pacer
        return pacer.planning() if isinstance(pacer, AdaptivePacer) else nullcontext()

    async def _task(
        self,
        scope: anyio.CancelScope,
        function: Callable[..., Awaitable[None]],
        *args: object,
    ) -> None:
        """Run one of the run's tasks, given the run's ``scope`` last.

        A ``CancelledError`` raised in it, not delivered (by a pacer or a hook of the
        caller's), would end it as a cancellation does; the task group would take it
        for one and stop the run without an error, its blocks missing. It stops the
        run with an error instead.
        """
        try:
            await function(*args, scope)
        except asyncio.CancelledError:
            if _cancel_requested():
                raise
            if self._fatal is None:
                self._fatal = PowerPError(
                    "the run stopped: a CancelledError was raised in it though nothing "
                    "cancelled it (by the pacer, or a hook?)"
                )
            scope.cancel()

    async def _watch_outage(self, scope: anyio.CancelScope) -> None:
        """End the run when the server has been down longer than the client waits."""
        # Polling on purpose: the outage grows with time, no event marks the moment.
        # Near the limit, the next look is at the moment it would be passed, so the
        # run stops then, not up to a polling interval later.
        limit_s = self._settings.max_outage_s
        while (outage_s := self._stalled_s()) <= limit_s:
            if self._held_past(limit_s):
                break
            await anyio.sleep(min(OUTAGE_CHECK_S, limit_s - outage_s + OUTAGE_PAST_S))

        held_past = self._held_past(limit_s)
        if self._refused.outage_s - self._jitter_s() > limit_s or held_past:
            self._fatal = throttled_error(
                self._refused.outage_s,
                stopped_after(self.stats),
                self._settings.advice.throttled,
                held_s=self._held_s(),
                limit_s=limit_s if held_past else None,
            )
        else:
            self._fatal = outage_error(
                self._outage_s(),
                stopped_after(self.stats),
                self._settings.advice.outage,
                timeout_s=(
                    self._settings.timeout_s if self._outage.only_timeouts else None
                ),
                last=self._last_failure,
            )
        scope.cancel()

    def _held_past(self, limit_s: float) -> bool:
        """Whether the wait the server's ``Retry-After`` asked for holds the next
        request past ``limit_s`` of refusals (counted since the last success):
        nothing can succeed before the run would stop, so it stops now rather than
        wait to be stopped. A wait asked for in an earlier run of the pacer counts
        from this run's start, which would otherwise sit through it without a word."""
        refused_s, held_s = self._refused.outage_s, self._held_s(as_asked=True)
        return held_s > 0 and refused_s + held_s >= limit_s

    def _held_s(self, *, as_asked: bool = False) -> float:
        """How much longer the server's ``Retry-After`` holds every request; with
        ``as_asked``, without the jitter this client adds to spread clients out."""
        if not isinstance(self._pacer, AdaptivePacer):
            return 0.0

        controller = self._pacer.controller
        until = controller.asked_until if as_asked else controller.barrier_until
        return max(0.0, until - self._pacer.clock.now())

    def _stalled_s(self) -> float:
        """How long no request has succeeded, every one failing or refused as too
        many; 0 while requests succeed. The jitter this client adds to a wait the
        server asked for is not counted: a wait asked to end within ``max_outage_s``
        is waited out, and its retry made, whatever the jitter."""
        return max(self._outage_s(), self._refused.outage_s - self._jitter_s())

    def _jitter_s(self) -> float:
        """What this client added to the latest wait the server asked for, if that
        wait ended, or ends, after requests began to be refused."""
        if not isinstance(self._pacer, AdaptivePacer):
            return 0.0

        controller = self._pacer.controller
        refused_since = self._pacer.clock.now() - self._refused.outage_s
        if self._refused.outage_s == 0 or controller.barrier_until < refused_since:
            return 0.0
        return max(0.0, controller.barrier_until - controller.asked_until)

    def _outage_s(self) -> float:
        """The longer of the pacer's account of the outage and the engine's own."""
        return max(self._pacer.outage_s, self._outage.outage_s)

    async def _dispatch(
        self,
        blocks: Iterable[Block],
        results: MemoryObjectSendStream[BlockResult],
        scope: anyio.CancelScope,
    ) -> None:
        queue_in, queue_out = anyio.create_memory_object_stream[Piece](0)
        assembly = Assembly()
        try:
            # Left in reverse order: the queue ends, the workers finish, results close.
            async with (
                results,
                anyio.create_task_group() as workers,
                queue_in,
                queue_out,
            ):
                pool = _WorkerPool(
                    queue_in,
                    self._settings.max_in_flight,
                    lambda: workers.start_soon(
                        self._task,
                        scope,
                        self._work,
                        queue_out.clone(),
                        results.clone(),
                        assembly,
                    ),
                )
                await self._feed(blocks, pool, assembly)
        finally:
            for block in assembly.abandon():
                self._points.release(block.max_points)

    async def _feed(
        self, blocks: Iterable[Block], pool: _WorkerPool, assembly: Assembly
    ) -> None:
        """The pieces of every block, packed to the size the server takes."""
        packer = Packer(self.sizes)
        # Near the end a refused try of a larger size would only delay the last
        # answers, by a whole timeout where the server holds such queries; so would
        # a probe for a higher rate, by a 429's Retry-After (the pacer's account).
        with self._planning(), self.sizes.planning():
            await self._take_plan(blocks, packer, pool, assembly)

        await pool.send_all(packer.flush())

    async def _take_plan(
        self,
        blocks: Iterable[Block],
        packer: Packer,
        pool: _WorkerPool,
        assembly: Assembly,
    ) -> None:
        for serial, block in enumerate(blocks):
            await pool.send_all(packer.stale(block.start_us))
            await pool.send_all(
                packer.make_room(block.max_points, self._points.capacity)
            )
            # Taken from the plan only once its points fit: a block a worker took
            # would otherwise wait unstarted while later ones finish. Its points
            # stay counted until it is handed on whole.
            await self._points.acquire(block.max_points)
            assembly.open(serial, block)
            pieces = packer.take(serial, block, may_span=self.label_side is not None)
            if all(piece.packed for piece in pieces):
                self.stats.presplit_blocks += 1
            await pool.send_all(pieces)

    async def _work(
        self,
        inbox: MemoryObjectReceiveStream[Piece],
        results: MemoryObjectSendStream[BlockResult],
        assembly: Assembly,
        scope: anyio.CancelScope,
    ) -> None:
        async with inbox, results:
            async for piece in inbox:
                try:
                    await self._deliver(piece, results, assembly)
                except AuthenticationError as error:
                    self._fatal = error
                    scope.cancel()
                    return
                except RunStopped as stop:
                    self._fatal = stop.error
                    scope.cancel()
                    return

    async def _deliver(
        self,
        piece: Piece,
        results: MemoryObjectSendStream[BlockResult],
        assembly: Assembly,
    ) -> None:
        # A function of its own, so that its points are freed when it returns: as
        # locals of the worker's loop they would live on while the worker waits for
        # its next piece, a whole block's worth of memory per idle worker.
        try:
            parts = [part async for part in self._fetch_splitting(piece)]
        except asyncio.CancelledError:
            if _cancel_requested():
                raise
            # Raised, not delivered: a pacer or a hook of the caller's raised it.
            # It costs this piece's blocks only; let through, it would stop the
            # whole run (see _task).
            parts = [self._failed(piece.query, _stray_cancellation(piece.query))]
        answer = _as_planned(piece.query, parts)
        done = assembly.answered(piece, answer, self.label_side)
        try:
            for result in done:
                self._count_planned(result)
                await results.send(result)
        finally:
            for result in done:
                self._points.release(result.block.max_points)

    def _count_planned(self, result: BlockResult) -> None:
        """Blocks are counted as planned, once each, however many queries (pieces,
        splits, packed spans) it took to fetch them."""
        if result.error is None:
            rows = result.batch.num_rows if result.batch is not None else 0
            self.stats.blocks_done += 1
            self.stats.points += rows
            self._events.emit(BlockDone(result.block, rows))
            for refused, refusal in result.refused:
                self.stats.signals_refused += len(refused.indexes)
                self._events.emit(BlockFailed(refused, refusal))
        else:
            self.stats.blocks_failed += 1
            self._events.emit(BlockFailed(result.block, result.error))

    async def _fetch_splitting(self, piece: Piece) -> AsyncIterator[BlockResult]:
        """Fetch a piece in the pieces the server is known to take; on 413 in
        smaller ones, as small as needed. A packed piece is cut to fit already (or
        larger on purpose, to try a size)."""
        block = piece.query
        known = self._refusals.known(block)
        if known is not None:
            yield self._failed(block, known)
            return

        for query in self._apart(block):
            given_up = self._signals.given_up(query)
            if given_up is not None:
                yield self._failed(query, given_up)
                continue

            parts = [query] if piece.packed else self.sizes.pieces(query)
            if len(parts) > 1:
                self.stats.presplit_blocks += 1

            for part in parts:
                async for result in self._fetch_fitting(part):
                    yield result

    def _apart(self, block: Block) -> list[Block]:
        return self._signals.apart(block) if self._settings.isolate else [block]

    async def _fetch_fitting(
        self, block: Block, *, searching: bool = True
    ) -> AsyncIterator[BlockResult]:
        """``block``'s results, cut as the server needs; a refusal that one of its
        signals may explain is searched for that signal, unless ``searching`` is off
        (a search's own queries), and a failure is then not logged as final."""
        refused = self._refused_whole.get((block.database_id, block.aggregation))
        if refused is not None:
            yield BlockResult(block, None, refused)  # said once, when it was learnt
            return

        try:
            result = await self._fetch(block)
        except _Recut:
            self.stats.presplit_blocks += 1
            for part in self.sizes.pieces(block):
                async for result in self._fetch_fitting(part, searching=searching):
                    yield result
        except (PayloadTooLargeError, _TooSlow) as refusal:
            slow = isinstance(refusal, _TooSlow)
            error = refusal.error if isinstance(refusal, _TooSlow) else refusal
            if slow:
                self._tell_held(block, error)
            self._learn_size(block, refused=True, slow=slow)
            parts = self.sizes.pieces(block)
            if len(parts) < 2:
                refused = self._too_large_alone(block, error)
                yield self._failed(block, refused, shown=searching)
                return
            self.stats.splits += 1
            logger.info("%s: %s; splitting", block.describe(), _refused_as(refusal))
            for part in parts:
                async for result in self._fetch_fitting(part, searching=searching):
                    yield result
        except _TooLong as too_long:
            async for result in self._cut_for_length(block, too_long.error, searching):
                yield result
        except AuthenticationError:
            raise
        except PowerPError as error:
            self.sizes.on_failed(block)
            if not searching:
                yield BlockResult(block, None, error)
            elif self._settings.isolate and self._signals.splits(block, error):
                for result in await self._searched(block, error):
                    yield result
            else:
                # A signal refused alone before explains its refusal now: not one
                # more sign that every query of the run is refused.
                if not self._signals.refused_alone(block):
                    self._refusals.on_refused(block, error)
                self._signals.on_refused(block, error)
                yield self._failed(block, error)
        else:
            self._learn_size(block, refused=False)
            self._signals.on_accepted(block)
            yield result

    async def _cut_for_length(
        self, block: Block, error: MalformedResponseError, searching: bool
    ) -> AsyncIterator[BlockResult]:
        """``block``'s results in halves, its answer having run past what its points
        may take: long texts, or a body that never ends. Asked again as it was, it
        would be as long, so it is not retried; the server's size limit is not
        learnt from it either, since other queries of the group may hold short
        values. A single point still too long stops its group, as a 413 does, or a
        body that never ends would be asked for once per point."""
        if block.max_points <= 1:
            yield self._failed(
                block, self._too_long_alone(block, error), shown=searching
            )
            return

        parts = cut_to_fit(block, block.max_points // 2)
        if not self._settings.isolate or len(parts) < 2:
            yield self._failed(block, error, shown=searching)
            return

        self.stats.splits += 1
        logger.info("%s; asking for it in halves", error)
        for part in parts:
            async for result in self._fetch_fitting(part, searching=searching):
                yield result

    def _too_long_alone(
        self, block: Block, error: MalformedResponseError
    ) -> PowerPError:
        key = (block.database_id, block.aggregation)
        if key not in self._refused_whole:
            self._refused_whole[key] = MalformedResponseError(
                f"database {key[0]} {key[1]}: even the answer for one signal over one "
                f"window ran past what it may take ({error}), so no query of this "
                "database and aggregation was sent after it",
                url=error.url,
            )
        return self._refused_whole[key]

    def _too_large_alone(self, block: Block, error: PowerPError) -> PowerPError:
        """The failure of ``block``, refused as too large though it cannot be cut: one
        signal over one window. The server then answers no query of its group, and
        each further one refused would cost a request: a gateway that refuses every
        body so would otherwise be sent one query per signal and window."""
        if not isinstance(error, APIError):
            return error

        key = (block.database_id, block.aggregation)
        if key not in self._refused_whole:
            self._refused_whole[key] = error.reworded(
                f"database {key[0]} {key[1]}: the server refused even one signal over "
                f"one window as too large ({block.describe_failure(error)}), so no "
                "query of this database and aggregation was sent after it"
            )
        return self._refused_whole[key]

    async def _searched(self, block: Block, error: PowerPError) -> list[BlockResult]:
        """The results of a query refused for what may be one of its signals (see
        ``_signal_refusals``): its signals asked for in halves, and the refused halves
        in halves again, until the refused signals stand alone."""
        logger.info(
            "%s; asking for its signals in halves, to fetch those the server serves",
            block.describe_failure(error),
        )
        # One search at a time for the same signals: the blocks of other slices,
        # refused meanwhile, then set apart at once what the first search found.
        key = (block.database_id, block.aggregation, block.indexes)
        async with self._search_locks.setdefault(key, anyio.Lock()):
            known = self._refusals.known(block)
            if known is not None:
                # A search that ended while this one waited found its database
                # forbidden: asking again would only be refused again.
                return [self._failed(block, known)]
            results = await self._search(block, error, depth=0)
        if any(result.ok for result in results):
            # Said only now, when the search is over: a part refused is then final.
            for result in results:
                if result.error is not None:
                    self._failed(result.block, result.error)
            return results

        # Nothing of it answered: the block fails whole, and each query that ended
        # the search counts towards taking its database as forbidden, or every
        # query of the run as refused.
        if all(_refused_alone(result) for result in results):
            self._signals.on_all_refused(block)
        ending = [result.block for result in results if result.error is not None]
        self._refusals.on_refused(block, error, queries=ending)
        return [self._failed(block, error)]

    async def _search(
        self, block: Block, error: PowerPError, depth: int
    ) -> list[BlockResult]:
        self.stats.splits += 1
        halves = self._split_for_search(block)
        answers = [await self._asked_in_search(half) for half in halves]
        refusals = [_signal_refusal(answer) for answer in answers]
        if (
            None not in refusals
            and depth > 0
            and not self._refusals.answered_before(block, error)
        ):
            # Nothing was ever answered, down to quarters of the query: this says more
            # of the query (or its database) than of some signals of it, and searching
            # further would only send more of it.
            return [BlockResult(block, None, error)]

        results: list[BlockResult] = []
        for half, answer, refusal in zip(halves, answers, refusals, strict=True):
            if refusal is None:
                results.extend(answer)
            elif len(half.indexes) > 1:
                results.extend(await self._search(half, refusal, depth + 1))
            else:
                self._signals.on_refused(half, refusal)
                results.append(BlockResult(half, None, refusal))
        return results

    def _split_for_search(self, block: Block) -> list[Block]:
        """``block``'s signals known to be refused, each alone, and the others; or,
        knowing none, its two halves. Searches run at once in many workers, so what
        one found is used by the others as soon as it is known."""
        parts = self._signals.apart(block)
        if len(parts) > 1:
            return parts

        middle = len(block.indexes) // 2
        return [
            replace(block, indexes=block.indexes[:middle]),
            replace(block, indexes=block.indexes[middle:]),
        ]

    async def _asked_in_search(self, part: Block) -> list[BlockResult]:
        given_up = self._signals.given_up(part) or self._refusals.known(part)
        if given_up is not None:
            return [BlockResult(part, None, given_up)]

        return [result async for result in self._fetch_fitting(part, searching=False)]

    def _tell_held(self, block: Block, error: PowerPError) -> None:
        group = (block.database_id, block.aggregation)
        if group in self._held_groups:
            return

        self._held_groups.add(group)
        if isinstance(error, TransportError):
            what = f"got no answer within {self._settings.timeout_s:g} s"
        else:
            what = "was answered 504 by a gateway that gave up waiting for it"
        size_logger.warning(
            "database %s %s: a query of %s points %s and is taken as too large for "
            "the server; queries of this group are cut in quarters until they are "
            "answered (a shorter timeout_s finds the size sooner)",
            block.database_id,
            block.aggregation,
            f"{block.max_points:,}",
            what,
        )

    def _learn_size(self, block: Block, *, refused: bool, slow: bool = False) -> None:
        before = self.sizes.fitting_points(block)
        cap_before = self.sizes.signal_cap(block)
        if refused:
            self.sizes.on_refused(block, slow=slow)
        else:
            self.sizes.on_accepted(block)

        self._tell_signal_cap(block, cap_before)
        after = self.sizes.fitting_points(block)
        if after != before or (refused and after is None):
            logger.info(
                "%s %s: queries of %s points fit",
                block.database_id,
                block.aggregation,
                after or "fewer",
            )
            self._events.emit(
                BlockSizeLearned(block.database_id, block.aggregation, after)
            )

    def _tell_signal_cap(self, block: Block, before: int | None) -> None:
        cap = self.sizes.signal_cap(block)
        if cap != before:
            logger.info(
                "%s %s: queries of %d signals at most fit, whatever their range",
                block.database_id,
                block.aggregation,
                cap,
            )

    def _failed(
        self, block: Block, error: PowerPError, *, shown: bool = True
    ) -> BlockResult:
        # A warning, not an error: the caller receives the failure and decides.
        if shown:
            logger.warning("giving up on %s", block.describe_failure(error))
        return BlockResult(block, None, error)

    async def _fetch(self, block: Block) -> BlockResult:
        failures = throttles = 0
        while True:
            try:
                return await self._attempt(block)
            except ThrottledError as error:
                throttles += 1
                self.stats.throttled += 1
                if throttles >= MAX_THROTTLED_ATTEMPTS:
                    raise
                # The pacer has slowed every request down already; this block also
                # keeps the server's Retry-After, and goes again at once without one.
                delay = error.retry_after or 0.0
                reason = "throttled (429)"
            except (
                ServerError,
                TransportError,
                MalformedResponseError,
                TokenExpiredError,
            ) as error:
                failures += 1
                self._count_failure(error)
                if failures >= self._settings.max_attempts:
                    raise
                # The budget spaces retries out, but never holds one for long: an
                # empty budget must slow retries down, not stop them, or a run that
                # meets an outage early would stall long after the server is back.
                with anyio.move_on_after(MAX_BUDGET_HOLD_S):
                    await self._pacer.before_retry(after_timeout=_timed_out(error))
                delay = max(backoff_s(failures), self._announced_wait_s(error))
                reason = str(error)

            self.stats.retries += 1
            attempt = failures + throttles
            self._events.emit(RetryScheduled(block, reason, delay, attempt))
            logger.info("retrying %s in %.2f s", block.describe(), delay)
            await anyio.sleep(delay)

    def _announced_wait_s(self, error: PowerPError) -> float:
        """What a failed answer's ``Retry-After`` asks its retry to wait, where the
        pacer has no breaker to stop sends by itself; 0 otherwise."""
        if self._announced is None or not isinstance(error, ServerError):
            return 0.0
        return error.retry_after or 0.0

    def _count_failure(self, error: PowerPError) -> None:
        self._last_failure = _reason(error)
        if isinstance(error, TransportError):
            self.stats.transport_errors += 1
        else:
            self.stats.server_errors += 1
        logger.warning("request failed: %s", error)

    async def _attempt(self, block: Block) -> BlockResult:
        (response, decoded), token, renewed = await self._send(block, None)
        for _ in range(TOKEN_REPLACEMENTS):
            # A token fetched for this block and refused within its lifetime proves
            # the credentials cannot query; one that expired on its way proves nothing.
            if response.status != 401 or (renewed and not self._tokens.outlived(token)):
                break
            self.stats.retries += 1
            (response, decoded), token, renewed = await self._send(block, token)

        if response.status == 401:
            raise _token_refused(self._tokens.outlived(token), block, self._shown_url)

        if decoded is None:
            raise self._error(block, response)
        return decoded

    def _error(self, block: Block, response: Response) -> PowerPError:
        return error_for(
            response, method="POST", url=self._shown_url, what=block.describe()
        )

    async def _send(
        self, block: Block, refused_token: str | None
    ) -> tuple[tuple[Response, BlockResult | None], str, bool]:
        """One request under a permit, its outcome reported to the pacer; returns the
        answer with its points (``None`` unless it succeeded), the token sent and
        whether it was fetched for this block.

        A success is judged by its body too: a 200 whose body is no answer (a proxy's
        maintenance page, a cut-off array) counts as a failed request for the pace,
        the breaker and the outage clock, or a server that sends only such bodies
        would look healthy, and be asked ever faster, for as long as the plan lasts.

        The token is taken once the permit is granted, not before: a block may wait
        for its turn longer than a short-lived token lasts. After a 401 the refused
        token is replaced, likewise at the turn of the next try.
        """
        async with self._permit() as permit:
            if self.sizes.too_large(block):
                # Learnt while this block waited for its turn; the slot goes back.
                permit.unused()
                raise _Recut
            token, renewed = await self._token(permit, refused_token)
            self.stats.requests += 1
            try:
                response = await send(
                    self._session,
                    "POST",
                    self._settings.query_url,
                    headers=_headers(token, self._settings.compression),
                    json_body=block.payload(),
                    timeout_s=self._settings.timeout_s,
                    max_bytes=longest_answer_bytes(block),
                )
            except AnswerTooLongError as error:
                elapsed_s = time.monotonic() - permit.sent_at
                self._events.emit(RequestDone(block, None, elapsed_s))
                # Answered, and at once: the server is well, the query too large.
                permit.succeeded(elapsed_s)
                raise _TooLong(_too_long(block, error, self._shown_url)) from None
            except TransportError as error:
                elapsed_s = time.monotonic() - permit.sent_at
                self._events.emit(RequestDone(block, None, elapsed_s))
                # Unanswered for its size, it says nothing of the server's health.
                self._judge_silence(block, permit, error)
                permit.failed(connection=True)
                self._outage.failed(timed_out=_timed_out(error), sent_at=permit.sent_at)
                self._report_control()
                raise

            self.stats.bytes_received += len(response.body)
            self._events.emit(RequestDone(block, response.status, response.elapsed_s))
            decoded = None
            if response.status == 401:
                self._tokens.refused(token)
            elif response.status == 504:
                self._judge_silence(block, permit, self._error(block, response))
            elif response.status < 300:
                self._timeouts.on_answered(time.monotonic(), block.max_points)
                decoded = self._decoded_or_failed(block, response, permit)
            _report(permit, response, self._outage, self._refused)
            self._hold_if_down(response)
            self._events.pace(self._pacer.rate)
            self._report_control()
            return (response, decoded), token, renewed

    def _decoded_or_failed(
        self, block: Block, response: Response, permit: Permit
    ) -> BlockResult:
        try:
            return self._decoded(block, response)
        except MalformedResponseError:
            permit.failed()
            self._outage.failed(sent_at=permit.sent_at)
            self._report_control()
            raise

    @asynccontextmanager
    async def _permit(self) -> AsyncIterator[Permit]:
        """The pacer's permit, outside any wait the server announced: a permit
        granted while one runs (to a request queued at the pace before it began) goes
        back, and its request waits for the end and its turn again."""
        hold = self._announced
        while True:
            if hold is not None:
                await hold.wait()
            async with self._pacer.permit() as permit:
                if hold is None or not hold.remaining_s:
                    yield permit
                    return
                permit.unused()

    def _hold_if_down(self, response: Response) -> None:
        """Hold every request for the wait a 503 announced, once every request has
        failed for ``DOWN_AFTER_S``: a lone 503 amid answers (a busy moment) holds
        only its own block's retry, or a fixed pace would stall on random faults."""
        if self._announced is None or response.status != 503:
            return
        if self._outage.outage_s < DOWN_AFTER_S:
            return

        announced = parse_retry_after(response.headers)
        if announced:
            self._announced.announced(announced)

    def _judge_silence(self, block: Block, permit: Permit, error: PowerPError) -> None:
        """Raise :class:`_TooSlow` if ``block`` went unanswered for its size; its
        permit then reports nothing, as for a 413: neither the breaker nor the rate
        controller learns anything of the server's health from it."""
        gateway = not isinstance(error, TransportError)
        if not gateway and not _timed_out(error):
            return

        now = time.monotonic()
        points = block.max_points
        if self._timeouts.too_large(now, permit.sent_at, points, gateway=gateway):
            raise _TooSlow(error)

    async def _token(
        self, permit: Permit, refused_token: str | None
    ) -> tuple[str, bool]:
        """The token to send, and whether it was fetched for this block; a token
        endpoint that is down counts as a failed request, as the server is down."""
        try:
            if refused_token is None:
                return await self._tokens.token(), False

            return await self._tokens.replace(refused_token)
        except (ServerError, TransportError) as error:
            permit.failed(connection=isinstance(error, TransportError))
            self._outage.failed()
            raise

    def _report_control(self) -> None:
        """An event when the controller's mode or the breaker's state changed."""
        pacer = self._pacer
        if not isinstance(pacer, AdaptivePacer):
            return

        state = (str(pacer.controller.mode), str(pacer.breaker.state))
        if state == self._control_state:
            return

        self._control_state = state
        self._events.emit(
            ControlChanged(
                mode=state[0],
                circuit=state[1],
                rate=pacer.rate,
                in_flight=pacer.in_flight,
                concurrency_limit=pacer.concurrency_limit(),
                throttles=pacer.controller.throttles,
            )
        )

    def _declared_type(self, block: Block, index: str) -> DataType | None:
        key = (block.database_id, index, block.aggregation)
        if key in self._aggregation_types:
            return self._aggregation_types[key]

        return self.data_types.get((block.database_id, index))

    def _decoded(self, block: Block, response: Response) -> BlockResult:
        types = {i: self._declared_type(block, i) for i in block.indexes}
        decoded = decode_block(response.body, block, types, url=self._shown_url)
        batch = self._labels.keep_one_side(block, decoded.batch)
        dropped = (
            decoded.dropped_unrequested
            + decoded.dropped_out_of_range
            + decoded.dropped_duplicates
            + decoded.dropped_off_grid
            + decoded.dropped_unreadable
            + decoded.batch.num_rows
            - batch.num_rows
        )
        if dropped:
            logger.warning(
                "%s: dropped %d unexpected points", block.describe(), dropped
            )
        self.stats.dropped_points += dropped
        self._refusals.on_success(block)
        return BlockResult(block, batch)


class _Recut(Exception):
    """Internal: a block waiting to go out turned out larger than the server takes."""


class _TooLong(Exception):
    """Internal: an answer ran past what its points may take; see
    ``_cut_for_length``."""

    def __init__(self, error: MalformedResponseError) -> None:
        super().__init__(str(error))
        self.error = error


class _TooSlow(Exception):
    """Internal: a query went unanswered (timeout, 504) because of its size."""

    def __init__(self, error: PowerPError) -> None:
        super().__init__(str(error))
        self.error = error


def _refused_as(refusal: Exception) -> str:
    if isinstance(refusal, _TooSlow):
        return f"no answer in time ({refusal.error}), taken for a query too large"

    return "server refused it as too large"


def _as_planned(block: Block, parts: list[BlockResult]) -> BlockResult:
    """One result for the query as sent, however often the server made us split it.

    A caller that records finished blocks (an export's journal) knows only the planned
    ones; handing it halves would let a resume fetch the whole block again after one
    half was saved. So halves are joined, and if one failed the whole query fails,
    unless the server refused only some of its signals: those are then handed on as
    refused, beside the others' points. The assembly hands the query's points on to
    the blocks as planned.
    """
    if len(parts) == 1 and parts[0].block == block:
        return parts[0]

    refused = [part for part in parts if _refuses_some(block, part)]
    for part in parts:
        if part.error is not None and not _refuses_some(block, part):
            return BlockResult(block, None, part.error)

    if refused and not any(part.ok for part in parts):
        # Every signal refused, one way or another: the query failed.
        return BlockResult(block, None, refused[0].error)

    set_apart = tuple((part.block, part.error) for part in refused if part.error)
    batches = [part.batch for part in parts if part.batch and part.batch.num_rows]
    if not batches:
        empty = pa.RecordBatch.from_pylist([], schema=POINT_SCHEMA)
        return BlockResult(block, empty, refused=set_apart)
    table = pa.Table.from_batches(batches, POINT_SCHEMA).combine_chunks()
    return BlockResult(block, table.to_batches()[0], refused=set_apart)


def _refuses_some(query: Block, part: BlockResult) -> bool:
    """Whether ``part`` failed as some, not all, of the query's signals refused."""
    return (
        part.error is not None
        and refuses_signals(part.error)
        and len(part.block.indexes) < len(query.indexes)
    )


def _signal_refusal(answer: list[BlockResult]) -> PowerPError | None:
    """The refusal that failed ``answer``, if a signal may explain it."""
    for result in answer:
        if result.error is not None and refuses_signals(result.error):
            return result.error
    return None


def _refused_alone(result: BlockResult) -> bool:
    return (
        len(result.block.indexes) == 1
        and result.error is not None
        and refuses_signals(result.error)
    )


def _cancel_requested() -> bool:
    """Whether the current task was asked to cancel (a ``CancelledError`` it meets
    was delivered, not raised by some code of its own)."""
    task = asyncio.current_task()
    return task is None or task.cancelling() > 0


def _stray_cancellation(block: Block) -> PowerPError:
    return PowerPError(
        f"{block.describe()}: a CancelledError was raised while it was fetched, "
        "though nothing cancelled the run (by the pacer, or a hook?)"
    )


class _WorkerPool:
    """Hands pieces to workers, starting one only when every started one is busy."""

    def __init__(
        self,
        queue: MemoryObjectSendStream[Piece],
        limit: int,
        start_worker: Callable[[], object],
    ) -> None:
        self._queue = queue
        self._limit = limit
        self._start_worker = start_worker
        self._started = 0

    async def send_all(self, pieces: list[Piece]) -> None:
        for piece in pieces:
            # No worker waiting means the piece would wait for one.
            idle = self._queue.statistics().tasks_waiting_receive
            if idle == 0 and self._started < self._limit:
                self._start_worker()
                self._started += 1

            await self._queue.send(piece)


def _token_refused(outlived: bool, block: Block, url: str) -> APIError:
    if outlived:
        return TokenExpiredError(
            f"the server refused every token tried for {block.describe()}, each "
            "expired before its answer came back: its tokens live about as long as "
            "its queries take",
            method="POST",
            url=url,
            status=401,
        )
    return AuthenticationError(
        "the server refused a freshly issued token for queries "
        f"({block.describe()}); the client may lack access to the API",
        method="POST",
        url=url,
        status=401,
    )


def _headers(token: str, compression: bool) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/json",
        # JSON of points shrinks about tenfold with gzip, which pays over a real
        # network; on loopback it only costs CPU on both sides.
        "Accept-Encoding": "gzip, deflate" if compression else "identity",
    }


def _report(
    permit: Permit, response: Response, outage: OutageClock, refused: OutageClock
) -> None:
    """Tell the pacer and the clocks of failures and refusals how an answer went;
    401 and other 4xx say nothing of load."""
    status = response.status
    if status == 429:
        permit.throttled(parse_retry_after(response.headers))
        refused.failed()
    elif failed_on_server(status):
        permit.failed()
        outage.failed()
    elif status < 300:
        permit.succeeded(response.elapsed_s)
        outage.succeeded()
        refused.succeeded()


def _too_long(
    block: Block, error: AnswerTooLongError, url: str
) -> MalformedResponseError:
    return MalformedResponseError(
        f"the answer to {block.describe()} ran past {error.max_bytes:,} bytes, far "
        f"more than its {plural(block.max_points, 'point')} at most can take; the "
        "rest was not read",
        url=url,
    )


def _reason(error: PowerPError) -> str:
    """What a failure was, without the block it befell: an error answer by its status
    and body, which reads the same whichever block was the last to fail."""
    if isinstance(error, APIError):
        return answer_text(error.status, error.excerpt)
    return str(error)


def _timed_out(error: PowerPError) -> bool:
    return isinstance(error, TransportError) and error.timed_out


def stopped_after(stats: RunStats) -> str:
    """What a run stopped by an outage had fetched, in words."""
    blocks = stats.blocks_done
    return (
        f"after {plural(blocks, 'block')} ({plural(stats.points, 'point')}) "
        f"{'was' if blocks == 1 else 'were'} fetched"
    )
