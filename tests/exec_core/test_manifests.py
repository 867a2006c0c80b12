"""Manifest resolution with real dbt: reuse, re-parse on change, and dbt's own error messages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbt_exec_core import DbtCoreExecutor, ManifestResolutionError
from dbt_graph import NodeStatus, load_manifest
from exec_core.projects import by_name, make_project, run_one, settings_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    project = make_project(tmp_path_factory.mktemp("exec-core-manifests"), extra=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
        yield project


@pytest.fixture(scope="module")
def executor(project: Path) -> Iterator[DbtCoreExecutor]:
    executor = DbtCoreExecutor(settings_for(project))
    yield executor
    executor.close()


def _stamp(path: Path) -> int:
    return path.stat().st_mtime_ns


def test_a_manifest_is_reused_while_nothing_it_depends_on_changes(executor, project):
    first = executor.resolve_manifest()
    stamp = _stamp(first)
    assert first.is_relative_to(project / "target")
    assert executor.resolve_manifest() == first and _stamp(first) == stamp
    # Another executor (a pickled copy in another process, say) trusts the same fingerprint.
    other = DbtCoreExecutor(settings_for(project))
    assert other.resolve_manifest() == first and _stamp(first) == stamp
    other.close()
    record = json.loads((first.parent / "fingerprint.json").read_text())
    assert record["fingerprint"]["target"] is None and record["adapter_type"] == "duckdb"


def test_another_target_or_other_vars_get_their_own_manifest(executor):
    default = executor.resolve_manifest()
    prod = executor.resolve_manifest(target="prod")
    assert prod != default
    assert load_manifest(prod).node("model.shop.orders").relation_name == '"shop"."prod"."orders"'
    assert load_manifest(default).node("model.shop.orders").relation_name == (
        '"shop"."main"."orders"'
    )
    with_vars = executor.resolve_manifest(vars={"min_order_total": 5})
    assert with_vars not in (default, prod)
    assert executor.resolve_manifest() == default


def test_a_changed_file_is_reparsed_and_executed(executor, project):
    manifest_path = executor.resolve_manifest()
    stamp = _stamp(manifest_path)
    model = project / "models" / "marts" / "legacy_report.sql"
    model.write_text("select 'edited' as marker\n")
    assert executor.resolve_manifest() == manifest_path
    assert _stamp(manifest_path) != stamp
    manifest = load_manifest(manifest_path)
    assert "edited" in manifest.node("model.shop.legacy_report").raw_code
    result = run_one(executor, by_name(manifest, "legacy_report"))
    node = result.results["model.shop.legacy_report"]
    assert node.status is NodeStatus.SUCCESS and "edited" in node.compiled_code


def _tiny(tmp_path: Path, **files: str) -> Path:
    project = tmp_path / "tiny"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: tiny\nversion: '1.0.0'\nconfig-version: 2\nprofile: tiny\n"
    )
    (project / "profiles.yml").write_text(
        "tiny:\n  target: dev\n  outputs:\n    dev:\n      type: duckdb\n"
        f"      path: {project / 'tiny.duckdb'}\n"
    )
    (project / "models" / "one.sql").write_text("select 1 as id\n")
    for name, text in files.items():
        (project / name.replace("__", "/")).write_text(text)
    return project


def test_a_failing_dbt_deps_surfaces_dbts_message(tmp_path):
    project = _tiny(tmp_path, **{"packages.yml": "packages:\n  - local: ../no_such_package\n"})
    executor = DbtCoreExecutor(settings_for(project))
    with executor, pytest.raises(ManifestResolutionError) as info:
        executor.resolve_manifest()
    assert info.value.command == "deps"
    assert "no_such_package" in info.value.dbt_message
    assert "`dbt deps` failed" in str(info.value)


def test_a_failing_dbt_parse_surfaces_dbts_message(tmp_path):
    project = _tiny(tmp_path, **{"models__bad.sql": "select {{ ref( }}\n"})
    executor = DbtCoreExecutor(settings_for(project), run_deps=False)
    with executor, pytest.raises(ManifestResolutionError) as info:
        executor.resolve_manifest()
    assert info.value.command == "parse"
    assert "bad" in info.value.dbt_message
    assert not list((project / "target" / "dbt-exec-core").glob("*/fingerprint.json"))
