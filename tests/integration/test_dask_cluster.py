"""PER_NODE on a ``distributed`` cluster whose workers are separate processes, on PostgreSQL.

The cluster (a ``LocalCluster`` with ``processes=True``, two worker processes under their
nannies) stands in for separate hosts: the flow's process only schedules, each node's task
unpickles the executor in a Dask worker process and runs dbt there. Checked: the same results,
assets and run_results.json as a local build; every node run exactly once; and a worker killed
in the middle of a build (with the dbt processes under it, as when a host dies) does not hang
the flow: its node runs again on a live worker and the build succeeds.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import psycopg2
import pytest
from integration.helpers import statuses
from prefect import flow
from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings
from recorded import recorded_task_runs

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

LOCK = 4242  # the advisory lock the blocker model waits for while the test holds it
BLOCKER = f"""\
{{{{ config(materialized="table", pre_hook="select pg_advisory_xact_lock({LOCK})") }}}}
select * from {{{{ ref('stg_orders') }}}}
"""
NODES = 35  # the shop's 34 nodes that run on PostgreSQL, and the blocker


@pytest.fixture(scope="module")
def project(pg_shop: Path) -> Path:
    """The module's PostgreSQL shop project, with a model that can be held mid-build."""
    (pg_shop / "models" / "blocker.sql").write_text(BLOCKER)
    return pg_shop


@pytest.fixture(scope="module")
def cluster(project: Path) -> Iterator[Any]:
    """Two Dask worker processes; a client to see and kill them.

    Started after the project's DBT_PG_* variables are set, and with the Prefect API's address
    in the environment, as each worker host would have them.
    """
    from distributed import Client, LocalCluster
    from prefect.settings import get_current_settings

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_API_URL", str(get_current_settings().api.url))
        with (
            LocalCluster(
                n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
            ) as local,
            Client(local) as client,
        ):
            client.wait_for_workers(2, timeout=120)
            yield client


def connect(postgres_server: Any) -> Any:
    return psycopg2.connect(
        host=postgres_server.host, port=postgres_server.port, user="postgres", dbname="postgres"
    )


def build(project: Path, runner: Any) -> tuple[Any, dict[str, Any], dict[str, str]]:
    """A PER_NODE build on the ``pg`` target; its flow run state, results and run_results."""
    orch = PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
        execution_mode="per_node",
        concurrency=4,
        task_runner_type=runner,
        retries=1,
        write_run_results=True,
    )
    try:
        state = flow(name="dask-shop-build")(orch.run_build)(
            target="pg", full_refresh=True, return_state=True
        )
    finally:
        orch.executor.close()
    results = state.result(raise_on_failure=False)
    run_results = json.loads((project / "target" / "run_results.json").read_text())
    return state, results, {r["unique_id"]: r["status"] for r in run_results["results"]}


def dask_runner(cluster: Any) -> Any:
    from prefect_dask import DaskTaskRunner

    return DaskTaskRunner(address=cluster.scheduler.address)


def api(path: str, body: dict[str, Any]) -> Any:
    from prefect.settings import get_current_settings

    response = httpx.post(f"{get_current_settings().api.url}{path}", json=body, timeout=60)
    response.raise_for_status()
    return response.json()


def materialized_assets(flow_run_id: Any, expected: int) -> set[tuple[str, frozenset[str]]]:
    """(asset key, upstream asset keys) of the run's materialization events."""
    run = f"prefect.flow-run.{flow_run_id}"
    body = {
        "filter": {
            "event": {"prefix": ["prefect.asset.materialization."]},
            "related": {"id": [run]},
        },
        "limit": 50,  # the most the API gives in one page; a run of the shop has 14
    }
    deadline = time.monotonic() + 120  # events are written by the server in the background
    while True:
        events = [
            e
            for e in api("/events/filter", body)["events"]
            if any(r["prefect.resource.id"] == run for r in e["related"])
        ]
        if len(events) >= expected or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    return {
        (
            e["resource"]["prefect.resource.id"],
            frozenset(
                r["prefect.resource.id"]
                for r in e["related"]
                if r.get("prefect.resource.role") == "asset"
            ),
        )
        for e in events
    }


