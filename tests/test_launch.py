"""The package loads its heavy parts when first used, and the command can be stopped
while it loads them."""

from __future__ import annotations

import importlib
import signal
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

import powerp_async

HEAVY = ("aiohttp", "pyarrow", "numpy", "anyio")


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_importing_the_package_loads_none_of_the_heavy_libraries() -> None:
    done = run_python(
        f"""
        import sys
        import powerp_async, powerp_async._launch
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        powerp_async.ConfigurationError
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        """
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "[]\n[]\n"


def test_every_public_name_is_the_object_of_its_module() -> None:
    for name in powerp_async.__all__:
        value = getattr(powerp_async, name)
        if name == "__version__":
            assert value == metadata.version("powerp-async")
            continue

        module = importlib.import_module(powerp_async._MODULE_OF[name], "powerp_async")
        assert value is getattr(module, name), name
    listed = dir(powerp_async)
    assert set(powerp_async.__all__) <= set(listed)
    assert [name for name in listed if not name.startswith("__")] == sorted(
        name for name in powerp_async.__all__ if not name.startswith("__")
    )


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'PowerPClients'"):
        powerp_async.PowerPClients  # noqa: B018 (the access is the test)


@pytest.mark.parametrize(
    ("signum", "line"),
    [
        (signal.SIGINT, "powerp: interrupted while starting; nothing was done\n"),
        (signal.SIGTERM, "powerp: terminated while starting; nothing was done\n"),
        (signal.SIGHUP, "powerp: hung up while starting; nothing was done\n"),
    ],
)
def test_a_stop_while_the_command_loads_ends_it_with_one_line(
    signum: int, line: str
) -> None:
    # The signal is sent as the import of the command begins, so it lands there.
    done = run_python(
        f"""
        import os, signal, sys

        class SignalOnImport:
            def find_spec(self, name, path=None, target=None):
                if name == "powerp_async.cli":
                    os.kill(os.getpid(), {int(signum)})
                return None

        sys.meta_path.insert(0, SignalOnImport())
        from powerp_async._launch import main
        code = main(["--help"])
        print("powerp_async.cli" in sys.modules, signal.getsignal({int(signum)}))
        sys.exit(code)
        """
    )

    assert (done.returncode, done.stderr) == (128 + signum, line)
    default = signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
    assert done.stdout == f"False {default}\n"


def test_the_command_runs_as_before_when_nothing_stops_it() -> None:
    done = run_python(
        """
        import sys
        from powerp_async._launch import main
        sys.exit(main(["query", "--database", "1"]))
        """
    )

    assert done.returncode == 2
    assert done.stdout == ""
    assert "the following arguments are required: --index" in done.stderr
