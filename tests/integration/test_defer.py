"""``--defer``, ``--defer-state`` and ``--favor-state`` end to end on DuckDB (issue 13, item 4).

A prod build writes ``prod.upstream`` (``built_by = 'prod'``); the dev target never builds
``upstream``, so a dev build of ``downstream`` (through an ephemeral model) can only succeed by
reading the state's relation. What ``dev.downstream`` holds says which relation it read.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from prefect_dbt_orchestrator import ExecutionMode, PrefectDbtOrchestrator, PrefectDbtSettings

pytestmark = pytest.mark.slow

MODELS = {
    "upstream.sql": "{{ config(materialized='table') }}\nselect '{{ target.name }}' as built_by\n",
    "between.sql": "{{ config(materialized='ephemeral') }}\nselect * from {{ ref('upstream') }}\n",
    "downstream.sql": "{{ config(materialized='table') }}\nselect * from {{ ref('between') }}\n",
}


def _orchestrator(project: Path, **kw) -> PrefectDbtOrchestrator:
    return PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
        create_summary_artifact=False,
        disable_assets=True,
        **kw,
    )


def _built_by(project: Path, relation: str) -> list[tuple]:
    with duckdb.connect(str(project / "defer.duckdb"), read_only=True) as con:
        return con.execute(f"select built_by from {relation}").fetchall()


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("defer")
    project = root / "deferring"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: deferring\nversion: '1.0.0'\nconfig-version: 2\nprofile: deferring\n"
    )
    outputs = "".join(
        f"    {name}:\n      type: duckdb\n      path: {project / 'defer.duckdb'}\n"
        f"      schema: {name}\n      threads: 4\n"
        for name in ("dev", "prod")
    )
    (project / "profiles.yml").write_text(f"deferring:\n  target: dev\n  outputs:\n{outputs}")
    for name, sql in MODELS.items():
        (project / "models" / name).write_text(sql)
    return project


@pytest.fixture(scope="module")
def state(project: Path) -> Path:
    """The prod build, and its manifest as the state to defer to."""
    orch = _orchestrator(project)
    try:
        results = orch.run_build(target="prod")
        assert {r["status"] for r in results.values()} == {"success"}, results
        prod_manifest = orch.executor.resolve_manifest(target="prod")
    finally:
        orch.executor.close()
    state = project.parent / "prod-state"
    state.mkdir()
    shutil.copy(prod_manifest, state / "manifest.json")
    assert _built_by(project, "prod.upstream") == [("prod",)]
    return state


@pytest.fixture
def dev(project: Path, state: Path) -> Iterator[Path]:
    """The dev schema, empty before and after each test."""
    yield project
    with duckdb.connect(str(project / "defer.duckdb")) as con:
        con.execute("drop schema if exists dev cascade")


def _build(orch: PrefectDbtOrchestrator, select: str) -> None:
    results = orch.run_build(select=select)
    assert {r["status"] for r in results.values()} == {"success"}, results


@pytest.mark.parametrize("mode", [ExecutionMode.PER_NODE, ExecutionMode.PER_WAVE])
def test_defer_with_state_reads_the_states_relation_for_an_unbuilt_upstream(
    dev: Path, state: Path, mode: ExecutionMode
) -> None:
    orch = _orchestrator(dev, defer=True, state_path=state, execution_mode=mode)
    try:
        _build(orch, "downstream")
        _build(orch, "downstream")  # again, with the same workers (compile state reset)
    finally:
        orch.executor.close()
    assert _built_by(dev, "dev.downstream") == [("prod",)]
    with duckdb.connect(str(dev / "defer.duckdb"), read_only=True) as con:
        tables = con.execute("select table_name from duckdb_tables() where schema_name = 'dev'")
        assert tables.fetchall() == [("downstream",)]  # upstream never built in dev


def test_defer_state_path_is_the_state_to_defer_to(dev: Path, state: Path) -> None:
    orch = _orchestrator(
        dev, defer=True, defer_state_path=state, execution_mode=ExecutionMode.PER_NODE
    )
    try:
        _build(orch, "downstream")
    finally:
        orch.executor.close()
    assert _built_by(dev, "dev.downstream") == [("prod",)]


@pytest.mark.parametrize(("favor_state", "expected"), [(False, "dev"), (True, "prod")])
def test_favor_state_prefers_the_states_relation_over_an_existing_dev_one(
    dev: Path, state: Path, favor_state: bool, expected: str
) -> None:
    plain = _orchestrator(dev, execution_mode=ExecutionMode.PER_NODE)
    try:
        _build(plain, "upstream")  # now dev.upstream exists too
    finally:
        plain.executor.close()
    orch = _orchestrator(
        dev,
        defer=True,
        state_path=state,
        favor_state=favor_state,
        execution_mode=ExecutionMode.PER_NODE,
    )
    try:
        _build(orch, "downstream")
    finally:
        orch.executor.close()
    assert _built_by(dev, "dev.downstream") == [(expected,)]
