"""``python -m powerp_async.simulator`` (``powerp simulate``) as a child process."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys

import aiohttp
import pytest

from powerp_async.simulator._cli import _client_secret, _parser, run

READY = re.compile(r"PowerP simulator serving (http://127\.0\.0\.1:\d+/rt-api/api)\n")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM])
async def test_serves_on_a_free_port_until_interrupted(stop_signal) -> None:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "powerp_async.simulator",
        "--port",
        "0",
        "--client-id",
        "cli",
        "--token-ttl",
        "30",
        "--label",
        "start",
        "--anchor",
        "2026-12-04T12:00:00Z",
        "--seed",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "POWERP_CLIENT_SECRET": "cli-secret"},  # as documented
    )
    try:
        line = await asyncio.wait_for(child.stdout.readline(), timeout=30)
        ready = READY.fullmatch(line.decode())
        assert ready is not None, line
        answer, points = await _token_and_query(ready.group(1))
    finally:
        child.send_signal(stop_signal)
        _, errors = await asyncio.wait_for(child.communicate(), timeout=30)

    assert child.returncode == 0
    assert errors.decode() == ""
    assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 30)
    assert [p["timestamp"] for p in points] == [
        "2026-12-04T16:00:00Z",
        "2026-12-04T16:00:01Z",
    ]


async def _token_and_query(base_url: str) -> tuple[dict, list]:
    form = {
        "client_id": "cli",
        "client_secret": "cli-secret",
        "grant_type": "client_credentials",
    }
    body = {
        "databaseId": 1,
        "measurementIndexes": ["1"],
        "startTime": "2026-12-04T16:00:00Z",
        "endTime": "2026-12-04T16:00:02Z",
        "aggFunction": "last",
        "windowPeriod": "1s",
    }
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base_url}/v1/auth/token", data=form) as response:
            answer = await response.json()
        headers = {"Authorization": f"Bearer {answer['access_token']}"}
        async with http.post(
            f"{base_url}/v1/Query", json=body, headers=headers
        ) as response:
            points = await response.json()
    return answer, points


def test_a_remote_host_is_refused_without_allow_remote(capsys) -> None:
    code = run(["--host", "0.0.0.0", "--port", "0"])

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp simulate: refusing to serve on 0.0.0.0: the simulator accepts fixed "
        "demo credentials and is meant for this machine only; pass --allow-remote to "
        "serve on a non-loopback address anyway\n"
    )


def test_a_bad_anchor_is_a_usage_error(capsys) -> None:
    code = run(["--anchor", "noon"])

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp simulate: invalid time 'noon': expected ISO-8601 such as "
        "'2026-12-04T10:00:00Z'\n"
    )


def test_a_bad_setting_is_a_usage_error(capsys) -> None:
    code = run(["--token-ttl", "0"])

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp simulate: --token-ttl must be from 1 to 1,000,000,000 seconds, "
        "got 0.0\n"
    )


def test_an_anchor_out_of_range_is_quoted_as_typed(capsys) -> None:
    code = run(["--anchor", "1960-01-01T00:00:00Z"])

    assert code == 2
    assert capsys.readouterr().err == (
        "powerp simulate: --anchor must be a time from 1970 to 2199, "
        "got '1960-01-01T00:00:00Z'\n"
    )


def test_help_and_bad_options_return_codes_instead_of_exiting(capsys) -> None:
    assert run(["--help"]) == 0
    assert "usage: powerp simulate" in capsys.readouterr().out
    assert run(["--port", "eighty"]) == 2
    assert "invalid int value: 'eighty'" in capsys.readouterr().err


def secret_of(*args: str, environ: dict[str, str] | None = None) -> str:
    return _client_secret(_parser().parse_args(list(args)), environ or {})


def test_the_secret_comes_from_a_file_the_environment_or_the_demo(
    tmp_path, capsys
) -> None:
    path = tmp_path / "secret"
    path.write_text("from-a-file-1\nnot this line\n", encoding="utf-8")
    environ = {"POWERP_CLIENT_SECRET": "from-the-environment-2"}

    chosen = [
        secret_of("--client-secret-file", str(path), environ=environ),
        secret_of(environ=environ),
        secret_of(),
        secret_of("--client-secret", "demo-secret"),
    ]

    path.write_text("\ufefffrom-an-editor-3\r\n", encoding="utf-8")
    chosen.append(secret_of("--client-secret-file", str(path)))

    assert chosen == [
        "from-a-file-1",
        "from-the-environment-2",
        "demo-secret",
        "demo-secret",
        "from-an-editor-3",  # its byte-order mark and line end are no part of it
    ]
    assert capsys.readouterr().err == ""


def test_a_secret_on_the_command_line_is_warned_about_never_shown(capsys) -> None:
    secret = secret_of("--client-secret", "own-secret-63")

    assert secret == "own-secret-63"
    assert capsys.readouterr().err == (
        "powerp simulate: warning: a secret given with --client-secret is seen by "
        "every user of this machine in the process list; give it in "
        "POWERP_CLIENT_SECRET or with --client-secret-file instead\n"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "\nsecret-on-line-two\n",
            "expected the secret on the first line of {path}, got an empty line",
        ),
        (None, "cannot read {path}: No such file or directory"),
        (
            "   \n",
            "expected the secret on the first line of {path}, got a line of spaces "
            "only",
        ),
        (
            "x" * 5000,
            "the first line of {path} runs past 4,096 characters, far longer than a "
            "secret",
        ),
        (
            # Latin-1: the decoder's own words would quote the byte and its place.
            b"p\xe4sswort\n",
            "{path} is not UTF-8 text; save the secret in UTF-8",
        ),
    ],
)
def test_a_secret_file_without_a_secret_is_a_usage_error(
    tmp_path, capsys, content, message
) -> None:
    path = tmp_path / "secret"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content, encoding="utf-8")

    code = run(["--client-secret-file", str(path)])

    assert code == 2
    assert capsys.readouterr().err == (
        f"powerp simulate: --client-secret-file: {message.format(path=path)}\n"
    )
