"""The summary artifact and run_results.json, with the fake executor."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import jsonschema
import pytest
from dbt_graph import Manifest, NodeStatus, load_manifest
from dbt_graph.testing import FakeExecutor
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.context import FlowRunContext
from prefect_dbt_orchestrator import DbtBuildFailed, PrefectDbtOrchestrator
from prefect_dbt_orchestrator._artifacts import (
    ARTIFACT_KEY,
    create_summary_artifact,
    node_label,
    summary_markdown,
)
from prefect_dbt_orchestrator._outcomes import NodeOutcome
from prefect_dbt_orchestrator._run_results import dbt_status, run_results, write_atomically

OUTCOMES = {
    "model.p.stg": NodeStatus.ERROR,
    "test.p.warn_other": NodeStatus.WARN,
}


@pytest.fixture
def dbt_run_results_schema() -> dict:
    """dbt's published run-results schema (v6), from the installed dbt-core's own classes."""
    from dbt.artifacts.schemas.run import RunResultsArtifact

    schema = RunResultsArtifact.json_schema()
    assert schema["$id"] == "https://schemas.getdbt.com/dbt/run-results/v6.json"
    return schema


def outcomes(results: dict) -> dict[str, NodeOutcome]:
    """``run_build()``'s dicts (or dicts written like them) as the typed outcomes inside."""
    return {uid: NodeOutcome.from_dict(result) for uid, result in results.items()}


def orchestrator(project, manifest: Manifest, **kw) -> PrefectDbtOrchestrator:
    executor = FakeExecutor(manifest, outcomes=OUTCOMES)
    return PrefectDbtOrchestrator(settings=project, executor=executor, raise_on_failure=False, **kw)


# -- names -------------------------------------------------------------------------------------


def test_generic_tests_are_named_without_their_hash(shop_manifest_path) -> None:
    manifest = load_manifest(shop_manifest_path)
    test_ids = [u for u in manifest.nodes if u.startswith("test.shop.not_null_stg_orders_order_id")]
    (uid,) = test_ids
    assert uid.count(".") == 3  # dbt's id ends in a hash
    results = {
        uid: {"status": "error", "dbt_status": "fail", "error": {"message": "Got 1 result"}},
        "model.shop.customers.v2": {"status": "success", "dbt_status": "success"},
    }
    markdown = summary_markdown(outcomes(results), manifest)
    assert "`not_null_stg_orders_order_id` (test)" in markdown
    assert "`customers.v2` (model)" in markdown
    assert uid.rsplit(".", 1)[1] not in markdown


@pytest.mark.parametrize(
    ("uid", "label"),
    [
        ("test.shop.unique_orders_id.e2cfb1f9aa", ("unique_orders_id", "test")),
        ("model.shop.customers.v2", ("customers.v2", "model")),
        ("unit_test.shop.orders.test_paid_ratio", ("test_paid_ratio", "unit_test")),
        ("source.shop.app.orders", ("app.orders", "source")),
        ("seed.shop.raw", ("raw", "seed")),
    ],
)
def test_ids_missing_from_the_manifest_still_get_readable_names(uid, label) -> None:
    assert node_label(uid, None) == label


# -- summary artifact --------------------------------------------------------------------------


def test_summary_has_counts_and_a_section_per_outcome(project, chain_manifest) -> None:
    results = orchestrator(project, chain_manifest).run_build()
    markdown = summary_markdown(outcomes(results), chain_manifest)
    assert "| Success | Cached | Warn | Error | Skipped | Total |" in markdown
    assert "| 4 | 0 | 1 | 1 | 2 | 7 |" in markdown
    errors = markdown.split("### Errors (1)")[1].split("###")[0]
    assert "`stg` (model)" in errors and "scripted failure" in errors
    warnings = markdown.split("### Warnings (1)")[1].split("###")[0]
    assert "`warn_other` (test)" in warnings
    skipped = markdown.split("### Skipped (2)")[1].split("###")[0]
    assert "`mart` (model): upstream failure — after `stg`" in skipped
    successful = markdown.split("### Successful (4)")[1]
    assert "`raw` (seed)" in successful and "`other_mart` (model)" in successful


def test_no_artifact_outside_a_flow_run(chain_manifest) -> None:
    assert create_summary_artifact({}, chain_manifest) is None


@pytest.mark.usefixtures("prefect_server")
def test_summary_artifact_is_created_in_the_flow_run(project, chain_manifest) -> None:
    orch = orchestrator(project, chain_manifest)

    @flow
    def build() -> str:
        orch.run_build()
        return str(FlowRunContext.get().flow_run.id)

    flow_run_id = build()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[ARTIFACT_KEY]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    (artifact,) = artifacts
    assert artifact.type == "markdown"
    assert "`stg` (model)" in artifact.data and "scripted failure" in artifact.data
    assert "1 error, 2 skipped" in artifact.description


