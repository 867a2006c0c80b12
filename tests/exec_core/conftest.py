"""Fixtures for dbt-exec-core: one project copy and one executor per test module and database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbt_exec_core import DbtCoreExecutor
from dbt_graph import Manifest, load_manifest
from exec_core.projects import PG_PASSWORD, make_project, settings_for


@pytest.fixture(scope="module")
def duckdb_project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A module-wide copy of the shop project (plus failing/slow nodes) on its own DuckDB file."""
    project = make_project(tmp_path_factory.mktemp("exec-core-duckdb"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
        yield project


@pytest.fixture(scope="module")
def duckdb_executor(duckdb_project: Path) -> Iterator[DbtCoreExecutor]:
    executor = DbtCoreExecutor(settings_for(duckdb_project))
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def duckdb_manifest(duckdb_executor: DbtCoreExecutor) -> Manifest:
    return load_manifest(duckdb_executor.resolve_manifest())


@pytest.fixture(scope="module")
def pg_project(tmp_path_factory: pytest.TempPathFactory, postgres_server) -> Iterator[Path]:
    """A module-wide copy of the shop project whose ``pg`` target is the test server.

    A password is set (the server trusts everyone) so tests can check it never leaks.
    """
    project = make_project(tmp_path_factory.mktemp("exec-core-pg"))
    schema = f"exec_core_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in postgres_server.env(schema).items():
            mp.setenv(name, value)
        mp.setenv("DBT_PG_PASSWORD", PG_PASSWORD)
        mp.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
        yield project


@pytest.fixture(scope="module")
def pg_executor(pg_project: Path) -> Iterator[DbtCoreExecutor]:
    executor = DbtCoreExecutor(settings_for(pg_project), target="pg")
    yield executor
    executor.close()


@pytest.fixture(scope="module")
def pg_manifest(pg_executor: DbtCoreExecutor) -> Manifest:
    return load_manifest(pg_executor.resolve_manifest())
