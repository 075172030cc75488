"""``powerp simulate``: serve the simulated API until interrupted.

Limits and faults are chosen with ``--scenario`` and refined by individual options
(``_scenario_cli``); ``--list-scenarios`` prints the presets and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import signal
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from .._time import parse_wire
from .._usage import VERBOSE_HELP, UsageParser, configure_logging
from ..config import is_loopback
from ..errors import ConfigurationError
from ._scenario_cli import add_scenario_options, scenario_from_options
from ._scenarios import PRESET_EXAMPLES, named_scenario
from ._server import Simulator
from ._settings import (
    ANCHOR_RANGE_US,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    SimulatorSettings,
)

DEFAULT_PORT: Final = 8765

SECRET_VARIABLE: Final = "POWERP_CLIENT_SECRET"
ID_VARIABLE: Final = "POWERP_CLIENT_ID"
"""Where the secret is best given: unlike an argument, no other user can read it."""
MAX_SECRET_CHARS: Final = 4096
"""The longest secret a file is read for."""

MAX_PORT: Final = 65_535


def run(argv: list[str] | None = None) -> int:
    """Serve as ``argv`` (the arguments after ``simulate``) says; the exit code."""
    parser = _parser()
    try:
        options = parser.parse_args(argv)
    except SystemExit as stop:  # --help
        return stop.code if isinstance(stop.code, int) else 2
    except ConfigurationError as error:
        print(f"powerp simulate: {error}", file=sys.stderr)
        return 2

    configure_logging(options.verbose)
    if options.list_scenarios:
        for name in PRESET_EXAMPLES:
            print(named_scenario(name).describe())

        return 0

    if not 0 <= options.port <= MAX_PORT:
        print(
            f"powerp simulate: --port must be 0 (any free port) to {MAX_PORT}, "
            f"got {options.port}",
            file=sys.stderr,
        )
        return 2

    if not is_loopback(options.host) and not options.allow_remote:
        print(
            f"powerp simulate: refusing to serve on {options.host}: the simulator "
            "accepts fixed demo credentials and is meant for this machine only; "
            "pass --allow-remote to serve on a non-loopback address anyway",
            file=sys.stderr,
        )
        return 2

    try:
        settings = _settings(options)
        simulator = Simulator(settings, host=options.host, port=options.port)
    except (ConfigurationError, ValueError) as error:
        print(f"powerp simulate: {_named_by_option(str(error))}", file=sys.stderr)
        return 2

    try:
        asyncio.run(_serve(simulator, watch_stdin=options.stop_when_stdin_closes))
    except OSError as error:
        print(f"powerp simulate: cannot listen: {error}", file=sys.stderr)
        return 1

    return 0


_SETTING_OPTIONS: Final = {
    "SimulatorSettings.token_ttl_s": "--token-ttl",
    "SimulatorSettings.copies": "--copies",
    "SimulatorSettings.seed": "--seed",
    "SimulatorSettings.client_id": "--client-id",
}
"""The settings options fill, as their errors name them, and the option."""


def _named_by_option(message: str) -> str:
    """``message`` naming the option the user typed, not the setting it filled."""
    for field, option in _SETTING_OPTIONS.items():
        message = message.replace(field, option)
    return message


def _parser() -> argparse.ArgumentParser:
    parser = UsageParser(
        prog="powerp simulate",
        description="Serve a simulated PowerP Real-Time API with a demo tenant.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="default: %(default)s")
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help="default: %(default)s; 0 picks a free port",
    )
    parser.add_argument(
        "--client-id",
        help=f"the client id clients must send (default: {ID_VARIABLE} if it is set, "
        f"else {DEFAULT_CLIENT_ID})",
    )
    secret = parser.add_mutually_exclusive_group()
    secret.add_argument(
        "--client-secret",
        help=f"the secret clients must send (default: {DEFAULT_CLIENT_SECRET}, the "
        "public demo secret); every user of this machine sees it in the process "
        f"list, so give a secret of your own in {SECRET_VARIABLE} or a file",
    )
    secret.add_argument(
        "--client-secret-file",
        type=Path,
        metavar="PATH",
        help="read the secret clients must send from the first line of this file; "
        f"without either option, {SECRET_VARIABLE} is used if it is set",
    )
    parser.add_argument(
        "--token-ttl", type=float, default=3600.0, help="token lifetime in seconds"
    )
    parser.add_argument(
        "--label",
        choices=("stop", "start"),
        default="stop",
        help="which edge of a window labels its point",
    )
    parser.add_argument(
        "--anchor",
        help="ISO time the recently started signals count back from "
        "(default: the current UTC hour)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of every simulated value (default: 0)"
    )
    parser.add_argument(
        "--copies",
        type=int,
        default=1,
        help="serve this many copies of the demo tenant's databases, 1,016 signals "
        "each (default: 1)",
    )
    parser.add_argument(
        "--cache-answers",
        action="store_true",
        help="serve a repeated query from memory, rendered once (for benchmarks of "
        "the client; memory grows with every distinct query)",
    )
    parser.add_argument(
        "--retire",
        action="append",
        default=[],
        type=_retired_signal,
        metavar="DATABASE:INDEX",
        help="list this signal but refuse every query that asks for it (400), as a "
        "signal taken out of service; repeat for more",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --host (the demo credentials are public)",
    )
    parser.add_argument(
        "--stop-when-stdin-closes",
        action="store_true",
        help="stop when standard input reaches its end: a parent that starts the "
        "simulator with a pipe there takes it down when it ends, even when killed",
    )
    parser.add_argument(
        "--list-scenarios",
        action="store_true",
        help="print the preset scenarios and exit",
    )
    add_scenario_options(parser)
    return parser


def _settings(options: argparse.Namespace) -> SimulatorSettings:
    anchor_us = None if options.anchor is None else _anchor_us(options.anchor)
    return SimulatorSettings(
        client_id=options.client_id or os.environ.get(ID_VARIABLE) or DEFAULT_CLIENT_ID,
        client_secret=_client_secret(options, os.environ),
        token_ttl_s=options.token_ttl,
        label=options.label,
        anchor_us=anchor_us,
        seed=options.seed,
        copies=options.copies,
        cache_answers=options.cache_answers,
        retired=frozenset(options.retire),
        scenario=scenario_from_options(options),
    )


def _anchor_us(text: str) -> int:
    """``--anchor`` in epoch microseconds; out of the simulator's years, an error
    that quotes the time as typed rather than as a count of microseconds."""
    anchor_us = parse_wire(text)
    low, high = ANCHOR_RANGE_US
    if not low <= anchor_us < high:
        raise ConfigurationError(
            f"--anchor must be a time from 1970 to 2199, got {text!r}"
        )

    return anchor_us


def _retired_signal(text: str) -> tuple[int, str]:
    database, _, index = text.partition(":")
    if not database.strip().isdigit() or not index.strip():
        raise argparse.ArgumentTypeError(
            f"expected DATABASE:INDEX, such as 1:5, got {text!r}"
        )

    return int(database), index.strip()


def _client_secret(options: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The secret from a file, the environment, or the command line (with a warning,
    the secret never shown): the demo secret if none is given."""
    if options.client_secret_file is not None:
        return _secret_in(options.client_secret_file)

    if options.client_secret is None:
        return environ.get(SECRET_VARIABLE) or DEFAULT_CLIENT_SECRET

    if options.client_secret != DEFAULT_CLIENT_SECRET:
        print(
            "powerp simulate: warning: a secret given with --client-secret is seen by "
            "every user of this machine in the process list; give it in "
            f"{SECRET_VARIABLE} or with --client-secret-file instead",
            file=sys.stderr,
        )
    return str(options.client_secret)