def test_same_results_assets_and_run_results_as_a_local_build(project: Path, cluster: Any) -> None:
    local_state, local, local_run_results = build(project, None)
    dask_state, remote, remote_run_results = build(project, dask_runner(cluster))

    assert local_state.is_completed() and dask_state.is_completed()
    assert statuses(remote) == {"success": NODES}
    assert {u: r["status"] for u, r in remote.items()} == {u: r["status"] for u, r in local.items()}
    assert remote_run_results == local_run_results
    assert len(remote_run_results) == NODES

    local_flow = local_state.state_details.flow_run_id
    dask_flow = dask_state.state_details.flow_run_id
    assets = materialized_assets(dask_flow, 14)
    assert len(assets) == 14  # the shop's seeds, models and snapshots, and the blocker
    assert assets == materialized_assets(local_flow, 14)

    # Every node ran exactly once: one task run each, on its first attempt.
    runs = recorded_task_runs(dask_flow, NODES)  # the server records them in the background
    assert len(runs) == NODES
    assert len({r.name for r in runs}) == NODES
    assert all(r.run_count == 1 and r.state_type == "COMPLETED" for r in runs)


def test_a_killed_worker_s_node_runs_again_elsewhere(
    project: Path, cluster: Any, postgres_server: Any
) -> None:
    import threading

    holder = connect(postgres_server)
    holder.autocommit = True
    with holder.cursor() as cur:
        cur.execute("select pg_advisory_lock(%s)", (LOCK,))
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome.update(
            zip(("state", "results", "rr"), build(project, dask_runner(cluster)), strict=True)
        )

    runner = threading.Thread(target=run, name="dask-build")
    runner.start()
    try:
        backend, client_port = wait_for_blocked_backend(holder, runner)
        victim = dask_worker_holding(cluster, client_port)
        kill_tree(victim)
        with holder.cursor() as cur:
            # The killed client's server process would only notice when it next writes.
            cur.execute("select pg_terminate_backend(%s)", (backend,))
    finally:
        with holder.cursor() as cur:
            cur.execute("select pg_advisory_unlock(%s)", (LOCK,))
        holder.close()
    runner.join(timeout=480)
    assert not runner.is_alive(), "the flow hung after a worker was killed"

    assert outcome["state"].is_completed(), outcome["state"].message
    assert statuses(outcome["results"]) == {"success": NODES}
    assert outcome["rr"]["model.shop.blocker"] == "success"
    assert victim.pid not in cluster.run(os.getpid).values()  # its nanny started another
    with connect(postgres_server) as con, con.cursor() as cur:
        cur.execute(f"select count(*) from {os.environ['DBT_PG_SCHEMA']}.blocker")
        assert cur.fetchone() == (7,)


def wait_for_blocked_backend(holder: Any, runner: Any) -> tuple[int, int]:
    """The PostgreSQL backend of the blocker's pre-hook, once it waits for the lock."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and runner.is_alive():
        with holder.cursor() as cur:
            cur.execute(
                "select pid, client_port from pg_stat_activity where wait_event_type = 'Lock' "
                "and query like %s",
                (f"%pg_advisory_xact_lock({LOCK})%",),
            )
            row = cur.fetchone()
        if row is not None:
            return row
        time.sleep(0.2)
    pytest.fail("the blocker model never started waiting for its lock")


def dask_worker_holding(cluster: Any, client_port: int) -> psutil.Process:
    """The Dask worker process whose tree holds the TCP connection from ``client_port``."""
    workers = {pid: address for address, pid in cluster.run(os.getpid).items()}
    for conn in psutil.net_connections(kind="tcp"):
        if conn.laddr and conn.laddr.port == client_port and conn.pid:
            process = psutil.Process(conn.pid)
            for candidate in [process, *process.parents()]:
                if candidate.pid in workers:
                    return candidate
    pytest.fail(f"no Dask worker holds the connection from port {client_port}")


def kill_tree(process: psutil.Process) -> None:
    """SIGKILL a worker and every process under it, as losing its host would."""
    tree = [process, *process.children(recursive=True)]
    for proc in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)
    psutil.wait_procs(tree, timeout=30)
