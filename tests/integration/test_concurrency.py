"""``concurrency`` vs ``threads`` in PER_NODE (issue 13, item 3), on DuckDB.

The guide's quick start, ``concurrency=4, threads=2``, must run 4 nodes at once: ``threads`` is
dbt's ``--threads`` for a multi-node invocation and never caps how many nodes run at once.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from prefect_dbt_orchestrator import ExecutionMode, PrefectDbtOrchestrator, PrefectDbtSettings

pytestmark = pytest.mark.slow

NODES = 4

#: A Python model that waits until all NODES models have started (a barrier of files), so the
#: build can only succeed if they all run at the same time. Should they not, each gives up
#: after a minute with an error saying how many ran at once.
BARRIER_MODEL = """
import os
import time


def model(dbt, session):
    dbt.config(materialized="table")
    barrier = {barrier!r}
    open(os.path.join(barrier, {name!r}), "w").close()
    deadline = time.monotonic() + 60
    while len(os.listdir(barrier)) < {nodes}:
        if time.monotonic() > deadline:
            started = len(os.listdir(barrier))
            raise RuntimeError(f"only {{started}} of {nodes} nodes ever ran at the same time")
        time.sleep(0.05)
    return session.sql("select 1 as id")
"""


def _project(root: Path) -> Path:
    project = root / "wide"
    barrier = root / "barrier"
    barrier.mkdir()
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: wide\nversion: '1.0.0'\nconfig-version: 2\nprofile: wide\n"
    )
    (project / "profiles.yml").write_text(
        "wide:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {project / 'wide.duckdb'}\n      threads: 1\n"
    )
    for i in range(NODES):
        name = f"node_{i}"
        model = BARRIER_MODEL.format(barrier=str(barrier), name=name, nodes=NODES)
        (project / "models" / f"{name}.py").write_text(model)
    return project


def test_the_quick_start_runs_four_nodes_at_once_on_duckdb(tmp_path: Path) -> None:
    project = _project(tmp_path)
    orch = PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
        execution_mode=ExecutionMode.PER_NODE,
        concurrency=4,
        threads=2,
        create_summary_artifact=False,
        disable_assets=True,
        raise_on_failure=False,
    )
    try:
        results = orch.run_build()
    finally:
        orch.executor.close()
    assert {uid: r["status"] for uid, r in results.items()} == {
        f"model.wide.node_{i}": "success" for i in range(NODES)
    }, {uid: r.get("error") for uid, r in results.items()}
    # By dbt's own timings: every node started before any of them finished.
    starts = [datetime.fromisoformat(r["timing"]["started_at"]) for r in results.values()]
    ends = [datetime.fromisoformat(r["timing"]["completed_at"]) for r in results.values()]
    assert max(starts) < min(ends)
