"""Cache hits end in Prefect's own ``Cached`` state, read back from a real Prefect server."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from dbt_graph.testing import FakeExecutor
from prefect import flow
from prefect.client.schemas.objects import StateType
from prefect_dbt_orchestrator import CacheConfig, PrefectDbtOrchestrator
from recorded import recorded_task_runs

pytestmark = pytest.mark.usefixtures("prefect_server")

#: Task runs of a build of ``chain_manifest``: 5 models and seeds, 2 tests.
TASKS = 7


def _build_in_flow(orch: PrefectDbtOrchestrator) -> tuple[dict[str, dict[str, Any]], UUID]:
    @flow
    def build() -> tuple[dict[str, dict[str, Any]], UUID]:
        from prefect.runtime import flow_run

        return orch.run_build(), UUID(flow_run.id)

    return build()


def _task_states(flow_run_id: UUID) -> dict[str, tuple[StateType | None, str | None]]:
    """Each task run's final state type and name, by task run name, as the API has them."""
    runs = recorded_task_runs(flow_run_id, TASKS)
    return {run.name: (run.state_type, run.state_name) for run in runs}


def test_cache_hits_are_cached_states_in_prefect(project, chain_manifest, tmp_path: Path) -> None:
    (project.project_dir / "seeds").mkdir()
    (project.project_dir / "seeds" / "raw.csv").write_text("id\n1\n")  # the seed's key reads it
    orch = PrefectDbtOrchestrator(
        settings=project,
        executor=FakeExecutor(chain_manifest),
        execution_mode="per_node",
        cache=CacheConfig(result_storage=tmp_path / "results", key_storage=tmp_path / "keys"),
    )
    first, first_run = _build_in_flow(orch)
    assert {r["status"] for r in first.values()} == {"success"}
    assert set(_task_states(first_run).values()) == {(StateType.COMPLETED, "Completed")}

    second, second_run = _build_in_flow(orch)
    states = _task_states(second_run)
    cached = {"seed raw", "model stg", "model mart", "model other", "model other_mart"}
    for name in cached:
        assert states[name] == (StateType.COMPLETED, "Cached"), name
    # Tests are never cached: they run, and complete as usual.
    assert states["test not_null_stg_id"] == (StateType.COMPLETED, "Completed")
    # The results keep the guide's "cached" status and the stored outcome.
    by_id = {uid.split(".", 1)[0] + " " + uid.rsplit(".", 1)[1]: r for uid, r in second.items()}
    for name in cached:
        assert by_id[name]["status"] == "cached"
        assert by_id[name]["message"] == "OK"
        assert "cache" in by_id[name]
    assert by_id["test not_null_stg_id"]["status"] == "success"


def _runs(flow_run_id: UUID) -> dict[str, Any]:
    return {run.name: run for run in recorded_task_runs(flow_run_id, TASKS)}


def _cached_orchestrator(project, chain_manifest, tmp_path: Path) -> PrefectDbtOrchestrator:
    (project.project_dir / "seeds").mkdir(exist_ok=True)
    (project.project_dir / "seeds" / "raw.csv").write_text("id\n1\n")
    return PrefectDbtOrchestrator(
        settings=project,
        executor=FakeExecutor(chain_manifest),
        execution_mode="per_node",
        cache=CacheConfig(result_storage=tmp_path / "results", key_storage=tmp_path / "keys"),
    )


def test_recorded_cache_hits_keep_their_edges(project, chain_manifest, tmp_path: Path) -> None:
    # A hit is recorded without a task run through the engine: its parents must still be
    # its inputs, so the UI draws the same graph as for a build that ran.
    orch = _cached_orchestrator(project, chain_manifest, tmp_path)
    _build_in_flow(orch)
    _, run_id = _build_in_flow(orch)
    runs = _runs(run_id)
    ids = {run.id: name for name, run in runs.items()}
    inputs = {
        name: {ids[i.id] for i in run.task_inputs.get("request", []) if hasattr(i, "id")}
        for name, run in runs.items()
    }
    assert runs["model mart"].state_name == "Cached"
    assert "model stg" in inputs["model mart"]
    assert inputs["model stg"] == {"seed raw"}
    assert all(run.flow_run_id == run_id for run in runs.values())


def test_hits_are_served_by_the_task_when_no_event_can_be_sent(
    project, chain_manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect_dbt_orchestrator import _per_node

    orch = _cached_orchestrator(project, chain_manifest, tmp_path)
    _build_in_flow(orch)
    monkeypatch.setattr(_per_node, "record_cache_hit", lambda task, parents: None)
    second, run_id = _build_in_flow(orch)
    assert _task_states(run_id)["model mart"] == (StateType.COMPLETED, "Cached")
    assert second["model.p.mart"]["status"] == "cached"