@pytest.mark.usefixtures("prefect_server")
def test_summary_artifact_can_be_turned_off(project, chain_manifest) -> None:
    orch = orchestrator(project, chain_manifest, create_summary_artifact=False)

    @flow
    def build() -> str:
        orch.run_build()
        return str(FlowRunContext.get().flow_run.id)

    flow_run_id = build()
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]))
        )
    assert artifacts == []


# -- run_results.json --------------------------------------------------------------------------


def test_run_results_is_valid_dbt_with_dbts_vocabulary(
    project, chain_manifest, dbt_run_results_schema
) -> None:
    from dbt.artifacts.schemas.run import RunResultsArtifact

    orch = orchestrator(project, chain_manifest, write_run_results=True)
    orch.run_build()
    path = Path(chain_manifest.path).parent / "run_results.json"
    document = json.loads(path.read_text())
    jsonschema.validate(document, dbt_run_results_schema)
    RunResultsArtifact.read_and_check_versions(str(path))
    statuses = {r["unique_id"]: r["status"] for r in document["results"]}
    assert statuses == {
        "seed.p.raw": "success",
        "model.p.stg": "error",
        "model.p.other": "success",
        "test.p.warn_other": "warn",
        "model.p.other_mart": "success",
        "model.p.mart": "skipped",
        "test.p.not_null_stg_id": "skipped",
    }
    rows = {r["unique_id"]: r for r in document["results"]}
    assert rows["model.p.stg"]["message"] == "scripted failure"
    assert rows["model.p.mart"]["message"] == "upstream failure: model.p.stg"
    assert rows["seed.p.raw"]["timing"][0]["name"] == "execute"
    assert rows["seed.p.raw"]["relation_name"] == '"db"."main"."raw"'
    assert document["args"]["which"] == "build"
    assert document["metadata"]["invocation_id"]


@pytest.mark.parametrize(
    ("result", "is_test", "status"),
    [
        ({"status": "success", "dbt_status": "pass"}, True, "pass"),
        ({"status": "error", "dbt_status": "fail"}, True, "fail"),
        ({"status": "error", "dbt_status": "error"}, True, "error"),
        ({"status": "success", "dbt_status": "warn"}, True, "warn"),
        ({"status": "cached"}, False, "success"),
        ({"status": "cached", "dbt_status": "pass"}, True, "pass"),
        ({"status": "error"}, False, "error"),  # could not run dbt: no dbt status
        ({"status": "skipped", "reason": "stale source: source.p.a.b"}, False, "skipped"),
        ({"status": "success", "dbt_status": "no-op"}, False, "no-op"),
    ],
)
def test_status_mapping(result, is_test, status, chain_manifest) -> None:
    node = chain_manifest.nodes["test.p.not_null_stg_id" if is_test else "model.p.stg"]
    assert dbt_status(NodeOutcome.from_dict(result), node) == status


def test_cached_nodes_say_they_came_from_cache(chain_manifest, dbt_run_results_schema) -> None:
    results = {
        "model.p.stg": {
            "status": "cached",
            "dbt_status": "success",
            "message": "OK",
            "timing": {
                "started_at": "2024-01-01T00:00:00+00:00",
                "completed_at": "2024-01-01T00:00:00.001000+00:00",
                "duration_seconds": 0.001,
            },
        }
    }
    document = run_results(outcomes(results), chain_manifest, invocation_id="x")
    jsonschema.validate(document, dbt_run_results_schema)
    (row,) = document["results"]
    assert row["status"] == "success"
    assert "cache" in row["message"] and "dbt did not run it" in row["message"]


def test_write_error_is_logged_and_the_build_outcome_stands(
    project, chain_manifest, caplog
) -> None:
    blocker = Path(chain_manifest.path).parent / "run_results.json"
    blocker.mkdir()  # a directory where the file should go: the write must fail
    orch = PrefectDbtOrchestrator(
        settings=project,
        executor=FakeExecutor(chain_manifest, outcomes=OUTCOMES),
        write_run_results=True,
    )
    with caplog.at_level(logging.ERROR), pytest.raises(DbtBuildFailed):
        orch.run_build()
    assert any(str(blocker) in r.getMessage() for r in caplog.records)
    assert blocker.is_dir() and list(blocker.parent.glob(".run_results.json.*")) == []


def test_atomic_write_keeps_the_previous_file_on_error(tmp_path) -> None:
    path = tmp_path / "run_results.json"
    write_atomically(path, {"results": [1]})
    circular: dict = {}
    circular["self"] = circular
    with pytest.raises(ValueError, match="Circular"):
        write_atomically(path, circular)
    assert json.loads(path.read_text()) == {"results": [1]}
    assert [p.name for p in tmp_path.iterdir()] == ["run_results.json"]
