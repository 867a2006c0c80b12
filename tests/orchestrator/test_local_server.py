"""A local Prefect server (ours or Prefect's own) runs below the build's CPU priority, and
is waited for before it stops."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from dbt_graph.testing import FakeExecutor
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
from prefect_dbt_orchestrator import PrefectDbtOrchestrator
from prefect_dbt_orchestrator._server import wait_until_recorded

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


@pytest.mark.usefixtures("prefect_server")
def test_waiting_for_the_recorder_ends_once_the_counts_hold(project, chain_manifest) -> None:
    from prefect.runtime import flow_run

    orch = PrefectDbtOrchestrator(
        settings=project, executor=FakeExecutor(chain_manifest), execution_mode="per_node"
    )

    @flow
    def build() -> str:
        orch.run_build()
        return str(flow_run.id)

    run_id = build()
    assert wait_until_recorded(UUID(run_id), timeout=60)
    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[UUID(run_id)]))
        )
    assert len(runs) == 7 and all(r.state is not None and r.state.is_final() for r in runs)


def test_a_server_that_cannot_answer_is_not_waited_for() -> None:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # discard port
        assert wait_until_recorded(uuid4(), timeout=60) is False
