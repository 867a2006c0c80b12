"""The fingerprint that decides whether a parsed manifest can be reused."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_exec_core import ProjectPaths
from dbt_exec_core._project import digest, fingerprint
from exec_core.projects import Settings, make_project


@pytest.fixture
def paths(tmp_path: Path) -> ProjectPaths:
    project = make_project(tmp_path, extra=False)
    return ProjectPaths.from_settings(Settings(project_dir=project, profiles_dir=project))


def _fp(paths: ProjectPaths, **kw) -> dict:
    options = {"target": None, "vars": None, "environ": {}, **kw}
    return fingerprint(paths, **options)


def test_unchanged_project_has_the_same_fingerprint(paths):
    assert _fp(paths) == _fp(paths)
    assert digest(_fp(paths)) == digest(_fp(paths))


@pytest.mark.parametrize(
    "kw", [{"target": "prod"}, {"vars": {"min_order_total": 5}}], ids=["target", "vars"]
)
def test_target_and_vars_change_the_fingerprint(paths, kw):
    assert _fp(paths, **kw) != _fp(paths)


def test_vars_are_compared_by_value_not_order(paths):
    assert _fp(paths, vars={"a": 1, "b": 2}) == _fp(paths, vars={"b": 2, "a": 1})


def test_a_changed_model_changes_the_fingerprint(paths):
    before = _fp(paths)
    model = paths.project_dir / "models" / "staging" / "stg_orders.sql"
    model.write_text(model.read_text() + "\n-- edited\n")
    assert _fp(paths)["files"] != before["files"]


def test_a_changed_profile_changes_the_fingerprint(paths):
    before = _fp(paths)
    profiles = paths.profiles_dir / "profiles.yml"
    profiles.write_text(profiles.read_text().replace("threads: 4", "threads: 8", 1))
    assert _fp(paths) != before


def test_only_referenced_environment_variables_count(paths):
    base = _fp(paths, environ={"DBT_DUCKDB_PATH": "/a.duckdb"})
    assert _fp(paths, environ={"DBT_DUCKDB_PATH": "/b.duckdb"}) != base
    assert _fp(paths, environ={"DBT_DUCKDB_PATH": "/a.duckdb", "UNRELATED": "x"}) == base


def test_build_output_and_databases_are_ignored(paths):
    before = _fp(paths)
    (paths.target_path / "run").mkdir(parents=True)
    (paths.target_path / "run" / "x.sql").write_text("select 1")
    (paths.project_dir / "shop.duckdb").write_bytes(b"\0" * 16)
    (paths.project_dir / "logs").mkdir()
    (paths.project_dir / "logs" / "dbt.log").write_text("log")
    assert _fp(paths) == before


def test_the_fingerprint_keeps_no_environment_values(paths):
    secret = "pa55-word-value"
    assert secret not in repr(_fp(paths, environ={"DBT_PG_PASSWORD": secret}))
