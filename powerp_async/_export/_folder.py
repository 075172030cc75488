"""The output folder: refused up front when it cannot be written, and the one error
raised when writing into it fails during a run.

The up-front check catches what can be known before anything is fetched (a file where
the folder should be, a folder that cannot be written); a disk that fills up or a
mount that turns read-only during the run can only be caught as it happens, and
becomes :class:`ExportWriteError`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

from ..errors import ConfigurationError, ExportWriteError
from ._manifest import MANIFEST_NAME, locked_for_reading
from ._report import REPORT_NAME


@contextmanager
def writing(folder: Path) -> Iterator[None]:
    """Raise an OS failure to write inside ``folder`` as :class:`ExportWriteError`."""
    try:
        yield
    except OSError as error:
        raise ExportWriteError(folder, error) from error


def check_folder(out: Path, *, fresh: bool) -> None:
    """Refuse ``out`` before anything is fetched if the export could not be written.

    A ``fresh`` export also needs the folder absent or empty, so two exports never
    mix in one folder.
    """
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"output folder {out} is a file, not a folder")

    if fresh and out.exists() and any(map(_may_be_export, out.iterdir())):
        journal = (out / MANIFEST_NAME).exists()
        if journal:
            # An export still running there is waited for, not continued.
            with locked_for_reading(out):
                pass
        raise ConfigurationError(
            f"output folder {out} is not empty; refusing to mix two exports"
            + (_what_is_left(out) if journal else "")
        )

    existing = _nearest_existing(out)
    if existing != out and not existing.is_dir():
        raise ConfigurationError(
            f"cannot create output folder {out}: {existing} is a file, not a folder"
        )

    # os.access answers for the real user; a superuser passes it everywhere but on a
    # read-only mount, which the run then reports as ExportWriteError.
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigurationError(
            f"output folder {out} is not writable"
            if existing == out
            else f"cannot create output folder {out}: {existing} is not writable"
        )


def _may_be_export(entry: Path) -> bool:
    """Whether ``entry``, at the top of a new export's folder, may belong to another
    export: a hidden name there (``.gitkeep``, ``.DS_Store``) is no export's, whose
    hidden parts lie in its partition folders, and no data to readers."""
    return not entry.name.startswith(".")


def _what_is_left(out: Path) -> str:
    """What to do with the export in ``out``: continue it, or nothing if it is done
    (its report says complete, which a resume alone could not add to)."""
    try:
        complete = orjson.loads((out / REPORT_NAME).read_bytes()).get("complete")
    except (OSError, ValueError, AttributeError):
        complete = False

    if complete is True:
        return (
            " (it holds a finished export, complete; choose another folder, or "
            "remove this one to export again)"
        )

    return " (continue it with resume=True; --resume on the command line)"


def _nearest_existing(path: Path) -> Path:
    """``path`` itself if it exists, else its closest existing ancestor."""
    for candidate in (path, *path.absolute().parents):
        if candidate.exists():
            return candidate

    return Path(path.absolute().anchor)
