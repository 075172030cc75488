"""``--config FILE`` on the commands, against the simulator in its own process."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from powerp_async.simulator import SimulatorSettings, demo_tenant

from .processes import SECRET, environment, powerp


def clean_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("POWERP_")}


def config_file(folder: Path, base_url: str, mode: int = 0o600, **extra: str) -> Path:
    lines = [f'client_id = "cli"\nbase_url = "{base_url}"\n']
    lines += [f"{key} = {value}\n" for key, value in extra.items()]
    path = folder / "powerp.toml"
    path.write_text("".join(lines), encoding="utf-8")
    path.chmod(mode)
    return path


def test_measurements_from_a_config_file(served: str, tmp_path: Path) -> None:
    path = config_file(tmp_path, served, client_secret=f'"{SECRET}"', block_size="20")

    done = powerp(
        "measurements",
        "--config",
        str(path),
        "--format",
        "json",
        env=clean_environment(),
    )

    assert done.returncode == 0, done.stderr
    rows = orjson.loads(done.stdout)
    assert [(r["databaseId"], r["index"]) for r in rows] == [
        (s.database_id, s.index) for s in demo_tenant(SimulatorSettings()).signals
    ]


def test_secret_from_the_environment_with_a_shared_file(
    served: str, tmp_path: Path
) -> None:
    path = config_file(tmp_path, served, mode=0o644)

    done = powerp(
        "query",
        *("--config", str(path), "--database", "1", "--index", "1"),
        *("--start", "2026-12-04T11:00:00Z", "--end", "2026-12-04T11:00:03Z"),
        "--format",
        "json",
        env={**clean_environment(), "POWERP_CLIENT_SECRET": SECRET},
    )

    assert done.returncode == 0, done.stderr
    stamps = [row["timestamp"] for row in orjson.loads(done.stdout)]
    assert stamps == [f"2026-12-04T11:00:0{second}Z" for second in (1, 2, 3)]


def test_a_shared_file_with_the_secret_is_refused(served: str, tmp_path: Path) -> None:
    path = config_file(tmp_path, served, mode=0o644, client_secret=f'"{SECRET}"')

    done = powerp("measurements", "--config", str(path), env=clean_environment())

    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == (
        f"powerp: error: {path} holds client_secret but can be read or changed by "
        f"group or others (mode 644); run 'chmod 600 {path}', or remove "
        "client_secret from it and set POWERP_CLIENT_SECRET instead\n"
    )


def test_a_secret_in_another_encoding_is_one_line_that_shows_none_of_it(
    served: str,
) -> None:
    # A Latin-1 secret in the environment: Python holds its byte 0xE4 as U+DCE4.
    latin = environment(served, secret="p\udce4sswort-" + SECRET)

    done = powerp("measurements", env=latin)

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "powerp: error: client_secret: expected UTF-8 text, not bytes of another "
        "encoding (as an environment variable set from a file saved in Latin-1 "
        "holds)\n"
    )


def test_a_wrong_key_is_one_line(served: str, tmp_path: Path) -> None:
    path = config_file(tmp_path, served, max_inflight="4")

    done = powerp(
        "export",
        *("--config", str(path), "--out", str(tmp_path / "out")),
        env=clean_environment(),
    )

    assert done.returncode == 2
    assert done.stderr.startswith(
        f"powerp: error: {path}: unknown key(s) 'max_inflight'; known keys: adaptive"
    )
    assert done.stderr.count("\n") == 1
    assert not (tmp_path / "out").exists()
