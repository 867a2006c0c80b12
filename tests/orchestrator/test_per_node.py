from __future__ import annotations

from itertools import pairwise

import pytest
from dbt_graph import NodeStatus
from dbt_graph.testing import FakeExecutor
from prefect import flow
from prefect.client.orchestration import get_client
from prefect_dbt_orchestrator import PrefectDbtOrchestrator
from recorded import recorded_task_runs
from shapes import wide

pytestmark = pytest.mark.usefixtures("prefect_server")


def per_node(project, executor, **kw) -> PrefectDbtOrchestrator:
    return PrefectDbtOrchestrator(
        settings=project, executor=executor, execution_mode="per_node", **kw
    )


def test_each_node_runs_alone_with_its_own_command(project, chain_manifest) -> None:
    executor = FakeExecutor(chain_manifest)
    results = per_node(project, executor, concurrency=2).run_build()
    assert all(len(r.nodes) == 1 for r in executor.requests)
    assert results["seed.p.raw"]["invocation"]["command"] == "seed"
    assert results["model.p.stg"]["invocation"]["command"] == "run"
    assert results["test.p.not_null_stg_id"]["invocation"]["command"] == "test"


def test_downstream_of_a_failure_is_skipped_with_the_root_failure(project, chain_manifest) -> None:
    executor = FakeExecutor(chain_manifest, outcomes={"seed.p.raw": NodeStatus.ERROR})
    results = per_node(project, executor, raise_on_failure=False).run_build()
    assert results["seed.p.raw"]["status"] == "error"
    # mart is two levels down: it names the root failure, not the skipped stg.
    assert results["model.p.mart"]["failed_upstream"] == ["seed.p.raw"]
    assert results["model.p.stg"]["failed_upstream"] == ["seed.p.raw"]
    assert results["model.p.other_mart"]["status"] == "success"
    ran = {r.nodes[0].unique_id for r in executor.requests}
    assert "model.p.mart" not in ran and "model.p.stg" not in ran


def test_retries_rerun_a_flaky_node_until_it_passes(project, chain_manifest) -> None:
    executor = FakeExecutor(chain_manifest, fail_times={"model.p.other": 2})
    results = per_node(project, executor, retries=2, retry_delay_seconds=0).run_build()
    assert results["model.p.other"]["status"] == "success"
    assert sum(r.nodes[0].unique_id == "model.p.other" for r in executor.requests) == 3


def test_retries_exhausted_report_the_last_error(project, chain_manifest) -> None:
    executor = FakeExecutor(chain_manifest, fail_times={"model.p.other": 5})
    orch = per_node(project, executor, retries=1, retry_delay_seconds=0, raise_on_failure=False)
    results = orch.run_build()
    assert results["model.p.other"]["status"] == "error"
    assert results["model.p.other"]["error"]["message"] == "scripted failure"
    assert "timing" in results["model.p.other"]
    assert sum(r.nodes[0].unique_id == "model.p.other" for r in executor.requests) == 2


def test_eager_scheduling_does_not_wait_for_a_slow_sibling(project, chain_manifest) -> None:
    executor = FakeExecutor(chain_manifest, delays={"seed.p.raw": 1.5})
    results = per_node(project, executor, concurrency=4, test_strategy="skip").run_build()
    other_mart_done = results["model.p.other_mart"]["timing"]["completed_at"]
    raw_done = results["seed.p.raw"]["timing"]["completed_at"]
    assert other_mart_done < raw_done


def test_missing_named_concurrency_limit_is_a_clear_error_before_running(
    project, chain_manifest
) -> None:
    executor = FakeExecutor(chain_manifest)
    with pytest.raises(ValueError, match="global concurrency limit 'nope' does not exist"):
        per_node(project, executor, concurrency="nope").run_build()
    assert executor.requests == []


def test_named_concurrency_limit_serialises_nodes(project, chain_manifest) -> None:
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate

    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(
            GlobalConcurrencyLimitCreate(name="dbt-one", limit=1)
        )
    executor = FakeExecutor(chain_manifest, delays={"model.p.other": 0.3, "seed.p.raw": 0.3})
    results = per_node(project, executor, concurrency="dbt-one", test_strategy="skip").run_build()
    spans = sorted(
        (r["timing"]["started_at"], r["timing"]["completed_at"]) for r in results.values()
    )
    for (_, end), (start, _) in pairwise(spans):
        assert end <= start


def test_task_runs_are_named_and_linked_in_the_flow_run(project, chain_manifest) -> None:
    executor = FakeExecutor(chain_manifest)

    @flow
    def build():
        from prefect.runtime import flow_run

        per_node(project, executor).run_build()
        return flow_run.id

    flow_run_id = build()
    runs = recorded_task_runs(flow_run_id, 7)  # the server records them in the background
    names = {r.name for r in runs}
    assert {"seed raw", "model stg", "test not_null_stg_id", "model mart"} <= names
    by_name = {r.name: r for r in runs}
    upstream = {i.id for inputs in by_name["model mart"].task_inputs.values() for i in inputs} | {
        i.id for i in by_name["model mart"].task_inputs.get("wait_for", [])
    }
    assert by_name["model stg"].id in upstream
    assert by_name["test not_null_stg_id"].id in upstream


def test_outside_a_flow_the_task_runs_share_one_client(project, tmp_path, monkeypatch) -> None:
    # Each task run outside a flow made its own clients (a new SSL context and connection
    # each): two per node, four times a node's cost in a flow.
    from prefect.client.orchestration import SyncPrefectClient

    manifest = wide(15).build_file(tmp_path / "target")
    made: list[int] = []
    original = SyncPrefectClient.__init__

    def counted(self, *args, **kwargs) -> None:
        made.append(1)
        original(self, *args, **kwargs)

    monkeypatch.setattr(SyncPrefectClient, "__init__", counted)
    results = per_node(project, FakeExecutor(manifest), concurrency=4).run_build()
    assert len(results) == 31
    assert all(r["status"] in ("success", "pass") for r in results.values())
    assert len(made) <= 3  # not one or two per node
