"""After every build, the manifest it ran is at ``<target_path>/manifest.json``, as with dbt."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from dbt_graph import Manifest, NodeStatus
from dbt_graph.testing import FakeExecutor, ManifestBuilder
from prefect_dbt_orchestrator import DbtBuildFailed, PrefectDbtOrchestrator, PrefectDbtSettings
from prefect_dbt_orchestrator._run_results import copy_atomically

pytestmark = pytest.mark.usefixtures("prefect_server")


@pytest.fixture
def executor_manifest(tmp_path: Path) -> Manifest:
    """A manifest kept where an executor keeps its own, away from the target path."""
    return (
        ManifestBuilder()
        .model("stg")
        .model("mart", depends_on=["stg"], materialized="table")
        .build_file(tmp_path / "executor-state")
    )


def _target_manifest(settings: PrefectDbtSettings) -> Path:
    return settings.resolved_target_path() / "manifest.json"


@pytest.mark.parametrize("mode", ["per_wave", "per_node"])
def test_the_manifest_the_build_ran_is_left_in_the_target_path(
    project, executor_manifest, mode
) -> None:
    assert executor_manifest.path is not None
    orch = PrefectDbtOrchestrator(
        settings=project, executor=FakeExecutor(executor_manifest), execution_mode=mode
    )
    orch.run_build()
    written = _target_manifest(project)
    assert written.read_bytes() == executor_manifest.path.read_bytes()
    assert [p.name for p in written.parent.iterdir() if p.name.endswith(".tmp")] == []


def test_a_failed_build_leaves_its_manifest_too(project, executor_manifest) -> None:
    assert executor_manifest.path is not None
    executor = FakeExecutor(executor_manifest, outcomes={"model.p.stg": NodeStatus.ERROR})
    with pytest.raises(DbtBuildFailed):
        PrefectDbtOrchestrator(settings=project, executor=executor).run_build()
    assert _target_manifest(project).read_bytes() == executor_manifest.path.read_bytes()


def test_a_manifest_path_elsewhere_is_copied_next_to_its_run_results(
    project, executor_manifest, tmp_path: Path
) -> None:
    assert executor_manifest.path is not None
    prebuilt = tmp_path / "ci" / "prod-manifest.json"
    prebuilt.parent.mkdir()
    prebuilt.write_bytes(executor_manifest.path.read_bytes())
    orch = PrefectDbtOrchestrator(
        settings=project,
        manifest_path=prebuilt,
        executor=FakeExecutor(executor_manifest),
        write_run_results=True,
    )
    orch.run_build()
    # target_path follows manifest_path (the guide); manifest.json goes beside run_results.json.
    assert (prebuilt.parent / "run_results.json").is_file()
    assert (prebuilt.parent / "manifest.json").read_bytes() == prebuilt.read_bytes()


def test_a_manifest_path_that_is_the_target_manifest_is_left_alone(project, chain_manifest) -> None:
    assert chain_manifest.path == _target_manifest(project)
    before = chain_manifest.path.stat()
    orch = PrefectDbtOrchestrator(
        settings=project, manifest_path=chain_manifest.path, executor=FakeExecutor(chain_manifest)
    )
    orch.run_build()
    after = chain_manifest.path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_a_target_path_that_cannot_be_written_does_not_hide_the_results(
    project, executor_manifest, caplog
) -> None:
    blocked = project.project_dir / "not-a-directory"
    blocked.write_text("a file where the target directory should be")
    settings = project.copy_with(target_path=blocked)
    orch = PrefectDbtOrchestrator(settings=settings, executor=FakeExecutor(executor_manifest))
    with caplog.at_level(logging.ERROR):
        results = orch.run_build()
    assert {r["status"] for r in results.values()} == {"success"}
    assert f"Could not write {blocked / 'manifest.json'}" in caplog.text


def test_a_failed_copy_leaves_the_previous_file(tmp_path: Path) -> None:
    destination = tmp_path / "target" / "manifest.json"
    destination.parent.mkdir()
    destination.write_text("previous")
    with pytest.raises(OSError):
        copy_atomically(tmp_path / "missing.json", destination)
    assert destination.read_text() == "previous"
    assert [p.name for p in destination.parent.iterdir()] == ["manifest.json"]
