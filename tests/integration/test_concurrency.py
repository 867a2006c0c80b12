"""``concurrency`` vs ``threads`` in PER_NODE (issue 13, item 3), on DuckDB.

The guide's quick start, ``concurrency=4, threads=2``, must run 4 nodes at once: ``threads`` is
dbt's ``--threads`` for a multi-node invocation and never caps how many nodes run at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg2
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


#: The same barrier on PostgreSQL, from hooks run outside the model's transaction: a row per
#: started node (committed at once, so others see it), then a wait for all NODES rows.
PG_BARRIER_MODEL = """{{{{ config(materialized="table", pre_hook=[
    before_begin("insert into {schema}.started values ('{name}'); commit"),
    before_begin("do $$ declare deadline timestamptz := clock_timestamp() + interval '60 s';
      begin
        while (select count(*) from {schema}.started) < {nodes} loop
          if clock_timestamp() > deadline then
            raise exception 'only % of {nodes} nodes ever ran at the same time',
              (select count(*) from {schema}.started);
          end if;
          perform pg_sleep(0.05);
        end loop;
      end $$"),
]) }}}}
select 1 as id
"""


def _pg_project(root: Path, server: Any, schema: str) -> Path:
    project = root / "wide_pg"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: wide\nversion: '1.0.0'\nconfig-version: 2\nprofile: wide\n"
    )
    (project / "profiles.yml").write_text(
        "wide:\n  target: dev\n  outputs:\n    dev:\n      type: postgres\n"
        f"      host: {server.host}\n      port: {server.port}\n      user: {server.user}\n"
        f"      password: ''\n      dbname: {server.dbname}\n      schema: {schema}\n"
        "      threads: 1\n"
    )
    for i in range(NODES):
        model = PG_BARRIER_MODEL.format(schema=schema, name=f"node_{i}", nodes=NODES)
        (project / "models" / f"node_{i}.sql").write_text(model)
    return project


def _build_quick_start(project: Path) -> dict[str, dict[str, Any]]:
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
        return orch.run_build()
    finally:
        orch.executor.close()


def _assert_all_ran_at_once(results: dict[str, dict[str, Any]]) -> None:
    assert {uid: r["status"] for uid, r in results.items()} == {
        f"model.wide.node_{i}": "success" for i in range(NODES)
    }, {uid: r.get("error") for uid, r in results.items()}
    # By dbt's own timings: every node started before any of them finished.
    starts = [datetime.fromisoformat(r["timing"]["started_at"]) for r in results.values()]
    ends = [datetime.fromisoformat(r["timing"]["completed_at"]) for r in results.values()]
    assert max(starts) < min(ends)


def test_the_quick_start_runs_four_nodes_at_once_on_duckdb(tmp_path: Path) -> None:
    _assert_all_ran_at_once(_build_quick_start(_project(tmp_path)))


@pytest.mark.postgres
def test_the_quick_start_runs_four_nodes_at_once_on_postgres(tmp_path: Path, postgres_server):
    schema = f"wide_{uuid.uuid4().hex[:8]}"
    con = psycopg2.connect(
        host=postgres_server.host,
        port=postgres_server.port,
        user=postgres_server.user,
        dbname=postgres_server.dbname,
    )
    try:
        with con, con.cursor() as cur:
            cur.execute(f"create schema {schema}; create table {schema}.started (name text)")
    finally:
        con.close()
    _assert_all_ran_at_once(_build_quick_start(_pg_project(tmp_path, postgres_server, schema)))
