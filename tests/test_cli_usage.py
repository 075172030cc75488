"""The ``powerp`` command line: ``-v`` anywhere, one-line errors, no secret shown."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pyarrow as pa
import pytest

from powerp_async import cli

from .processes import environment, powerp

SERVING = re.compile(r"PowerP simulator serving (http://127\.0\.0\.1:\d+/rt-api/api)\n")


def simulate(*args: str, **variables: str) -> tuple[list[str], str, str]:
    """``powerp ARGS`` serving, with no ``POWERP_*`` variables but ``variables``: its
    first lines, what else it wrote, its stderr."""
    command = [sys.executable, "-m", "powerp_async", *args]
    clean = {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}
    child = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**clean, **variables},
    )
    assert child.stdout is not None
    try:
        lines = [child.stdout.readline()]
        if SERVING.fullmatch(lines[0]):
            lines.append(child.stdout.readline())
    finally:
        child.terminate()
        rest, errors = child.communicate(timeout=30)

    return lines, rest, errors


@pytest.mark.parametrize(
    "args",
    [("-v", "simulate", "--port", "0"), ("simulate", "--port", "0", "-v")],
)
def test_verbose_before_or_after_simulate(args: tuple[str, ...]) -> None:
    lines, rest, errors = simulate(*args)

    served = SERVING.fullmatch(lines[0])
    assert served is not None, (lines, errors)
    url = served.group(1)
    assert lines[1] == (
        "demo credentials (public): POWERP_CLIENT_ID=demo "
        f"POWERP_CLIENT_SECRET=demo-secret POWERP_API_BASE_URL={url}\n"
    )
    assert rest == ""
    assert f" INFO powerp_async.simulator: simulator serving {url}\n" in errors


def test_a_secret_of_ones_own_is_never_printed() -> None:
    lines, rest, errors = simulate(
        "simulate", "--port", "0", "--client-secret", "own-secret-91"
    )

    served = SERVING.fullmatch(lines[0])
    assert served is not None, (lines, errors)
    assert lines[1] == (
        "client id 'demo', with the secret you gave: POWERP_CLIENT_ID=demo "
        f"POWERP_API_BASE_URL={served.group(1)}\n"
    )
    assert rest == ""
    assert "own-secret-91" not in "".join(lines) + rest + errors


def test_simulate_takes_the_client_id_from_the_environment_with_the_secret() -> None:
    lines, rest, errors = simulate(
        "simulate",
        *("--port", "0"),
        POWERP_CLIENT_ID="reporting",
        POWERP_CLIENT_SECRET="own-secret-92",
    )

    served = SERVING.fullmatch(lines[0])
    assert served is not None, (lines, errors)
    assert lines[1] == (
        "client id 'reporting', with the secret you gave: POWERP_CLIENT_ID=reporting "
        f"POWERP_API_BASE_URL={served.group(1)}\n"
    )
    assert "own-secret-92" not in "".join(lines) + rest + errors


def test_simulate_help_shows_the_public_defaults() -> None:
    done = powerp("simulate", "--help")

    assert done.returncode == 0
    text = " ".join(done.stdout.split())
    assert (
        "--client-id CLIENT_ID the client id clients must send (default: "
        "POWERP_CLIENT_ID if it is set, else demo)" in text
    )
    assert (
        "the secret clients must send (default: demo-secret, the public demo "
        "secret)" in text
    )


def test_verbose_before_and_after_a_command_add_up() -> None:
    options = cli.build_parser().parse_args(["-v", "export", "--out", "x", "-v"])

    assert (options.verbose, options.verbose_after) == (1, 1)


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["-vv", "simulate", "--client-secret", "hidden-77", "--bogus"],
            "powerp simulate: unrecognized arguments: --bogus (see powerp simulate "
            "--help)\n",
        ),
        (
            ["simulate", "--port", "0", "--client=hidden-77"],
            "powerp simulate: ambiguous option: --client=*** could match --client-id, "
            "--client-secret, --client-secret-file (see powerp simulate --help)\n",
        ),
        (
            ["export", "--out", "x", "--client-secret", "hidden-77"],
            "powerp: error: unrecognized arguments: --client-secret *** (see powerp "
            "--help)\n",
        ),
        (
            ["-vv", "measurements", "--client-sec=hidden-77"],
            "powerp: error: unrecognized arguments: --client-sec=*** (see powerp "
            "--help)\n",
        ),
        (
            # One query as given: a block size would change nothing.
            ["query", "--database", "1", "--index", "1", "--block-size", "1"],
            "powerp: error: unrecognized arguments: --block-size 1 (see powerp "
            "--help)\n",
        ),
        (
            ["simulate", "--client_secret", "hidden-77"],
            "powerp simulate: unrecognized arguments: --client_secret *** (see powerp "
            "simulate --help)\n",
        ),
        (
            ["export", "--out", "x", "--Secret=hidden-77", "--api-token", "tok-5"],
            "powerp: error: unrecognized arguments: --Secret=*** --api-token *** (see "
            "powerp --help)\n",
        ),
        (
            ["frobnicate"],
            "powerp: error: argument command: invalid choice: 'frobnicate' (choose "
            "from 'export', 'measurements', 'query', 'simulate') (see powerp --help)\n",
        ),
        (
            ["export", "--format", "xls", "--out", "x"],
            "powerp: error: argument --format: invalid choice: 'xls' (choose from "
            "'parquet', 'csv', 'jsonl') (see powerp export --help)\n",
        ),
        (
            ["export", "--out", "x", "--since", "-2h"],
            "powerp: error: argument --since: expected one argument; '-2h' was read "
            "as an option: a value that starts with '-' is given as --since=-2h (see "
            "powerp export --help)\n",
        ),
        (
            ["export", "--out", "x", "--tz", "-05:00"],
            "powerp: error: argument --tz: expected one argument; '-05:00' was read "
            "as an option: a value that starts with '-' is given as --tz=-05:00 (see "
            "powerp export --help)\n",
        ),
        (
            ["simulate", "--client-secret", "-4hidden-77"],
            "powerp simulate: argument --client-secret: expected one argument; '***' "
            "was read as an option: a value that starts with '-' is given as "
            "--client-secret=*** (see powerp simulate --help)\n",
        ),
        (
            ["export", "--since", "2h", "--out"],
            "powerp: error: argument --out: expected one argument (see powerp export "
            "--help)\n",
        ),
    ],
)
def test_usage_errors_are_one_line_with_no_secret(capsys, argv, error) -> None:
    code = cli.main(argv)

    assert code == 2
    assert capsys.readouterr().err == error


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-12-04T11:00:00Z", "2026-12-04T11:00:03Z"),
        # Off the grid: both commands snap to the same three whole windows.
        ("2026-12-04T11:00:00.3Z", "2026-12-04T11:00:03.7Z"),
    ],
)
def test_query_csv_is_written_as_the_export_writes_it(
    served: str, tmp_path, start: str, end: str
) -> None:
    asked = [  # both signals are aggregated by their mean, as the export asks
        *("--database", "1", "--index", "1", "--index", "2"),
        *("--start", start, "--end", end),
    ]
    exported = powerp(
        *("export", "--out", str(tmp_path), "--format", "csv", *asked),
        env=environment(served),
    )
    queried = subprocess.run(
        [
            *(sys.executable, "-m", "powerp_async", "query", *asked),
            *("--agg", "mean", "--format", "csv"),
        ],
        capture_output=True,
        env=environment(served),
        timeout=60,
        check=False,
    )

    assert exported.returncode == queried.returncode == 0, queried.stderr
    (part,) = tmp_path.glob("database=1/day=2026-12-04/*.csv")
    assert queried.stdout == part.read_bytes()
    lines = queried.stdout.decode("utf-8").splitlines()
    assert lines[0] == (
        '\ufeff"database_id","index","aggregation","timestamp","value_float",'
        '"value_int","value_bool","value_text"'
    )
    assert [line.split(",")[:4] for line in lines[1:]] == [
        ["1", f'"{index}"', '"mean"', f'"2026-12-04T11:00:0{second}.000000Z"']
        for index in (1, 2)
        for second in (1, 2, 3)
    ]


@pytest.mark.parametrize(
    ("option", "error"),
    [
        (
            ("--block-size", "30"),
            "--block-size: expected an integer from 1 to 20 (the API's limit), got 30",
        ),
        (("--flush-points", "0"), "--flush-points: expected at least 1, got 0"),
        (("--max-in-flight", "0"), "--max-in-flight: expected 1 to 1024, got 0"),
        (
            ("--max-rate", "0"),
            "--max-rate: expected requests per second from 0.001 up (unset, the "
            "rate is discovered), got 0.0",
        ),
    ],
)
def test_a_wrong_option_is_named_as_typed(
    monkeypatch, capsys, tmp_path, option, error
) -> None:
    # Refused before any request: the address is never contacted.
    for name, value in environment("http://127.0.0.1:9/rt-api/api").items():
        monkeypatch.setenv(name, value)

    code = cli.main(["export", "--out", str(tmp_path / "never"), *option])

    assert code == 2
    assert capsys.readouterr().err == f"powerp: error: {error}\n"
    assert not (tmp_path / "never").exists()


def test_a_wrong_setting_from_a_file_keeps_its_name(
    monkeypatch, capsys, tmp_path
) -> None:
    config = tmp_path / "powerp.toml"
    config.write_text('base_url = "http://127.0.0.1:9/rt-api/api"\nblock_size = 30\n')
    monkeypatch.setenv("POWERP_CLIENT_ID", "cli")
    monkeypatch.setenv("POWERP_CLIENT_SECRET", "cli-secret")

    code = cli.main(["measurements", "--config", str(config)])

    assert code == 2
    assert capsys.readouterr().err == (
        f"powerp: error: {config}: block_size: expected an integer from 1 to 20 (the "
        "API's limit), got 30\n"
    )


def test_one_failed_block_is_one_block() -> None:
    from powerp_async._words import plural

    assert [plural(n, "block") for n in (0, 1, 2, 1500)] == [
        "0 blocks",
        "1 block",
        "2 blocks",
        "1,500 blocks",
    ]
    assert plural(1, "retry", "retries") + ", " + plural(3, "retry", "retries") == (
        "1 retry, 3 retries"
    )


def test_the_command_gives_a_host_its_sigterm_handler_back(monkeypatch, capsys):
    def host_handler(signum, frame) -> None:
        raise AssertionError("not called here")

    for name, value in environment("http://127.0.0.1:9/rt-api/api").items():
        monkeypatch.setenv(name, value)

    previous = signal.signal(signal.SIGTERM, host_handler)
    try:
        code = cli.main(["export", "--out", "x", "--block-size", "30"])
        after = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp: error: --block-size: expected an integer from 1 to 20 (the API's "
        "limit), got 30\n"
    )
    assert after is host_handler


def test_a_text_table_shows_control_characters_rather_than_obeying_them() -> None:
    table = pa.table(
        {
            "name": ["\x1b]0;owned\x07Temperature", "plain"],
            "unit": ["\x1b[31m°C", None],
        }
    )

    assert cli._text_table(table) == (
        "name                         unit\n"
        "\\x1b]0;owned\\x07Temperature  \\x1b[31m°C\n"
        "plain\n"
    )
