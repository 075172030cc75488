"""The client secret and tokens never reach a log, an error, a repr or a file."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest

from powerp_async import ExportSpec, PowerPClient, export
from powerp_async._token import TokenManager
from powerp_async.errors import AuthenticationError, ConfigurationError

from .conftest import ANCHOR, CLIENT_SECRET


def every_byte_below(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


async def test_debug_export_with_token_renewals_leaks_nothing(
    simulator, tmp_path, caplog, capsys, monkeypatch
) -> None:
    tokens: list[str] = []
    original = TokenManager._store

    def remember(self, answer):
        tokens.append(answer["access_token"])
        original(self, answer)

    monkeypatch.setattr(TokenManager, "_store", remember)
    caplog.set_level(logging.DEBUG)
    spec = ExportSpec(
        out=tmp_path / "out",
        start=ANCHOR - timedelta(minutes=30),
        end=ANCHOR,
        window="10s",
        databases=(1,),
        rows_per_flush=5_000,
    )
    progress_lines = []

    async with PowerPClient(
        client_id="tester",
        client_secret=CLIENT_SECRET,
        base_url=simulator.base_url,
        initial_rate=50,
    ) as client:

        def progress(stats, total):
            progress_lines.append(repr(stats))
            if len(progress_lines) == 2:
                simulator.revoke_tokens()  # forces a 401 and a renewal mid-run

        report = await export(client, spec, progress=progress)
        shown = repr(client) + repr(client.config) + repr(client._tokens)

    assert report.complete
    assert len(tokens) == 2  # the first, and the one after the 401
    written = every_byte_below(spec.out)
    text = caplog.text + capsys.readouterr().out + shown + "".join(progress_lines)
    assert "DEBUG" in caplog.text  # the log really was at its most verbose
    for secret in (CLIENT_SECRET, *tokens):
        assert secret not in text
        assert secret.encode() not in written


async def test_refused_credentials_do_not_echo_the_secret(simulator, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "wrong-secret-a1b2c3"

    async with PowerPClient(
        client_id="tester", client_secret=wrong, base_url=simulator.base_url
    ) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.measurements()

    assert wrong not in str(caught.value) + repr(caught.value) + caplog.text


def test_credentials_in_the_base_url_are_refused_and_masked() -> None:
    url = f"https://me:{CLIENT_SECRET}@powerp.invalid/rt-api/api"

    with pytest.raises(ConfigurationError) as caught:
        PowerPClient(client_id="tester", client_secret="x", base_url=url)

    assert "https://***@powerp.invalid/rt-api/api" in str(caught.value)
    assert CLIENT_SECRET not in str(caught.value)
