"""What the ``powerp`` commands share: one-line usage errors and verbosity.

argparse echoes what it could not use, and that may be the value given to
``--client-secret``; every usage error is therefore masked before it is shown.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any, Final, NoReturn

from ._redact import scrub
from .errors import ConfigurationError

SECRET_OPTION: Final = "--client-secret"
VERBOSE_HELP: Final = "log more (-v info, -vv debug) to stderr"

_VERBOSITY: Final = re.compile(r"-v+|--verbose")
_LEVELS: Final = {0: logging.ERROR, 1: logging.INFO}
_SHOWN_WITHOUT_VERBOSE: Final = (
    "powerp_async.redis_pacing",
    "powerp_async.export.startup",
    "powerp_async.engine.sizes",
    "powerp_async.engine.announced",
    "powerp_async.export.range",
    "powerp_async.decode",
)


class UsageParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line with no secret in it.

    The error is raised as a :class:`ConfigurationError` instead of printing the
    whole usage text and exiting, so the command reports it like any other mistake.
    """

    _arguments: Sequence[str] = ()

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: Any = None
    ) -> tuple[argparse.Namespace, list[str]]:
        self._arguments = list(sys.argv[1:] if args is None else args)
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> NoReturn:
        told = message + _signed_value_hint(message, self._arguments)
        shown = scrub(told, *secret_values(self._arguments))
        raise ConfigurationError(f"{shown} (see {self.prog} --help)")


_MISSING_VALUE: Final = re.compile(r"argument (\S+?)(?:/\S+)?: expected one argument")
_SIGNED: Final = re.compile(r"-\d")


def _signed_value_hint(message: str, arguments: Sequence[str]) -> str:
    """Why an option followed by ``-2h`` has no value: argparse takes a word that
    starts with ``-`` for an option, unless it is a plain negative number."""
    missing = _MISSING_VALUE.search(message)
    if missing is None:
        return ""

    option = missing.group(1)
    for name, value in itertools.pairwise(arguments):
        if name == option and _SIGNED.match(value):
            return (
                f"; {value!r} was read as an option: a value that starts with '-' "
                f"is given as {option}={value}"
            )
    return ""


def secret_values(arguments: Sequence[str]) -> Iterator[str]:
    """The values given to ``--client-secret``, an abbreviation of it, or any option
    whose name looks like a secret's, so that a typo (``--client_secret``,
    ``--secret``) is masked as well."""
    for position, argument in enumerate(arguments):
        name, equals, value = argument.partition("=")
        if not _names_a_secret(name):
            continue

        if equals:
            yield value
        elif position + 1 < len(arguments):
            yield arguments[position + 1]


def _names_a_secret(name: str) -> bool:
    if not name.startswith("-"):
        return False

    if len(name) >= len("--c") and SECRET_OPTION.startswith(name):
        return True

    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


_SECRET_WORDS: Final = ("secret", "token", "passw")


def split_verbosity(arguments: Sequence[str]) -> tuple[list[str], list[str]]:
    """The ``-v`` flags that lead ``arguments``, and the arguments after them."""
    leading = 0
    while leading < len(arguments) and _VERBOSITY.fullmatch(arguments[leading]):
        leading += 1
    return list(arguments[:leading]), list(arguments[leading:])


def configure_logging(verbosity: int) -> None:
    """Quiet by default: failures reach the user as one line, not as log records.

    Some warnings are shown all the same: a shared pace lost to an unreachable rate
    backend (the run goes on, but at a share of the rate, and the user must know the
    sharing is off), a server that is down as an export starts (the run waits, up
    to ``--max-outage``, with no progress to show), one that holds queries too large
    for it until the timeout, a wait a server down announced under a fixed pace, a
    range that ends after now, and a value the server sent that could only be kept
    changed (a text with an unpaired surrogate).
    The token's own retries are not: in an outage every block renews in vain, and the
    lines would bury the rest.
    Only where this sets logging up: a host that configured it already (an
    application calling ``main``, a test runner) keeps its own levels.
    """
    configured = bool(logging.getLogger().handlers)
    logging.basicConfig(
        level=_LEVELS.get(verbosity, logging.DEBUG),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if verbosity == 0 and not configured:
        for shown in _SHOWN_WITHOUT_VERBOSE:
            logging.getLogger(shown).setLevel(logging.WARNING)
