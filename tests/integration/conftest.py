"""Fixtures for end-to-end runs: real dbt, real DuckDB / PostgreSQL, a real Prefect server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import copy_shop_project
from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A module-wide copy of the shop project on its own DuckDB file.

    The first orchestrator run in the module parses it (dbt deps + dbt parse, by the executor);
    later runs reuse that manifest. Tests that need an empty database use ``fresh_db``.
    """
    project = copy_shop_project(tmp_path_factory.mktemp("integration"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
        yield project


@pytest.fixture
def fresh_db(shop: Path) -> Path:
    """The module's project with its DuckDB file removed."""
    for suffix in ("", ".wal"):
        (shop / f"shop.duckdb{suffix}").unlink(missing_ok=True)
    return shop


@pytest.fixture
def settings(shop: Path) -> PrefectDbtSettings:
    return PrefectDbtSettings(project_dir=shop, profiles_dir=shop)


@pytest.fixture
def orchestrators() -> Iterator[list[PrefectDbtOrchestrator]]:
    """Collects orchestrators a test makes and closes their executors afterwards."""
    made: list[PrefectDbtOrchestrator] = []
    yield made
    for orch in made:
        orch.executor.close()


@pytest.fixture(scope="module")
def pg_shop(tmp_path_factory: pytest.TempPathFactory, postgres_server) -> Iterator[Path]:
    """A module-wide copy of the shop project whose ``pg`` target is the test server."""
    project = copy_shop_project(tmp_path_factory.mktemp("integration-pg"))
    schema = f"it_{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        for name, value in postgres_server.env(schema).items():
            mp.setenv(name, value)
        mp.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
        yield project
