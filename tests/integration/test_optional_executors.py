"""A dbt Cloud user installs ``prefect-dbt-orchestrator[cloud]`` and gets no dbt-core.

A fresh virtual environment gets exactly the lock's ``[cloud]`` closure (exported as a
``pylock.toml``, the workspace packages from their local paths, everything else from uv's cache,
or the registry when the cache lacks it); a script in it then checks what a user would see.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).parents[2]

#: Run inside the fresh environment; prints what it found as JSON.
CHECK = """
import json
import sys

found = {}
import prefect_dbt_orchestrator
from prefect_dbt_orchestrator import (
    DbtCloudCredentials,
    DbtCloudExecutor,
    PrefectDbtOrchestrator,
    PrefectDbtSettings,
)

settings = PrefectDbtSettings(project_dir=sys.argv[1])
executor = DbtCloudExecutor(
    DbtCloudCredentials(api_key="dbc_not_a_real_key", account_id=1),
    project_id=2,
    environment_id=3,
)
orch = PrefectDbtOrchestrator(settings=settings, executor=executor, execution_mode="per_node")
found["built"] = type(orch.executor).__name__
try:
    PrefectDbtOrchestrator(settings=settings)
except ImportError as exc:
    found["default_executor"] = str(exc)
try:
    from prefect_dbt_orchestrator import DbtCoreExecutor
except ImportError as exc:
    found["core_import"] = str(exc)
found["modules"] = sorted(
    m for m in sys.modules if m.split(".")[0] in ("dbt", "dbt_exec_core", "dbt_common")
)
try:
    import dbt
except ImportError:
    found["dbt_importable"] = False
else:
    found["dbt_importable"] = True
print(json.dumps(found))
"""


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: run the tests with `uv run pytest`")
    return uv


def _install(uv: str, venv: Path, lock: Path) -> None:
    """Install the exported lock: from uv's cache alone if it can, else with the registry."""
    python = venv / "bin" / "python"
    command = [uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(lock)]
    offline = subprocess.run([*command, "--offline"], capture_output=True, text=True)
    if offline.returncode == 0:
        return
    online = subprocess.run(command, capture_output=True, text=True)
    assert online.returncode == 0, offline.stderr + online.stderr


@pytest.fixture(scope="module")
def cloud_only(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with ``prefect-dbt-orchestrator[cloud]`` and nothing else."""
    uv, base = _uv(), tmp_path_factory.mktemp("cloud-only")
    lock = base / "pylock.toml"
    export = ("export", "--frozen", "--quiet", "--format", "pylock.toml", "--no-dev")
    cloud = ("--package", "prefect-dbt-orchestrator", "--extra", "cloud", "--no-editable")
    subprocess.run(
        [uv, *export, *cloud, "--output-file", str(lock)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    exported = lock.read_text()
    assert 'name = "dbt-exec-cloud"' in exported and 'name = "dbt-core"' not in exported
    venv = base / "venv"
    subprocess.run(
        [uv, "venv", "--quiet", "--python", sys.executable, str(venv)],
        check=True,
        capture_output=True,
    )
    _install(uv, venv, lock)
    return venv


def test_the_cloud_extra_runs_without_dbt_core(cloud_only: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    proc = subprocess.run(
        [str(cloud_only / "bin" / "python"), "-c", textwrap.dedent(CHECK), str(tmp_path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found["built"] == "DbtCloudExecutor"
    assert found["modules"] == []  # neither dbt-core nor dbt-exec-core was imported
    assert found["dbt_importable"] is False
    install = 'pip install "prefect-dbt-orchestrator[core]"'
    assert install in found["default_executor"]
    assert "DbtCoreExecutor needs dbt-exec-core" in found["core_import"]
