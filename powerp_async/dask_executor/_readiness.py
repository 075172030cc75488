"""Before an export's folder is made: can every worker of the cluster fetch?

A worker builds its client from its own environment, so a worker started without the
credentials would otherwise be found only by its first batch, once the export's folder
and journal exist, and the corrected command would have to resume. Each worker is
asked instead, outside the task queue (``Client.run``), to resolve its settings from
its environment; it answers with what is wrong, or nothing. The settings it is sent
hold no secret (:class:`WorkerSettings`), and what it answers is the message of the
error it would raise, which names what is missing and never a value.

A worker that joins after the check is not asked: its first batch finds the problem,
as before, and the run stops saying so. Dask's ``run`` waits for every worker without
a time limit, so the question is asked on a thread of its own and the check gives up
after :data:`ANSWER_TIMEOUT_S`: a worker whose event loop is stuck would otherwise
hold the command before anything is made, saying nothing. The thread left behind ends
when the client closes, which the refusal brings about.
"""

from __future__ import annotations

import threading
from typing import Any, Final

from distributed import Client

from ..errors import ConfigurationError
from ._settings import WorkerSettings

SHOWN_ADDRESSES: Final = 3
"""How many workers' addresses an error names before it only counts the others."""

ANSWER_TIMEOUT_S: Final = 30.0
"""How long the workers have to answer, all together; each answers in milliseconds
when its event loop is free."""


def check_workers(
    client: Client, settings: WorkerSettings, *, timeout_s: float = ANSWER_TIMEOUT_S
) -> None:
    """Ask every worker of ``client``'s cluster to resolve ``settings`` from its own
    environment; raises :class:`ConfigurationError` naming the workers that cannot,
    and why, or saying that they did not answer within ``timeout_s``."""
    answers = _answers_within(client, settings, timeout_s)
    problems: dict[str, list[str]] = {}
    for address, answer in sorted(answers.items()):
        if isinstance(answer, BaseException):
            # The check itself failed there: powerp_async missing, say.
            answer = f"{type(answer).__name__}: {answer}"
        if answer is not None:
            problems.setdefault(str(answer), []).append(address)

    if problems:
        raise ConfigurationError(_told(problems, len(answers)))


def _answers_within(
    client: Client, settings: WorkerSettings, timeout_s: float
) -> dict[str, Any]:
    """Each worker's answer to :func:`cannot_fetch`, by address."""
    answered: dict[str, Any] = {}
    failure: list[BaseException] = []

    def ask() -> None:
        try:
            answered.update(client.run(cannot_fetch, settings, on_error="return"))
        except BaseException as error:  # handed to the caller's thread below
            failure.append(error)

    # A daemon, so that a question no worker ever answers cannot hold the exit.
    asking = threading.Thread(target=ask, name="powerp-dask-readiness", daemon=True)
    asking.start()
    asking.join(timeout_s)
    if asking.is_alive():
        raise ConfigurationError(
            f"the Dask workers did not all answer within {timeout_s:g} s whether "
            "they can fetch; nothing was created: check that every worker runs and "
            "is not busy with other work (the scheduler's dashboard shows them), "
            "then run again"
        )

    if failure:
        raise failure[0]

    return answered


def cannot_fetch(settings: WorkerSettings) -> str | None:
    """What keeps this worker from fetching with ``settings``, or None; runs on the
    worker."""
    try:
        settings.client_config()
    except ConfigurationError as error:
        return str(error)

    return None


def _told(problems: dict[str, list[str]], workers: int) -> str:
    """The problems, each after the workers that have it."""
    failing = sum(len(addresses) for addresses in problems.values())
    told = "; ".join(
        f"{_listed(addresses)}: {problem}" for problem, addresses in problems.items()
    )
    return (
        f"{failing} of {workers} Dask workers cannot fetch; {told}; nothing was "
        "created: start those workers with the settings in their environment (see "
        "the README's Dask section), then run again"
    )


def _listed(addresses: list[str]) -> str:
    shown = ", ".join(addresses[:SHOWN_ADDRESSES])
    others = len(addresses) - SHOWN_ADDRESSES
    return f"{shown} and {others} more" if others > 0 else shown
