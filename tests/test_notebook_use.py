"""The README's library example, as a script and as notebook cells, exact to the point.

Jupyter compiles a cell with top-level ``await`` allowed and awaits it on the kernel's
event loop, which is already running; :func:`run_cells` does the same, so ``await``,
``async with`` and the ``blocking`` calls are checked as a notebook runs them.
"""

from __future__ import annotations

import ast
import asyncio
import inspect
import re
import textwrap
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from powerp_async import POINT_SCHEMA, ClientConfig, blocking
from powerp_async._time import to_epoch_us
from powerp_async.planning import TimeRange
from powerp_async.testing import SimulatorThread

from .conftest import ANCHOR
from .helpers import assert_exact, expected_points
from .test_frames import frame_as_table

README = Path(__file__).parent.parent / "README.md"
FIXED_NOW = "datetime(2026, 12, 4, 12, 0, tzinfo=UTC)"
START = ANCHOR - timedelta(hours=1)

pytestmark = pytest.mark.powerp_simulator(anchor_us=to_epoch_us(ANCHOR))


def library_example() -> str:
    """The first Python block of the README's "Library use", its clock set to ANCHOR."""
    text = README.read_text(encoding="utf-8")
    section = text.split("## Library use\n", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert code is not None
    source = code.group(1)
    assert source.count("datetime.now(UTC)") == 1
    return source.replace("datetime.now(UTC)", FIXED_NOW)


async def run_cells(cells: list[str], namespace: dict[str, Any]) -> None:
    """Run each cell as Jupyter does: top-level await, on the running loop."""
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    for cell in cells:
        code = compile(textwrap.dedent(cell), "<cell>", "exec", flags=flags)
        outcome = eval(code, namespace)
        if inspect.iscoroutine(outcome):
            await outcome


@pytest.fixture
def environment(powerp_simulator, monkeypatch) -> SimulatorThread:
    config = powerp_simulator.client_config()
    monkeypatch.setenv("POWERP_CLIENT_ID", config.client_id)
    monkeypatch.setenv("POWERP_CLIENT_SECRET", config.client_secret)
    monkeypatch.setenv("POWERP_API_BASE_URL", config.base_url)
    return powerp_simulator


def check_output(printed: str, server: SimulatorThread, config: ClientConfig) -> None:
    """Every line the example prints, against the simulator's own data."""
    signals = blocking.measurements(config)
    one_s = expected_points(server.tenant, signals[:50], snap(1))
    one_m = expected_points(server.tenant, signals[:50], snap(60))
    batched = expected_points(server.tenant, signals[:100], snap(60))
    lines = printed.splitlines()

    assert lines[0] == f"{len(one_s)} points"
    assert lines[1].split() == ["timestamp", "name", "unit", "value_float"]
    first_rows = sorted(one_m)[:3]
    names = {(m.database_id, m.index): m.name for m in signals}
    for line, (database_id, index, _, stamp_us) in zip(
        lines[2:5], first_rows, strict=True
    ):
        assert str(from_us(stamp_us)) in line
        assert names[(database_id, index)] in line
    assert lines[5:] == [
        f"{len(batched)} points in batches",
        f"{len(server.tenant.signals)} signals",
    ]


def snap(window_s: int) -> TimeRange:
    return TimeRange.snap(START, ANCHOR, window_s * 1_000_000)


def from_us(stamp_us: int) -> pd.Timestamp:
    return pd.Timestamp(stamp_us, unit="us", tz="UTC")


def test_readme_example_runs_as_a_script(environment, capsys) -> None:
    exec(compile(library_example(), "README.md", "exec"), {"__name__": "__main__"})

    check_output(capsys.readouterr().out, environment, environment.client_config())


def test_readme_example_runs_in_a_notebook_cell(environment, capsys) -> None:
    cell = library_example().replace("asyncio.run(main())", "await main()")

    asyncio.run(run_cells([cell], {"__name__": "__main__"}))

    check_output(capsys.readouterr().out, environment, environment.client_config())


def test_cells_share_a_client_and_mix_await_with_blocking(powerp_simulator) -> None:
    config = powerp_simulator.client_config(initial_rate=50)
    namespace: dict[str, Any] = {
        "config": config,
        "start": START,
        "end": ANCHOR,
        "window": "1m",
    }
    cells = [
        "from powerp_async import PowerPClient, blocking",
        """
        client = PowerPClient(config)
        await client.__aenter__()
        """,
        "signals = (await client.measurements())[:6]",
        "table = await client.fetch_table(signals, start, end, window=window)",
        """
        async with client.fetch_batches(signals, start, end, window=window) as stream:
            batches = [batch async for batch in stream]
        """,
        "await client.aclose()",
        "frame = blocking.fetch_frame(config, signals, start, end, window=window)",
        """
        synced = list(
            blocking.fetch_batches(config, signals, start, end, window=window)
        )
        """,
    ]

    asyncio.run(run_cells(cells, namespace))

    expected = expected_points(powerp_simulator.tenant, namespace["signals"], snap(60))
    assert_exact(namespace["table"], expected)
    assert_exact(pa.Table.from_batches(namespace["batches"], POINT_SCHEMA), expected)
    assert_exact(frame_as_table(namespace["frame"]), expected)
    assert_exact(pa.Table.from_batches(namespace["synced"], POINT_SCHEMA), expected)
    assert repr(namespace["client"]).endswith(" closed>")
