"""What the package imports: no optional library before it is used.

The core never needs Dask, and the Dask executor says what to install without it;
these run whether the ``dask`` extra is installed or not. pandas takes half a second
to import, and pyarrow imports it, when it is installed, with the first array it
builds: a module that built one on import would make every process pay for it, the
simulator and every command refused for its options included.
"""

from __future__ import annotations

import subprocess
import sys

from .conftest import CLIENT_SECRET


def python_output(script: str) -> str:
    """What ``script`` prints, run in a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    return done.stdout


def test_an_export_never_imports_dask() -> None:
    script = (
        "import sys, tempfile, pathlib, anyio\n"
        "from datetime import datetime, timedelta, UTC\n"
        "import powerp_async, powerp_async.cli\n"
        "from powerp_async import ExportSpec, PowerPClient, export\n"
        "from powerp_async.simulator import Simulator, SimulatorSettings\n"
        "async def main():\n"
        f"    settings = SimulatorSettings('tester', {CLIENT_SECRET!r})\n"
        "    async with Simulator(settings) as sim, PowerPClient(client_id='tester',"
        f" client_secret={CLIENT_SECRET!r}, base_url=sim.base_url) as client:\n"
        "        end = datetime.now(UTC) - timedelta(hours=1)\n"
        "        out = pathlib.Path(tempfile.mkdtemp()) / 'out'\n"
        "        spec = ExportSpec(out=out, start=end - timedelta(minutes=5), end=end,"
        " window='10s', databases=(1,))\n"
        "        report = await export(client, spec)\n"
        "        print(report.points > 0)\n"
        "anyio.run(main)\n"
        "print(sorted(m for m in sys.modules"
        " if m.split('.')[0] in ('dask', 'distributed')))\n"
    )

    assert python_output(script) == "True\n[]\n"


def test_importing_the_package_and_its_simulator_leaves_pandas_out() -> None:
    script = (
        "import sys\n"
        "import powerp_async, powerp_async.cli, powerp_async.simulator\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'pandas'))\n"
    )

    assert python_output(script) == "[]\n"


def test_the_executor_without_the_extra_says_what_to_install() -> None:
    script = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if the extra were not installed\n"
        "try:\n"
        "    import powerp_async.dask_executor\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )

    assert python_output(script) == (
        "powerp_async.dask_executor: expected the dask extra to be installed, got no "
        "'distributed' module; pip install 'powerp-async[dask]'\n"
    )


def test_the_command_without_the_extra_says_what_to_install(tmp_path) -> None:
    script = (
        "import sys\n"
        "sys.modules['distributed'] = None  # as if the extra were not installed\n"
        "from powerp_async.cli import main\n"
        "sys.exit(main(['export', '--demo', '--dask-local', '2', '--out', "
        f"{str(tmp_path / 'out')!r}]))\n"
    )

    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False
    )

    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        "powerp: error: --dask-local: expected the dask extra to be installed, got "
        "no 'distributed' module; pip install 'powerp-async[dask]'\n"
    )
    assert not (tmp_path / "out").exists()