def _secret_in(path: Path) -> str:
    try:
        with path.open(encoding="utf-8") as lines:
            # No further than a secret can reach: /dev/zero would fill the memory.
            line = lines.readline(MAX_SECRET_CHARS + 1)
    except UnicodeDecodeError:
        # Its own words would quote a byte of the secret and where it stands.
        raise ConfigurationError(
            f"--client-secret-file: {path} is not UTF-8 text; save the secret in UTF-8"
        ) from None
    except OSError as error:
        raise ConfigurationError(
            f"--client-secret-file: cannot read {path}: {error.strerror or error}"
        ) from None

    # A byte-order mark, which some editors write, is no part of the secret.
    secret = line.removeprefix("\ufeff").rstrip("\r\n")
    if len(secret) > MAX_SECRET_CHARS:
        raise ConfigurationError(
            f"--client-secret-file: the first line of {path} runs past "
            f"{MAX_SECRET_CHARS:,} characters, far longer than a secret"
        )
    if not secret.strip():
        got = "a line of spaces only" if secret else "an empty line"
        raise ConfigurationError(
            f"--client-secret-file: expected the secret on the first line of {path}, "
            f"got {got}"
        )
    return secret


async def _serve(simulator: Simulator, *, watch_stdin: bool = False) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)

    if watch_stdin:
        _stop_at_end_of_stdin(loop, stop)

    async with simulator:
        print(f"PowerP simulator serving {simulator.base_url}", flush=True)
        scenario = simulator.settings.scenario
        if scenario is not None:
            print(f"scenario {scenario.describe()}", flush=True)

        print(_public_credentials(simulator), flush=True)

        await stop.wait()


def _stop_at_end_of_stdin(loop: asyncio.AbstractEventLoop, stop: asyncio.Event) -> None:
    """Set ``stop`` once standard input ends.

    The system closes a process's end of a pipe however the process ends, SIGKILL
    included, on every platform; a thread reading it (rather than the event loop) also
    works where the loop cannot watch pipes, as on Windows. Parent-death signals
    (``prctl``) exist on Linux only, and polling the parent's pid misses a parent
    whose pid is reused.
    """

    def read_to_end() -> None:
        while sys.stdin.buffer.read(4096):
            pass

        loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=read_to_end, name="stdin-watch", daemon=True).start()


def _public_credentials(simulator: Simulator) -> str:
    """How to connect: the whole of it when the secret is the public demo one,
    which client id goes with a secret of the user's own (never the secret)."""
    settings = simulator.settings
    if settings.client_secret != DEFAULT_CLIENT_SECRET:
        return (
            f"client id {settings.client_id!r}, with the secret you gave: "
            f"{ID_VARIABLE}={shlex.quote(settings.client_id)} "
            f"POWERP_API_BASE_URL={simulator.base_url}"
        )

    return (
        "demo credentials (public): "
        f"POWERP_CLIENT_ID={shlex.quote(settings.client_id)} "
        f"POWERP_CLIENT_SECRET={DEFAULT_CLIENT_SECRET} "
        f"POWERP_API_BASE_URL={simulator.base_url}"
    )
