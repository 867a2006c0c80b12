from __future__ import annotations

import pytest
from dbt_graph import NodeStatus
from dbt_graph.testing import FakeExecutor
from prefect_dbt_orchestrator import DbtBuildFailed, PrefectDbtOrchestrator


def run(project, manifest, outcomes=None, **kw):
    executor = FakeExecutor(manifest, outcomes=outcomes or {})
    orch = PrefectDbtOrchestrator(settings=project, executor=executor, **kw)
    return orch, executor


def test_success_results_have_timing_and_invocation(project, chain_manifest) -> None:
    orch, executor = run(project, chain_manifest)
    results = orch.run_build()
    assert set(results) == {
        "seed.p.raw",
        "model.p.stg",
        "test.p.not_null_stg_id",
        "model.p.mart",
        "model.p.other",
        "model.p.other_mart",
        "test.p.warn_other",
    }
    stg = results["model.p.stg"]
    assert stg["status"] == "success"
    assert set(stg["timing"]) >= {"started_at", "completed_at", "duration_seconds"}
    assert stg["timing"]["started_at"].endswith("+00:00")
    assert stg["invocation"]["command"] == "build"
    # One dbt invocation per wave.
    assert len(executor.requests) == len(orch.plan().waves)
    assert all(r.command.value == "build" for r in executor.requests)


def test_the_nodes_of_a_wave_share_one_args_list(project, chain_manifest) -> None:
    # A wave's --select names every node of the wave: one list per node would hold the square
    # of the wave's size in entries.
    orch, _ = run(project, chain_manifest)
    results = orch.run_build()
    wave = orch.plan().waves[0].nodes
    assert len(wave) > 1
    args = [results[node.unique_id]["invocation"]["args"] for node in wave]
    assert all(a is args[0] for a in args)
    assert args[0][:2] == ["build", "--select"]
    assert {n.unique_id for n in wave} <= set(args[0])


def test_warn_test_is_success_with_dbt_status_warn(project, chain_manifest) -> None:
    orch, _ = run(project, chain_manifest, {"test.p.warn_other": NodeStatus.WARN})
    results = orch.run_build()
    assert results["test.p.warn_other"]["status"] == "success"
    assert results["test.p.warn_other"]["dbt_status"] == "warn"


def test_failure_skips_only_downstream_and_names_the_root(project, chain_manifest) -> None:
    orch, _ = run(
        project, chain_manifest, {"model.p.stg": NodeStatus.ERROR}, raise_on_failure=False
    )
    results = orch.run_build()
    assert results["model.p.stg"]["status"] == "error"
    assert results["model.p.stg"]["error"]["message"] == "scripted failure"
    for uid in ("model.p.mart", "test.p.not_null_stg_id"):
        assert results[uid] == {
            "status": "skipped",
            "reason": "upstream failure",
            "failed_upstream": ["model.p.stg"],
        }
    # The independent branch still ran.
    assert results["model.p.other_mart"]["status"] == "success"


def test_failing_test_skips_the_tested_models_children(project, chain_manifest) -> None:
    orch, _ = run(
        project, chain_manifest, {"test.p.not_null_stg_id": NodeStatus.FAIL}, raise_on_failure=False
    )
    results = orch.run_build()
    assert results["model.p.stg"]["status"] == "success"
    assert results["test.p.not_null_stg_id"]["status"] == "error"
    assert results["test.p.not_null_stg_id"]["dbt_status"] == "fail"
    assert results["model.p.mart"]["failed_upstream"] == ["test.p.not_null_stg_id"]


def test_deferred_test_failure_affects_nothing_downstream(project, chain_manifest) -> None:
    orch, _ = run(
        project,
        chain_manifest,
        {"test.p.not_null_stg_id": NodeStatus.FAIL},
        raise_on_failure=False,
        test_strategy="deferred",
    )
    results = orch.run_build()
    assert results["model.p.mart"]["status"] == "success"
    assert list(results)[-2:] == ["test.p.not_null_stg_id", "test.p.warn_other"]


def test_skip_strategy_runs_no_tests(project, chain_manifest) -> None:
    orch, _ = run(project, chain_manifest, test_strategy="skip")
    assert not any(uid.startswith("test.") for uid in orch.run_build())


def test_build_failed_carries_results_and_ids(project, chain_manifest) -> None:
    orch, _ = run(project, chain_manifest, {"model.p.stg": NodeStatus.ERROR})
    with pytest.raises(DbtBuildFailed) as info:
        orch.run_build()
    err = info.value
    assert err.failed_node_ids == ["model.p.stg"]
    assert set(err.skipped_node_ids) == {"model.p.mart", "test.p.not_null_stg_id"}
    assert str(err) == "dbt build failed for 1 node(s): model.p.stg"
    assert err.results["model.p.other"]["status"] == "success"


def test_select_and_exclude_prune_the_graph(project, chain_manifest) -> None:
    orch, _ = run(project, chain_manifest)
    results = orch.run_build(select="stg+", exclude="mart")
    assert set(results) == {"model.p.stg", "test.p.not_null_stg_id"}


def test_works_outside_a_flow_run(project, chain_manifest) -> None:
    orch, _ = run(project, chain_manifest)
    assert orch.run_build(select="other")["model.p.other"]["status"] == "success"
