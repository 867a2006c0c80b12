"""One executor ``run_scope`` around a whole run, its preparation included, in both modes."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from dbt_graph import (
    ExecutionRequest,
    ExecutionResult,
    FreshnessStatus,
    Manifest,
    SourceFreshness,
)
from dbt_graph.testing import FakeExecutor, ManifestBuilder
from prefect_dbt_orchestrator import PrefectDbtOrchestrator

pytestmark = pytest.mark.usefixtures("prefect_server")

SOURCE = "source.p.raw.orders"


class ScopedFake(FakeExecutor):
    """The fake executor with a ``run_scope`` that records, in order, what happens in it."""

    def __init__(self, manifest: Manifest, **kw: Any) -> None:
        super().__init__(manifest, **kw)
        self.events: list[tuple[str, Any]] = []
        self._events_lock = threading.Lock()

    def _note(self, what: str, detail: Any = None) -> None:
        with self._events_lock:
            self.events.append((what, detail))

    @contextlib.contextmanager
    def run_scope(self, concurrency: int | None = None) -> Iterator[None]:
        self._note("enter", concurrency)
        try:
            yield
        finally:
            self._note("exit")

    def resolve_manifest(
        self, *, target: str | None = None, vars: Mapping[str, Any] | None = None
    ) -> Path:
        self._note("resolve_manifest")
        return super().resolve_manifest(target=target, vars=vars)

    def source_freshness(
        self,
        sources: Sequence[str],
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> Mapping[str, SourceFreshness]:
        self._note("source_freshness")
        return super().source_freshness(sources, target=target, vars=vars)

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        self._note("execute")
        return super().execute(request)

    def kinds(self) -> list[str]:
        return [what for what, _ in self.events]


@pytest.fixture
def fed_manifest(tmp_path: Path) -> Manifest:
    """A source feeding two models, so that freshness is checked in the preparation."""
    return (
        ManifestBuilder()
        .source("raw", "orders", error_after=(1, "day"))
        .model("stg", depends_on=[SOURCE])
        .model("mart", depends_on=["stg"], materialized="table")
        .model("other")
        .build_file(tmp_path / "target")
    )


def _fake(manifest: Manifest) -> ScopedFake:
    fresh = SourceFreshness(unique_id=SOURCE, status=FreshnessStatus.PASS)
    return ScopedFake(manifest, freshness={SOURCE: fresh})


@pytest.mark.parametrize(
    ("mode", "concurrency", "scope_concurrency"),
    [("per_wave", None, 1), ("per_node", 3, 3), ("per_node", None, None)],
)
def test_preparation_and_execution_run_inside_one_scope(
    project, fed_manifest, mode, concurrency, scope_concurrency
) -> None:
    executor = _fake(fed_manifest)
    orch = PrefectDbtOrchestrator(
        settings=project, executor=executor, execution_mode=mode, concurrency=concurrency
    )
    results = orch.run_build(only_fresh_sources=True)
    assert {r["status"] for r in results.values()} == {"success"}
    kinds = executor.kinds()
    assert kinds[0] == "enter" and kinds[-1] == "exit"
    assert kinds.count("enter") == kinds.count("exit") == 1
    assert kinds[1:3] == ["resolve_manifest", "source_freshness"]
    assert set(kinds[3:-1]) == {"execute"}
    assert executor.events[0] == ("enter", scope_concurrency)


def test_the_scope_is_left_when_the_preparation_fails(project, fed_manifest) -> None:
    executor = _fake(fed_manifest)
    orch = PrefectDbtOrchestrator(settings=project, executor=executor)
    with pytest.raises(ValueError, match="--select"):
        orch.run_build(extra_cli_args=["--select", "other"])
    assert executor.kinds() == ["enter", "exit"]


def test_executors_without_a_scope_still_run(project, chain_manifest) -> None:
    results = PrefectDbtOrchestrator(
        settings=project, executor=FakeExecutor(chain_manifest)
    ).run_build()
    assert {r["status"] for r in results.values()} == {"success"}
