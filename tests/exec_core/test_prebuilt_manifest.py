"""Running from a manifest.json without parsing: ``manifest_path``, and a kept manifest.json."""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
from conftest import dbt_cli
from dbt_exec_core import DbtCoreExecutor, ManifestResolutionError
from dbt_graph import NodeStatus, load_manifest
from exec_core.projects import by_name, eager_per_node, make_project, run_one, settings_for

pytestmark = pytest.mark.slow

#: A model dbt cannot parse: any `dbt parse` of the project fails once it exists.
UNPARSABLE = "select {{ ref( }}\n"
_INVOCATION = re.compile(r"invocation \d+ on worker \d+: (\w+),")


def _invocations(caplog: pytest.LogCaptureFixture) -> Counter[str]:
    """dbt invocations the executor started, by command (``parse``, ``deps``, ``build``...)."""
    found = (_INVOCATION.match(r.getMessage()) for r in caplog.records)
    return Counter(m.group(1) for m in found if m)


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    project = make_project(tmp_path, extra=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
        yield project


@pytest.fixture
def prebuilt(project: Path, tmp_path: Path) -> Path:
    """A manifest.json built by the dbt CLI (as in CI), then a project dbt can no longer parse."""
    dbt_cli("deps", project=project)
    dbt_cli("parse", project=project)
    artifact = tmp_path / "ci" / "manifest.json"
    artifact.parent.mkdir()
    shutil.move(project / "target" / "manifest.json", artifact)
    shutil.rmtree(project / "target")
    (project / "models" / "unparsable.sql").write_text(UNPARSABLE)
    return artifact


def test_a_prebuilt_manifest_runs_without_deps_or_parse(project, prebuilt, caplog):
    caplog.set_level(logging.DEBUG, logger="dbt_exec_core")
    with DbtCoreExecutor(settings_for(project), manifest_path=prebuilt) as executor:
        assert executor.resolve_manifest() == prebuilt
        manifest = load_manifest(prebuilt)
        wanted = [n for n in manifest.nodes.values() if n.is_executable or n.is_test]
        results = eager_per_node(executor, manifest, wanted, concurrency=4)
    statuses = {uid: r.results[uid].status for uid, r in results.items()}
    assert set(statuses) == {n.unique_id for n in wanted}
    failing = {uid: s for uid, s in statuses.items() if s.is_failure}
    assert not failing, failing
    # Generic tests compile from the JSON (their arguments were kept).
    assert statuses["test.shop.unique_orders_order_id.fed79b3a6e"] is NodeStatus.PASS
    invocations = _invocations(caplog)
    assert invocations["parse"] == 0 and invocations["deps"] == 0, invocations
    assert invocations["load"] == 1
    with duckdb.connect(str(project / "shop.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from main.orders").fetchall() == [(7,)]


def test_a_matching_manifest_without_its_object_is_not_parsed_again(project, caplog):
    with DbtCoreExecutor(settings_for(project)) as first:
        path = first.resolve_manifest()
    (path.parent / "manifest.pickle").unlink()  # say only the JSON was kept as an artifact
    caplog.set_level(logging.DEBUG, logger="dbt_exec_core")
    with DbtCoreExecutor(settings_for(project)) as second:
        assert second.resolve_manifest() == path
        manifest = load_manifest(path)
        result = run_one(second, by_name(manifest, "raw_customers"))
    assert result.results["seed.shop.raw_customers"].status is NodeStatus.SUCCESS
    invocations = _invocations(caplog)
    assert invocations["parse"] == 0 and invocations["deps"] == 0, invocations
    assert invocations["load"] == 1 and (path.parent / "manifest.pickle").is_file()


def test_a_prebuilt_manifest_needs_the_projects_packages_installed(project, prebuilt):
    shutil.rmtree(project / "dbt_packages")
    with (
        DbtCoreExecutor(settings_for(project), manifest_path=prebuilt) as executor,
        pytest.raises(ManifestResolutionError) as info,
    ):
        executor.resolve_manifest()
    assert info.value.command == "load"
    assert "dbt deps" in info.value.dbt_message and str(prebuilt) in str(info.value)


def test_a_missing_prebuilt_manifest_is_a_clear_error(project, tmp_path):
    missing = tmp_path / "nowhere" / "manifest.json"
    with (
        DbtCoreExecutor(settings_for(project), manifest_path=missing) as executor,
        pytest.raises(ManifestResolutionError, match="Cannot read the pre-built manifest"),
    ):
        executor.resolve_manifest()
