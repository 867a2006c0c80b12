"""PER_NODE under every task runner: threads (elsewhere), process pools and Dask.

Executors cross to worker processes pickled; the core executor then runs dbt in the worker
(DuckDB serialised by a file lock), the cloud executor rebuilds its HTTP client there.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from exec_cloud.fake_cloud import TOKEN, FakeDbtCloud, serve_over_socket
from integration.helpers import statuses
from prefect import flow
from prefect.task_runners import ProcessPoolTaskRunner
from prefect_dask import DaskTaskRunner
from prefect_dbt_orchestrator import (
    DbtCloudCredentials,
    DbtCloudExecutor,
    ExecutionMode,
    PrefectDbtOrchestrator,
)

pytestmark = pytest.mark.usefixtures("prefect_server")

RUNNERS = [ProcessPoolTaskRunner, DaskTaskRunner]
# A seed, a model and four tests (the relationships test would need stg_orders built).
SELECTION = {"select": "+stg_customers", "exclude": "test_name:relationships"}


def build(orch: PrefectDbtOrchestrator, **kw):
    @flow
    def dbt_build():
        return orch.run_build(**kw)

    try:
        return dbt_build()
    finally:
        orch.executor.close()


@pytest.mark.parametrize("runner", RUNNERS, ids=lambda r: r.__name__)
def test_core_executor_in_worker_processes(fresh_db: Path, settings, runner) -> None:
    orch = PrefectDbtOrchestrator(
        settings=settings,
        execution_mode=ExecutionMode.PER_NODE,
        concurrency=2,
        task_runner_type=runner,
    )
    results = build(orch, **SELECTION)
    assert statuses(results) == {"success": 6}


@pytest.mark.parametrize("runner", RUNNERS, ids=lambda r: r.__name__)
def test_cloud_executor_in_worker_processes(
    shop_manifest_path: Path, settings, runner, tmp_path: Path
) -> None:
    fake = FakeDbtCloud(shop_manifest_path, polls_until_done=-1, project_id=1, environment_id=2)
    with serve_over_socket(fake) as url:
        executor = DbtCloudExecutor(
            DbtCloudCredentials(api_key=TOKEN, account_id=1, domain=url),
            project_id=1,
            environment_id=2,
            manifest_dir=tmp_path,
        )
        orch = PrefectDbtOrchestrator(
            settings=settings,
            executor=executor,
            execution_mode=ExecutionMode.PER_NODE,
            concurrency=2,
            task_runner_type=runner,
        )
        results = build(orch, **SELECTION)
    assert statuses(results) == {"success": 6}
    assert fake.active_jobs() == []
