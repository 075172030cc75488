"""The reference notebook's way: ``requests``, one query at a time.

Its grouping by (database, defaultAgg), blocks of 10 and 15-minute slices, each slice
the notebook's ``LOOKBACK_MINUTES``. Like the notebook, every call opens a new
connection (no ``requests.Session``). Unlike it, a 429 or 5xx is retried after a wait,
as its good practices ask; the notebook itself stops at the first one. Given a time
limit, it stops before the first query that would start after it.
"""

from __future__ import annotations

import time
from typing import Any, Final

import requests

from .contenders import (
    MAX_TRIES,
    RETRIED_STATUSES,
    TIMEOUT_S,
    Job,
    Query,
    Tally,
    deadline_s,
    payload,
    plan,
    retry_delay_s,
)

SLICE_US: Final = 15 * 60_000_000
BLOCK_SIZE: Final = 10


def run_notebook(job: Job, tally: Tally) -> None:
    answer = requests.post(
        f"{job.base_url}/v1/auth/token",
        data={
            "client_id": job.client_id,
            "client_secret": job.client_secret,
            "grant_type": "client_credentials",
        },
        timeout=10,
    )
    answer.raise_for_status()
    headers = {
        "Authorization": f"Bearer {answer.json()['access_token']}",
        "Accept": "application/json",
    }
    listing = requests.get(
        f"{job.base_url}/v1/measurements", headers=headers, timeout=30
    ).json()

    deadline = deadline_s(job)
    for query in plan(listing, job, slice_us=SLICE_US, block_size=BLOCK_SIZE):
        if time.perf_counter() >= deadline:
            tally.cut()
            return

        tally.add_rows(query, _query_values(job, headers, query, tally))


def _query_values(
    job: Job, headers: dict[str, str], query: Query, tally: Tally
) -> list[dict[str, Any]]:
    for attempt in range(MAX_TRIES):
        tally.requests += 1
        response = requests.post(
            f"{job.base_url}/v1/Query",
            headers=headers,
            json=payload(query, job.window),
            timeout=TIMEOUT_S,
        )
        if response.status_code not in RETRIED_STATUSES:
            response.raise_for_status()
            tally.body_bytes += len(response.content)
            rows: list[dict[str, Any]] = response.json()
            return rows

        tally.throttled += response.status_code == 429
        tally.retries += 1
        time.sleep(retry_delay_s(response.headers.get("Retry-After"), attempt))

    raise RuntimeError(f"gave up on {query} after {MAX_TRIES} tries")
