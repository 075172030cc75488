"""The public surface: one sorted list, every name documented, nothing else public."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import powerp_async
from powerp_async import blocking
from powerp_async.blocking import run

PUBLIC_MODULES = {
    "blocking",
    "cli",
    "client",
    "config",
    "control",
    "dask_executor",
    "errors",
    "events",
    "models",
    "pacing",
    "planning",
    "pytest_plugin",
    "redis_pacing",
    "simulator",
    "testing",
}


def test_all_is_sorted_and_complete() -> None:
    names = powerp_async.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))
    assert all(hasattr(powerp_async, name) for name in names)


def test_every_public_name_is_documented() -> None:
    undocumented = [
        name
        for name in powerp_async.__all__
        if not name.startswith("__")
        and name.isidentifier()
        and not name.isupper()
        and not (getattr(powerp_async, name).__doc__ or "").strip()
    ]
    assert undocumented == []


def test_modules_are_private_unless_listed() -> None:
    found = {
        info.name
        for info in pkgutil.iter_modules(powerp_async.__path__)
        if not info.name.startswith("_")
    }
    assert found == PUBLIC_MODULES
    for name in found:
        assert importlib.import_module(f"powerp_async.{name}").__doc__


def documented_objects() -> dict[str, object]:
    """Every public function and class: the package's names and ``blocking``'s."""
    objects = {
        name: getattr(powerp_async, name)
        for name in powerp_async.__all__
        if not name.startswith("__") and not name.isupper()
    }
    for name in ("fetch_batches", "fetch_frame", "fetch_table", "export", "run"):
        objects[f"blocking.{name}"] = getattr(blocking, name)
    objects["blocking.measurements"] = blocking.measurements
    return objects


def test_every_public_name_shows_an_example() -> None:
    lacking = {
        name
        for name, item in documented_objects().items()
        if not any(mark in (item.__doc__ or "") for mark in (">>>", "Example::"))
    }

    assert lacking == set()


def test_the_examples_run() -> None:
    finder = doctest.DocTestFinder()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    # Every public name by getattr: the package imports them lazily, so its vars
    # hold only those some earlier test happened to use.
    public = {name: getattr(powerp_async, name) for name in powerp_async.__all__}
    namespace = {**vars(powerp_async), **public}
    namespace.update(blocking=blocking, Path=Path, run=run)

    for name, item in documented_objects().items():
        for test in finder.find(item, name, globs=dict(namespace)):
            runner.run(test)

    outcome = runner.summarize(verbose=False)
    assert outcome.failed == 0
    assert outcome.attempted >= 40


def test_the_library_is_quiet_unless_logging_is_configured() -> None:
    script = (
        "import logging, powerp_async\n"
        "logging.getLogger('powerp_async.engine').warning('retrying a block')\n"
        "logging.basicConfig()\n"
        "logging.getLogger('powerp_async.engine').warning('now shown')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )

    assert done.stderr == "WARNING:powerp_async.engine:now shown\n"
