"""The command's logging: quiet by default, but for warnings a user must see."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import logging
from powerp_async._usage import configure_logging
configure_logging(0)
logging.getLogger("powerp_async.decode").warning("a text kept changed")
logging.getLogger("powerp_async.engine").warning("a retry scheduled")
"""


def test_a_value_kept_changed_is_told_without_verbose() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )

    assert "WARNING powerp_async.decode: a text kept changed" in done.stderr
    assert "a retry scheduled" not in done.stderr
