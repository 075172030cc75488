"""The public surface: one sorted list, every name documented, nothing else public."""

from __future__ import annotations

import importlib
import pkgutil

import powerp_async

PUBLIC_MODULES = {
    "blocking",
    "cli",
    "client",
    "config",
    "control",
    "errors",
    "events",
    "models",
    "pacing",
    "planning",
    "pytest_plugin",
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
