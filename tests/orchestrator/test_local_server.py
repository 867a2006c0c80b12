"""A local Prefect server (ours or Prefect's own) runs below the build's CPU priority."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dbt_graph.testing import FakeExecutor
from prefect import flow
from prefect_dbt_orchestrator import PrefectDbtOrchestrator

pytestmark = pytest.mark.skipif(not hasattr(os, "setpriority"), reason="no nice on this OS")

START = """
import os
from prefect_dbt_orchestrator._server import start_local_server

server = start_local_server(min_timeout=120)
try:
    pid = server.server_process.pid
    print(os.getpriority(os.PRIO_PROCESS, 0), os.getpriority(os.PRIO_PROCESS, pid))
finally:
    server.stop()
"""


def test_a_server_we_start_runs_ten_below_us(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env["PREFECT_HOME"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", START], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    ours, server = map(int, proc.stdout.split())
    assert server == min(ours + 10, 19)


def _server_pid() -> int:
    from prefect.server.api.server import SubprocessASGIServer

    process = SubprocessASGIServer._instances[None].server_process
    assert process is not None
    return process.pid


@pytest.mark.usefixtures("prefect_server")
def test_a_build_lowers_the_priority_of_prefects_own_local_server(project, chain_manifest) -> None:
    pid, ours = _server_pid(), os.getpriority(os.PRIO_PROCESS, 0)
    try:  # an earlier build in this process may have lowered it already
        os.setpriority(os.PRIO_PROCESS, pid, ours)
    except PermissionError:
        pytest.skip("raising a process's priority back needs privileges")
    orch = PrefectDbtOrchestrator(
        settings=project, executor=FakeExecutor(chain_manifest), execution_mode="per_node"
    )

    @flow
    def build() -> None:
        orch.run_build()

    build()
    assert os.getpriority(os.PRIO_PROCESS, pid) == min(ours + 10, 19)
