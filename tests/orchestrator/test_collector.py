"""The cyclic garbage collector stays away from what a call plans and what a build holds."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbt_graph import ExecutionRequest, ExecutionResult, Manifest
from dbt_graph.testing import FakeExecutor
from prefect_dbt_orchestrator import PrefectDbtOrchestrator
from shapes import wide


@pytest.fixture
def wide_manifest(tmp_path: Path) -> Manifest:
    return wide(300).build_file(tmp_path / "target")


@pytest.fixture
def small_manifest(tmp_path: Path) -> Manifest:
    return wide(30).build_file(tmp_path / "target")


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """Generations of the collections that start while the test body runs."""
    started: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield started
    finally:
        gc.callbacks.remove(count)


def test_no_collection_runs_while_a_call_is_planned(
    project, wide_manifest: Manifest, collections: list[int]
) -> None:
    # Selection and the plan allocate many containers and no cycles: the collector would only
    # traverse them (and the manifest) again and again.
    orch = PrefectDbtOrchestrator(settings=project, executor=FakeExecutor(wide_manifest))
    plan = orch.plan()
    assert plan.node_count == 601
    # At most one, right after, when the allocations made meanwhile are first counted.
    assert len(collections) <= 1
    assert gc.isenabled()


class FreezeWitness(FakeExecutor):
    """Notes whether the objects that existed before the build were frozen while it ran."""

    frozen: list[int]

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        self.frozen.append(gc.get_freeze_count())
        return super().execute(request)


@pytest.mark.parametrize("mode", ["per_wave", "per_node"])
def test_a_build_runs_with_the_heap_it_started_with_frozen(
    project, small_manifest: Manifest, mode: str
) -> None:
    # Full collections during a build then traverse only what the build made since it began,
    # not Prefect, the manifest and the plan again and again.
    executor = FreezeWitness(small_manifest)
    executor.frozen = []
    orch = PrefectDbtOrchestrator(settings=project, executor=executor, execution_mode=mode)
    assert gc.get_freeze_count() == 0
    results = orch.run_build()
    assert len(results) == 61
    assert executor.frozen and min(executor.frozen) > 0
    # Handed back afterwards, so garbage among them is collected.
    assert gc.get_freeze_count() == 0
