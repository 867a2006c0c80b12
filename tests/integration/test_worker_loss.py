"""``kill -9`` of a dbt worker in the middle of a per-node build (issue 13, item 9)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from exec_core.worker_loss import Killer, stuck_model
from prefect_dbt_orchestrator import ExecutionMode, PrefectDbtOrchestrator, PrefectDbtSettings

pytestmark = pytest.mark.slow


def _project(root: Path, marker: Path) -> Path:
    """``stuck`` (runs until killed) and ``a`` are roots; ``b`` and ``c`` follow ``a``."""
    project = root / "lossy"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: lossy\nversion: '1.0.0'\nconfig-version: 2\nprofile: lossy\n"
    )
    (project / "profiles.yml").write_text(
        "lossy:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {project / 'lossy.duckdb'}\n      threads: 4\n"
    )
    models = {
        "stuck": stuck_model(marker),
        "a": "select 1 as id",
        "b": "select id from {{ ref('a') }}",
        "c": "select id from {{ ref('b') }}",
    }
    for name, sql in models.items():
        (project / "models" / f"{name}.sql").write_text(sql + "\n")
    return project


def test_a_killed_worker_fails_its_node_and_the_build_goes_on(tmp_path: Path) -> None:
    marker = tmp_path / "started.csv"
    project = _project(tmp_path, marker)
    # One node at a time: when `stuck` runs it is alone in the worker. In plan order the
    # roots `a` and `stuck` go first, so `b` and `c` run after `stuck`, on the new worker
    # (critical path first would start the chain a -> b -> c before `stuck`).
    orch = PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
        execution_mode=ExecutionMode.PER_NODE,
        concurrency=1,
        scheduling="plan_order",
        raise_on_failure=False,
        create_summary_artifact=False,
        disable_assets=True,
    )
    killer = Killer(marker, project / "lossy.duckdb")
    try:
        results = orch.run_build()
    finally:
        orch.executor.close()
    pid = killer.join()

    stuck = results["model.lossy.stuck"]
    assert stuck["status"] == "error"
    assert "dbt worker" in stuck["error"]["message"]
    assert f"(pid {pid}) exited unexpectedly" in stuck["error"]["message"]
    assert {uid: r["status"] for uid, r in results.items() if uid != "model.lossy.stuck"} == {
        "model.lossy.a": "success",
        "model.lossy.b": "success",
        "model.lossy.c": "success",
    }
    assert killer.killed_at is not None
    for later in ("model.lossy.b", "model.lossy.c"):  # run by the worker that replaced it
        started = datetime.fromisoformat(results[later]["timing"]["started_at"])
        assert started.timestamp() > killer.killed_at
