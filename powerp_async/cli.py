"""The ``powerp`` command: export, measurements, query and simulate.

Every mistake, of the user's or the server's, ends with one readable line on stderr
and a non-zero exit code, never a traceback: 2 for bad usage or configuration, 1 for a
failure at run time, 130 when interrupted (Ctrl-C), 143 when terminated (SIGTERM),
129 when the terminal hung up (SIGHUP). Both signals stop a run as Ctrl-C does: what
was fetched is committed first (see :mod:`._stopping` for signals that come again).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import io
import logging
import math
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import anyio
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv

from ._cli_dask import add_dask_options, check_dask_installed, dask_executor
from ._cli_spec import export_spec
from ._cli_times import time_range
from ._demo import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, demo_simulator
from ._engine import RunStats
from ._export import (
    DEFAULT_ROWS_PER_FLUSH,
    FORMATS,
    MANIFEST_NAME,
    Executor,
    ExportReport,
    export,
    failure_reason,
    plan_export,
    recorded_source,
)
from ._export._formats import json_float, write_file
from ._launch import STANDARD_OUTPUT, STOPPED_BY
from ._progress import ProgressLine, ProgressLog, summary
from ._redact import MASK, mask_url, scrub
from ._stopping import StopSignals
from ._time import (
    floor_to_grid,
    format_duration,
    format_wire,
    from_epoch_us,
    parse_duration_us,
    to_epoch_us,
)
from ._usage import (
    VERBOSE_HELP,
    UsageParser,
    configure_logging,
    split_verbosity,
)
from ._words import DROPPED_WHY, plural, printable
from .client import PowerPClient
from .config import ClientConfig
from .errors import (
    BadRequestError,
    ConfigurationError,
    ExportWriteError,
    FetchFailedError,
    PermissionDeniedError,
    PowerPError,
)
from .models import MAX_QUERY_SPAN_US
from .pacing import Pacer
from .planning import TimeRange

logger = logging.getLogger("powerp_async.cli")

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141
"""128 + SIGPIPE, what a shell reports of a command whose reader went away."""


def build_parser() -> argparse.ArgumentParser:
    parser = UsageParser(
        prog="powerp",
        description="Export, list and query PowerP signals, or run the API simulator.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE_HELP)
    commands = parser.add_subparsers(
        dest="command", required=True, parser_class=UsageParser
    )

    exporter = commands.add_parser("export", help="export signals to files")
    exporter.add_argument("--out", type=_folder, required=True, help="output folder")
    exporter.add_argument("--format", choices=FORMATS, help="default: parquet")
    exporter.add_argument(
        "--csv-for-spreadsheets",
        action="store_true",
        help="CSV only: put a ' before text cells a spreadsheet would run as a "
        "formula (starting with = + - @, tab or CR); numbers are never changed",
    )
    exporter.add_argument(
        "--resume", action="store_true", help="continue an interrupted export in --out"
    )
    exporter.add_argument(
        "--quiet", action="store_true", help="no progress, no summary"
    )
    exporter.add_argument(
        "--dry-run",
        action="store_true",
        help="count the signals and blocks and print the plan; fetch and write nothing",
    )
    exporter.add_argument(
        "--flush-points",
        type=int,
        default=DEFAULT_ROWS_PER_FLUSH,
        help="points gathered before each commit to disk (default %(default)s); "
        "fewer means less to fetch again after a crash, more means fewer files",
    )
    _add_range(exporter)
    _add_selection(exporter)
    # An export's alone: a query is one block as given, a listing has none.
    exporter.add_argument(
        "--block-size", type=int, help="signals per query (1-20, default 20)"
    )
    _add_connection(exporter)
    _add_shared_rate(exporter)
    add_dask_options(exporter)

    listing = commands.add_parser("measurements", help="list the signals")
    listing.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _add_connection(listing)

    query = commands.add_parser("query", help="query a few signals (at most 20)")
    query.add_argument("--database", type=int, required=True)
    query.add_argument(
        "--index",
        action="append",
        required=True,
        dest="indexes",
        type=_not_blank("a signal index"),
    )
    query.add_argument("--agg", default="last", help="aggregation (default: last)")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    _add_range(query, default_since="15m")
    _add_connection(query)

    commands.add_parser("simulate", help="run the API simulator", add_help=False)
    return parser


def _add_range(parser: argparse.ArgumentParser, default_since: str = "2h") -> None:
    parser.add_argument(
        "--since",
        type=_not_blank("a duration such as '2h'"),
        help=f"a duration before --end, or before now (default {default_since})",
    )
    parser.add_argument(
        "--start",
        type=_not_blank(_A_TIME),
        help="ISO-8601 start; without an offset it is read in --tz",
    )
    parser.add_argument(
        "--end", type=_not_blank(_A_TIME), help="ISO-8601 end (default: now)"
    )
    parser.add_argument(
        "--tz",
        metavar="ZONE",
        help="IANA time zone of --start/--end given without an offset, such as "
        "Europe/Berlin (default UTC)",
    )
    parser.add_argument("--window", help="aggregation window (default 1s)")
    parser.set_defaults(default_since=default_since)


def _add_selection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        type=int,
        action="append",
        default=[],
        dest="databases",
        help="only this database (repeatable)",
    )
    parser.add_argument(
        "--index",
        action="append",
        default=[],
        dest="indexes",
        type=_not_blank("a signal index"),
        help="only this signal index (repeatable)",
    )


def _add_connection(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demo", action="store_true", help="start the embedded simulator and use it"
    )
    parser.add_argument(
        "--max-rate", type=float, help="cap on requests per second (default: discover)"
    )
    parser.add_argument(
        "--fixed-rate", type=float, help="send exactly this many requests per second"
    )
    parser.add_argument(
        "--max-in-flight", type=int, help="concurrent requests at most (default 128)"
    )
    parser.add_argument(
        "--max-outage",
        type=_positive_seconds,
        metavar="SECONDS",
        help="give up on a server that fails every request for this long (default 300)",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        metavar="SECONDS",
        help="give up on one request after this long, the token's included (default "
        "60)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        help="TOML file of client settings; POWERP_* variables and options win",
    )
    # Counted apart from the -v before the command, which argparse would overwrite.
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        dest="verbose_after",
        help=VERBOSE_HELP,
    )


def _add_shared_rate(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rate-backend",
        metavar="URL",
        help="share the pace with every process naming this Redis server: "
        "--fixed-rate if given, else a rate discovered together "
        "(redis://HOST:PORT[/DB]; needs the redis extra)",
    )
    parser.add_argument(
        "--rate-key",
        metavar="KEY",
        help="the tenant's schedule in Redis (default: derived from the API address "
        "and client id)",
    )


_A_TIME: Final = "an ISO-8601 time such as '2026-12-04T10:00:00Z'"


def _not_blank(expected: str) -> Callable[[str], str]:
    """An argparse type: a text that is not blank. An empty value (``--since
    "$UNSET"``) would otherwise count as not given, and the default would be used
    without a word."""

    def given(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return text

    return given


def _folder(text: str) -> Path:
    """An argparse type: a folder named by a text that is not blank.

    ``Path("")`` is the current folder, so ``--out "$UNSET"`` would export into
    wherever the command runs; ``--out .`` says that on purpose.
    """
    if not text.strip():
        raise argparse.ArgumentTypeError(
            f"expected a folder, got {text!r}; name the current folder as '.'"
        )
    return Path(text)


def _positive_seconds(text: str) -> float:
    """An argparse type: a positive, finite number of seconds."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan

    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected seconds above 0, got {text!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``powerp`` console script."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    verbosity, rest = split_verbosity(arguments)
    if rest[:1] == ["simulate"]:
        from .simulator._cli import run

        code: int = run([*verbosity, *rest[1:]])
        return code

    stops = StopSignals(lambda: _at_once_message(arguments))
    with stops.handled():
        return _run(arguments, stops)


def _run(arguments: list[str], stops: StopSignals) -> int:
    try:
        options = build_parser().parse_args(arguments)
        configure_logging(options.verbose + options.verbose_after)
        _choose_memory_pool()
        code = _dispatch(options, stops)
        # Written out now, while a failure can still be told: left to the end of
        # the process, a reader gone or a full disk would pass in silence.
        with _writing_stdout():
            sys.stdout.flush()
        return code
    except ConfigurationError as error:
        return _fail(f"error: {error}", EXIT_USAGE)
    except FetchFailedError as error:
        return _fail(_failed_blocks_message(error, arguments), EXIT_FAILURE)
    except PowerPError as error:
        return _fail(_stopped_message(error, arguments), EXIT_FAILURE)
    except BrokenPipeError:
        # The reader of stdout went away (powerp query ... | head): nothing more is
        # wanted, and a shell takes this code for just that.
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as error:
        if error.filename == STANDARD_OUTPUT:
            _silence_stdout()
            reason = f"could not write to standard output: {error.strerror or error}"
            return _fail(f"error: {reason}", EXIT_FAILURE)
        where = f": {error.filename}" if error.filename else ""
        return _fail(f"error: {error.strerror or error}{where}", EXIT_FAILURE)
    except (KeyboardInterrupt, asyncio.CancelledError) as stop:
        # A run cancelled by a stop signal where Ctrl-C is ignored ends in
        # CancelledError; any other would be a fault, shown as one.
        if isinstance(stop, asyncio.CancelledError) and not stops.terminated:
            raise
        if stops.terminated:
            signum = stops.terminated[0]
            how = STOPPED_BY.get(signum, "terminated")
            return _fail(_interrupted_message(arguments, how), 128 + signum)
        return _fail(_interrupted_message(arguments), EXIT_INTERRUPTED)
    except Exception as error:
        # A bug, not a mistake of the user's: still one line, the traceback on -vv.
        logger.debug("unexpected error", exc_info=True)
        return _fail(
            f"unexpected error ({type(error).__name__}: {error}); this is a fault in "
            "powerp: please report it with the output of the same command run with -vv",
            EXIT_FAILURE,
        )


def _dispatch(options: argparse.Namespace, stops: StopSignals) -> int:
    try:
        check_dask_installed(options)
        with _connection(options) as target:
            if options.command == "export":
                # A cluster is started before the event loop, outside of it.
                with dask_executor(options, target.config) as executor:
                    return anyio.run(stops.guarded, _export, options, target, executor)
            if options.command == "measurements":
                return anyio.run(stops.guarded, _measurements, options, target.config)
            return anyio.run(stops.guarded, _query, options, target.config)
    except ConfigurationError as error:
        raise _named_by_flag(error, options) from None


_FLAGS: Final = {
    "block_size": (("--block-size", "block_size"),),
    "rows_per_flush": (("--flush-points", "flush_points"),),
    "max_in_flight": (("--max-in-flight", "max_in_flight"),),
    "aggregation": (("--agg", "agg"),),
    "max_outage_s": (("--max-outage", "max_outage"),),
    "timeout_s": (("--timeout", "timeout"),),
    "max_rate": (("--max-rate", "max_rate"), ("--fixed-rate", "fixed_rate")),
    "rate_backend": (("--rate-backend", "rate_backend"),),
    "rate_key": (("--rate-key", "rate_key"),),
    "window": (("--window", "window"),),
}
"""The options that set a setting, by the setting's name, and their ``dest``."""


def _named_by_flag(
    error: ConfigurationError, options: argparse.Namespace
) -> ConfigurationError:
    """The error, naming the option the user gave rather than the setting it set."""
    setting, colon, rest = str(error).partition(": ")
    given = [
        flag
        for flag, dest in _FLAGS.get(setting, ())
        if getattr(options, dest, None) is not None
    ]
    if not colon or not given:
        return error

    return ConfigurationError(f"{given[0]}: {rest}")


@dataclasses.dataclass(frozen=True)
class _Target:
    """Where the command reads from; ``source`` names a demo simulator for exports."""

    config: ClientConfig
    source: str | None = None
    source_details: dict[str, Any] = dataclasses.field(default_factory=dict)


@contextlib.contextmanager
def _connection(options: argparse.Namespace) -> Iterator[_Target]:
    fixed_rate = _fixed_rate(options)
    tuning: dict[str, Any] = {
        "block_size": getattr(options, "block_size", None),
        "max_rate": options.max_rate if fixed_rate is None else fixed_rate,
        "max_in_flight": options.max_in_flight,
        "max_outage_s": options.max_outage,
        "timeout_s": options.timeout,
        "rate_backend": getattr(options, "rate_backend", None),
        "rate_key": getattr(options, "rate_key", None),
    }
    if fixed_rate is not None:
        tuning["adaptive"] = False
    if not options.demo:
        yield _Target(_client_config(options, None, **tuning))
        return

    anchor = _demo_anchor(options)
    with demo_simulator("--anchor", anchor) as base_url:
        config = _client_config(
            options,
            {},
            client_id=DEMO_CLIENT_ID,
            client_secret=DEMO_CLIENT_SECRET,
            base_url=base_url,
            **tuning,
        )
        # The demo's port changes every run, so the export names its source by what
        # makes its data: the simulator's seed and anchor, restored on --resume.
        source = f"demo simulator (seed 0, anchor {anchor})"
        yield _Target(config, source, {"seed": 0, "anchor": anchor})


def _client_config(
    options: argparse.Namespace, environ: dict[str, str] | None, **settings: Any
) -> ClientConfig:
    """From ``--config`` if given, else from the environment; ``settings`` on top."""
    if options.config is not None:
        return ClientConfig.from_toml(options.config, environ, **settings)
    return ClientConfig.from_env(environ, **settings)


def _fixed_rate(options: argparse.Namespace) -> float | None:
    rate: float | None = options.fixed_rate
    if rate is None:
        return None

    if options.max_rate is not None:
        raise ConfigurationError("give either --fixed-rate or --max-rate, not both")

    # Checked here rather than left to max_rate's check, whose words are about a
    # ceiling on a discovered rate.
    if not 0.001 <= rate < math.inf:
        raise ConfigurationError(
            f"--fixed-rate: expected requests per second from 0.001 up, a finite "
            f"number, got {rate:g}"
        )
    return rate


def _demo_anchor(options: argparse.Namespace) -> str:
    """The anchor of a new demo (this hour), or the one a resumed export recorded."""
    if options.command == "export" and options.resume:
        anchor = recorded_source(options.out).details.get("anchor")
        if not isinstance(anchor, str):
            raise ConfigurationError(
                f"{options.out} was not made by a --demo export; "
                "resume it without --demo"
            )
        return anchor
    now_us = to_epoch_us(datetime.now(UTC))
    return format_wire(floor_to_grid(now_us, 3_600_000_000))


async def _export(
    options: argparse.Namespace, target: _Target, executor: Executor | None
) -> int:
    config = target.config
    spec = dataclasses.replace(
        export_spec(options),
        source=target.source,
        source_details=target.source_details,
    )
    if options.dry_run:
        async with PowerPClient(config) as client:
            plan = await plan_export(client, spec, resume=options.resume)
        with _writing_stdout():
            print(plan.describe(config.max_rate if not config.adaptive else None))
        return 0

    show = not options.quiet
    async with PowerPClient(config) as client:
        # The workers of a cluster pace themselves: this process's pacer is idle.
        pacer = client.pacer if executor is None else None
        progress = _progress_display(pacer) if show else None
        try:
            report = await export(
                client,
                spec,
                resume=options.resume,
                progress=progress,
                executor=executor,
            )
        except FetchFailedError:
            if show:
                _print_failed_summary(spec.out)
            raise
        finally:
            if progress is not None:
                progress.close()

    if show:
        lines = [summary(report)]
        if pacer is not None and report.requests:
            # Without a request the pace is the untried start, which says nothing.
            lines.append(f"Final pace: {pacer.rate:.1f} requests per second")
        _print_summary("\n".join(lines))
    return 0


def _print_summary(text: str) -> None:
    """The summary of a finished export, on stdout. A reader that went away
    (``powerp export ... | head -1``) loses the rest of it, and the export keeps its
    outcome: ``_report.json`` holds the same."""
    try:
        print(text, flush=True)
    except BrokenPipeError:
        _silence_stdout()
    except OSError as error:
        _silence_stdout()
        print(
            "powerp: the summary could not be written to standard output "
            f"({error.strerror or error}); _report.json holds it",
            file=sys.stderr,
        )


def _progress_display(pacer: Pacer | None) -> ProgressLine | ProgressLog:
    """A line redrawn on a terminal; elsewhere, a plain line now and then."""
    if sys.stderr.isatty():
        return ProgressLine(sys.stderr, pacer)

    return ProgressLog(sys.stderr, pacer)


def _print_failed_summary(out: Path) -> None:
    """The summary of an export that lost blocks, if its report can be read."""
    try:
        report = ExportReport.read(out)
    except (OSError, ValueError, KeyError, TypeError) as error:
        logger.warning("could not read the report in %s: %s", out, error)
        return

    print(summary(report))


async def _measurements(options: argparse.Namespace, config: ClientConfig) -> int:
    async with PowerPClient(config) as client:
        signals = await client.measurements()
    rows = [
        {
            "databaseId": m.database_id,
            "index": m.index,
            "name": m.name,
            "aggregation": m.aggregation,
            "dataType": m.data_type,
            "unit": m.unit_symbol,
            "firstDataPoint": m.first_data_point.isoformat()
            if m.first_data_point
            else None,
        }
        for m in signals
    ]
    with _writing_stdout():
        if options.format == "json":
            _print_json(rows)
        else:
            # The schema given, an empty listing still prints its header.
            listing = pa.Table.from_pylist(rows, schema=_LISTING_SCHEMA)
            _print_table(listing, options.format)
    return 0


_LISTING_SCHEMA: Final = pa.schema(
    [
        ("databaseId", pa.int64()),
        *((name, pa.string()) for name in ("index", "name", "aggregation")),
        *((name, pa.string()) for name in ("dataType", "unit", "firstDataPoint")),
    ]
)
"""The columns ``powerp measurements`` prints, in their order."""


async def _query(options: argparse.Namespace, config: ClientConfig) -> int:
    window = options.window or "1s"
    start, end = _on_grid(*time_range(options), window)
    _check_one_query(start, end)
    stats = RunStats()
    async with PowerPClient(config) as client:
        # The listing gives each signal's type, so values land as an export puts them.
        await client.measurements()
        table = await client.query(
            options.database,
            options.indexes,
            start,
            end,
            aggregation=options.agg,
            window=window,
            stats=stats,
        )
    if stats.dropped_points:
        # Warnings are logged only with -v; a point left out must be said anyway.
        print(
            f"powerp: dropped {plural(stats.dropped_points, 'point')} {DROPPED_WHY}",
            file=sys.stderr,
        )
    with _writing_stdout():
        if options.format == "csv":
            _print_points_csv(table)
        else:
            _print_table(table, options.format)
    return 0


@contextlib.contextmanager
def _writing_stdout() -> Iterator[None]:
    """Name standard output in a failure to write to it (a full disk, say), which
    would otherwise read as a failure of the files an export writes."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as error:
        if error.filename is None:
            error.filename = STANDARD_OUTPUT
        raise


def _check_one_query(start: datetime, end: datetime) -> None:
    """Refuse, naming the options, a range no single query may span: the library's
    own refusal speaks of its arguments and of fetch()."""
    span_us = to_epoch_us(end) - to_epoch_us(start)
    if span_us < MAX_QUERY_SPAN_US:
        return  # a range without a whole window was refused as it was snapped

    raise ConfigurationError(
        f"--since, or --start and --end: one query spans less than 30 minutes (the "
        f"API's limit), got {format_duration(span_us)} on the window grid; give a "
        "shorter range (29m, say), or use powerp export, which splits a longer one "
        "into queries"
    )


def _on_grid(start: datetime, end: datetime, window: str) -> tuple[datetime, datetime]:
    """The range snapped to whole windows, as an export plans it, so the command's
    points are the export's: no window is aggregated from a part of itself."""
    try:
        window_us = parse_duration_us(window)
    except ValueError as error:
        raise ConfigurationError(f"--window: {error}") from None

    span = TimeRange.snap(start, end, window_us)
    return from_epoch_us(span.start_us), from_epoch_us(span.end_us)


def _print_points_csv(table: pa.Table) -> None:
    """Points as the export writes them to CSV: the same bytes, BOM included."""
    with tempfile.TemporaryDirectory(prefix="powerp-query-") as folder:
        path = Path(folder, "points.csv")
        write_file(table, path, "csv")
        text = path.read_bytes()

    _write_stdout(text)


def _print_json(rows: list[dict[str, Any]]) -> None:
    _write_stdout(orjson.dumps(rows, option=orjson.OPT_INDENT_2) + b"\n")


def _print_table(table: pa.Table, fmt: str) -> None:
    if fmt == "json":
        _print_json(_jsonable(table))
    elif fmt == "csv":
        sink = io.BytesIO()
        pa_csv.write_csv(table, sink)
        _write_stdout(sink.getvalue())
    else:
        _write_stdout(_text_table(table).encode())


def _write_stdout(data: bytes) -> None:
    """All of ``data`` to standard output, or ``BrokenPipeError`` once its reader is
    gone. Python's buffered stdout takes the part a pipe accepts and, its reader
    gone, lets the rest go without a word, so ``powerp query | head`` would end as if
    everything had been read."""
    sys.stdout.flush()
    try:
        descriptor = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        # A stream of no file (output captured in-process, or one standing for a
        # standard output closed from the start): it takes every byte or fails.
        sys.stdout.write(data.decode())
        sys.stdout.flush()
        return

    left = memoryview(data)
    while left:
        left = left[os.write(descriptor, left) :]


def _shown(text: str) -> str:
    """``text`` for a terminal: a control character the server sent is shown as its
    escape (``\\x1b``), not obeyed. CSV and JSON, made for programs, keep it."""
    return printable(text)


def _jsonable(table: pa.Table) -> list[dict[str, Any]]:
    """Rows for JSON: times in UTC, NaN and the infinities spelled out as JSON Lines
    exports spell them."""
    rows: list[dict[str, Any]] = table.to_pylist()
    for row in rows:
        for key, value in row.items():
            if isinstance(value, datetime):
                row[key] = value.isoformat().replace("+00:00", "Z")
            elif isinstance(value, float):
                row[key] = json_float(value)
    return rows


def _text_table(table: pa.Table) -> str:
    columns = [
        [name, *("" if v is None else _shown(str(v)) for v in table[name].to_pylist())]
        for name in table.column_names
    ]
    widths = [max(len(cell) for cell in column) for column in columns]
    lines = [
        "  ".join(
            column[row].ljust(width)
            for column, width in zip(columns, widths, strict=True)
        )
        for row in range(table.num_rows + 1)
    ]
    return "\n".join(line.rstrip() for line in lines) + "\n"


def _choose_memory_pool() -> None:
    """Arrow's jemalloc pool, unless the user chose one: it hands freed buffers back
    to the system sooner than the default, which keeps a long export's peak memory
    lower (about 300 MB instead of 340 MB for the demo tenant, measured). Only the
    command does this; the library never changes a process-wide setting."""
    if os.environ.get("ARROW_DEFAULT_MEMORY_POOL"):
        return
    with contextlib.suppress(NotImplementedError):  # builds without jemalloc
        pa.set_memory_pool(pa.jemalloc_memory_pool())


def _silence_stdout() -> None:
    """Send what stdout still holds to nowhere, so that flushing it as the process
    ends raises nothing more."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _fail(message: str, code: int) -> int:
    print(f"powerp: {scrub(message)}", file=sys.stderr)
    return code


def _at_once_message(arguments: Sequence[str]) -> str:
    """The line a second Ctrl-C ends the command with."""
    line = (
        "powerp: interrupted again; stopped at once, without saving what was fetched "
        "since the last commit"
    )
    resume = _resume_command(arguments)
    if resume is not None and _has_journal(arguments):
        line += f". Resume with: {resume}"
    return scrub(line)


def _interrupted_message(arguments: Sequence[str], how: str = "interrupted") -> str:
    """How to go on after Ctrl-C or SIGTERM: for an export, the exact command that
    resumes it."""
    resume = _resume_command(arguments)
    if resume is None or not _has_journal(arguments):
        return how

    return f"{how}; every block fetched whole so far is saved. Resume with: {resume}"


def _has_journal(arguments: Sequence[str]) -> bool:
    """Whether the export's folder holds a journal, which a resume needs: a run
    stopped before it wrote one (while it listed the signals, say) saved nothing."""
    folder = _option_value(arguments, "--out")
    return folder is not None and (Path(folder) / MANIFEST_NAME).is_file()


def _failed_blocks_message(error: FetchFailedError, arguments: Sequence[str]) -> str:
    """How many blocks failed, the first reason, and the command that retries them."""
    resume = _resume_command(arguments)
    if resume is None:
        return f"error: {error}"

    first = failure_reason(*error.failures[0])
    failed = f"error: {plural(len(error.failures), 'block')} could not be fetched"
    if all(_refused_as_asked(why) for _, why in error.failures):
        return (
            f"{failed}, first {first}; everything else is saved. The server refused "
            "them as asked, so a resume would ask again in vain until that changes "
            f"on its side; then: {resume}"
        )

    return (
        f"{failed}, first {first}; everything else is saved, and resuming fetches "
        f"only those: {resume}"
    )


def _refused_as_asked(error: BaseException) -> bool:
    """Whether the server refused a query as wrong or forbidden (400, 403, 404,
    422), which asking again the same cannot change."""
    return isinstance(error, BadRequestError | PermissionDeniedError)


def _stopped_message(error: PowerPError, arguments: Sequence[str]) -> str:
    """The error; for an export that has a journal, the command that resumes it."""
    resume = _resume_command(arguments)
    kept = not isinstance(error, ExportWriteError) or error.resumable
    if resume is None or not kept or not _has_journal(arguments):
        return f"error: {error}"

    return f"error: {error}. Resume with: {resume}"


def _resume_command(arguments: Sequence[str]) -> str | None:
    """The command that resumes the export ``arguments`` ran, if they ran one."""
    _, command = split_verbosity(arguments)
    folder = _option_value(command, "--out")
    if command[:1] != ["export"] or folder is None:
        return None

    resume = ["powerp", "export", *_given("--out", folder), "--resume"]
    # The settings file holds where the data came from; the journal refuses another.
    settings = _option_value(command, "--config")
    if settings is not None:
        resume += _given("--config", settings)
    if "--demo" in command:
        resume.append("--demo")

    resume += _behaviour(command)
    backend = _option_value(command, "--rate-backend")
    if backend is None or mask_url(backend) == backend:
        return shlex.join(resume)

    hint = f"(the Redis password is left out: put it back in place of {MASK})"
    return f"{shlex.join(resume)} {hint}"


_BEHAVIOUR_OPTIONS: Final = (
    "--fixed-rate",
    "--max-rate",
    "--rate-backend",
    "--rate-key",
    "--max-in-flight",
    "--max-outage",
    "--timeout",
    "--flush-points",
    "--dask-local",
    "--dask-scheduler",
)
"""Options that change how a run goes, not what it exports (the journal holds that):
a resume is given them again, so it runs as the run it continues."""


def _behaviour(command: Sequence[str]) -> list[str]:
    """The behaviour options of ``command`` as given, a backend's password masked."""
    kept = []
    for option in _BEHAVIOUR_OPTIONS:
        value = _option_value(command, option)
        if value is not None:
            shown = mask_url(value) if option == "--rate-backend" else value
            kept += _given(option, shown)

    if "--quiet" in command:
        kept.append("--quiet")
    return kept


def _given(option: str, value: str) -> list[str]:
    """``option`` and its value as words of a command: joined by ``=`` where the
    value starts with a dash, which the parser would take for an option."""
    return [f"{option}={value}"] if value.startswith("-") else [option, value]


def _option_value(arguments: Sequence[str], name: str) -> str | None:
    """The value of option ``name``: the last one given, as the parser takes it."""
    value = None
    for position, argument in enumerate(arguments):
        if argument == name and position + 1 < len(arguments):
            value = arguments[position + 1]
        elif argument.startswith(f"{name}="):
            value = argument.split("=", 1)[1]
    return value
