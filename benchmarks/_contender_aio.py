"""Two aiohttp contenders: the naive fan-out and the static oracle.

The fan-out sends every block of the notebook's plan at once with ``asyncio.gather``
over one session, decoding with the standard library as ``response.json()`` does, and
retries a 429 or 5xx after the server's Retry-After (or a doubling wait). Given a
time limit, it cancels whatever is still unanswered when the limit is up.

The oracle is told what no real user knows: the server's rate and burst. It sends
full blocks of 20 over the longest slices, paced by an ``aiolimiter`` bucket the size
of the server's, decodes with orjson, and keeps a fixed number in flight.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
import orjson
from aiolimiter import AsyncLimiter

from .contenders import (
    MAX_SIGNALS_PER_QUERY,
    MAX_TRIES,
    RETRIED_STATUSES,
    TIMEOUT_S,
    Job,
    Query,
    Tally,
    longest_slice_us,
    payload,
    plan,
    retry_delay_s,
)

NOTEBOOK_SLICE_US: Final = 15 * 60_000_000
NOTEBOOK_BLOCK_SIZE: Final = 10


@dataclass(slots=True)
class Context:
    session: aiohttp.ClientSession
    job: Job
    headers: dict[str, str]
    tally: Tally
    loads: Callable[[bytes], Any]
    gate: Callable[[], Awaitable[None]] | None = None


async def _open(
    session: aiohttp.ClientSession,
    job: Job,
    tally: Tally,
    loads: Callable[[bytes], Any],
) -> Context:
    form = {
        "client_id": job.client_id,
        "client_secret": job.client_secret,
        "grant_type": "client_credentials",
    }
    async with session.post(f"{job.base_url}/v1/auth/token", data=form) as answer:
        answer.raise_for_status()
        token = (await answer.json())["access_token"]

    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    return Context(session, job, headers, tally, loads)


async def _listing(context: Context) -> list[dict[str, Any]]:
    url = f"{context.job.base_url}/v1/measurements"
    async with context.session.get(url, headers=context.headers) as answer:
        answer.raise_for_status()
        listing: list[dict[str, Any]] = await answer.json()
        return listing


async def _query(context: Context, query: Query) -> None:
    url = f"{context.job.base_url}/v1/Query"
    body = payload(query, context.job.window)
    for attempt in range(MAX_TRIES):
        if context.gate is not None:
            await context.gate()

        context.tally.requests += 1
        async with context.session.post(url, json=body, headers=context.headers) as got:
            if got.status not in RETRIED_STATUSES:
                got.raise_for_status()
                raw = await got.read()
                context.tally.body_bytes += len(raw)
                context.tally.add_rows(query, context.loads(raw))
                return

            retry_after = got.headers.get("Retry-After")
            context.tally.throttled += got.status == 429

        context.tally.retries += 1
        await asyncio.sleep(retry_delay_s(retry_after, attempt))

    raise RuntimeError(f"gave up on {query} after {MAX_TRIES} tries")


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S))


async def run_fan_out(job: Job, tally: Tally) -> None:
    async with _session() as session:
        context = await _open(session, job, tally, json.loads)
        listing = await _listing(context)
        queries = plan(
            listing, job, slice_us=NOTEBOOK_SLICE_US, block_size=NOTEBOOK_BLOCK_SIZE
        )
        everything = asyncio.gather(*(_query(context, query) for query in queries))
        try:
            await asyncio.wait_for(everything, job.time_limit_s)
        except TimeoutError:
            tally.cut()


async def run_static_oracle(job: Job, tally: Tally) -> None:
    async with _session() as session:
        context = await _open(session, job, tally, orjson.loads)
        if job.oracle_rate_per_s is not None:
            # A bucket as deep as the server's, refilled exactly as fast.
            seconds_per_burst = job.oracle_burst / job.oracle_rate_per_s
            context.gate = AsyncLimiter(job.oracle_burst, seconds_per_burst).acquire

        listing = await _listing(context)
        slice_us = longest_slice_us(job.window_us)
        queries = plan(
            listing, job, slice_us=slice_us, block_size=MAX_SIGNALS_PER_QUERY
        )
        in_flight = asyncio.Semaphore(job.oracle_concurrency)

        async def one(query: Query) -> None:
            async with in_flight:
                await _query(context, query)

        await asyncio.gather(*(one(query) for query in queries))
