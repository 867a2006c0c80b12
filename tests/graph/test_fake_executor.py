from __future__ import annotations

from pathlib import Path

from dbt_graph import Command, ExecutionRequest, NodeStatus
from dbt_graph.testing import FakeExecutor, ManifestBuilder
from executor_contract import ContractCase, check_executor_contract


def _manifest(tmp_path: Path):
    return (
        ManifestBuilder()
        .seed("raw")
        .model("good", depends_on=["raw"])
        .model("bad", depends_on=["raw"])
        .model("after_bad", depends_on=["bad"])
        .test("warns", depends_on=["good"], severity="warn")
        .source("app", "orders", warn_after=(1, "hour"))
        .build_file(tmp_path)
    )


def test_fake_executor_passes_the_executor_contract(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    executor = FakeExecutor(
        manifest,
        outcomes={"model.p.bad": NodeStatus.ERROR, "test.p.warns": NodeStatus.WARN},
    )
    nodes = manifest.nodes
    check_executor_contract(
        ContractCase(
            executor=executor,
            manifest=manifest,
            passing=nodes["model.p.good"],
            failing=nodes["model.p.bad"],
            warn_test=nodes["test.p.warns"],
            skipped_downstream=nodes["model.p.after_bad"],
            prepare=(nodes["seed.p.raw"],),
        )
    )


def test_fake_executor_fails_a_flaky_node_the_scripted_number_of_times(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    executor = FakeExecutor(manifest, fail_times={"model.p.good": 2})
    request = ExecutionRequest(command=Command.RUN, nodes=(manifest.nodes["model.p.good"],))
    statuses = [executor.execute(request).results["model.p.good"].status for _ in range(3)]
    assert statuses == [NodeStatus.ERROR, NodeStatus.ERROR, NodeStatus.SUCCESS]
    assert len(executor.requests) == 3
