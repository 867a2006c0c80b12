"""Concurrency keys (issue 15): per-node limits beside ``concurrency``, each a Prefect global
concurrency limit, on a real Prefect server with the fake executor."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path

import pytest
from dbt_graph import ConcurrencyKey, ConcurrencyKeyError, Manifest
from dbt_graph.testing import FakeExecutor, ManifestBuilder
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate,
    GlobalConcurrencyLimitUpdate,
)
from prefect.concurrency.sync import concurrency
from prefect_dbt_orchestrator import PrefectDbtOrchestrator

pytestmark = pytest.mark.usefixtures("prefect_server")

HEAVY = [f"model.p.heavy{i}" for i in range(3)]


@pytest.fixture
def tag() -> str:
    """A tag of its own per test: limits live as long as the session's Prefect server."""
    return f"heavy{uuid.uuid4().hex[:8]}"


@pytest.fixture
def heavy_manifest(tmp_path: Path, tag: str) -> Manifest:
    """Three independent models tagged ``tag``, two light ones."""
    builder = ManifestBuilder()
    for i in range(3):
        builder.model(f"heavy{i}", tags=[tag], materialized="table")
    return builder.model("light0").model("light1").build_file(tmp_path / "target")


def per_node(project, executor, **kw) -> PrefectDbtOrchestrator:
    return PrefectDbtOrchestrator(
        settings=project, executor=executor, execution_mode="per_node", **kw
    )


def spans(results, ids):
    return sorted(
        (results[u]["timing"]["started_at"], results[u]["timing"]["completed_at"]) for u in ids
    )


def read_limit(name: str):
    with get_client(sync_client=True) as client:
        return client.read_global_concurrency_limit_by_name(name)


def test_a_key_lets_one_tagged_node_run_at_a_time(project, heavy_manifest, tag) -> None:
    executor = FakeExecutor(heavy_manifest, delays=dict.fromkeys(HEAVY, 0.3))
    key = ConcurrencyKey(selector=f"tag:{tag}", limit=1)
    results = per_node(project, executor, concurrency=4, concurrency_keys=[key]).run_build()
    assert {r["status"] for r in results.values()} == {"success"}
    for (_, end), (start, _) in pairwise(spans(results, HEAVY)):
        assert end <= start
    # The key became a Prefect global concurrency limit of its own size, free again.
    limit = read_limit(f"dbt-tag-{tag}")
    assert (limit.limit, limit.active, limit.active_slots) == (1, True, 0)


def test_a_key_holds_across_flow_runs(project, heavy_manifest, tag) -> None:
    """Another run holds the key's only slot: this build's tagged nodes wait for it."""
    name = f"dbt-tag-{tag}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
    taken, released = threading.Event(), []

    def other_run() -> None:
        with concurrency(name, occupy=1):
            taken.set()
            threading.Event().wait(2.0)
            released.append(datetime.now(UTC))

    holder = threading.Thread(target=other_run)
    holder.start()
    assert taken.wait(60)
    executor = FakeExecutor(heavy_manifest)
    key = ConcurrencyKey(selector=f"tag:{tag}", limit=1)
    results = per_node(project, executor, concurrency=4, concurrency_keys=[key]).run_build()
    holder.join()
    first_heavy = min(datetime.fromisoformat(results[u]["timing"]["started_at"]) for u in HEAVY)
    assert first_heavy >= released[0]


def test_a_node_takes_all_its_limits_at_once(project, tmp_path, tag) -> None:
    """A node under two keys and a named limit runs; every slot is given back."""
    manifest = (
        ManifestBuilder()
        .model("both", tags=[tag], materialized="table")
        .model("tagged", tags=[tag])
        .model("table", materialized="table")
        .build_file(tmp_path / "target")
    )
    named = f"dbt-all-{tag}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=named, limit=2))
    keys = [
        ConcurrencyKey(selector=f"tag:{tag}", limit=1),
        ConcurrencyKey(selector="config.materialized:table", limit=1, name=f"tables-{tag}"),
    ]
    results = per_node(
        project, FakeExecutor(manifest), concurrency=named, concurrency_keys=keys
    ).run_build()
    assert {r["status"] for r in results.values()} == {"success"}
    for name in (named, f"dbt-tag-{tag}", f"tables-{tag}"):
        assert read_limit(name).active_slots == 0


def test_an_existing_limit_of_another_size_is_refused_before_running(
    project, heavy_manifest, tag
) -> None:
    name = f"dbt-tag-{tag}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=3))
    executor = FakeExecutor(heavy_manifest)
    key = ConcurrencyKey(selector=f"tag:{tag}", limit=1)
    with pytest.raises(ValueError, match=rf"'{name}' has limit 3, but the concurrency key"):
        per_node(project, executor, concurrency_keys=[key]).run_build()
    assert executor.requests == []


def test_a_disabled_limit_is_refused_before_running(project, heavy_manifest, tag) -> None:
    name = f"dbt-tag-{tag}"
    with get_client(sync_client=True) as client:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))
        client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(active=False))
    executor = FakeExecutor(heavy_manifest)
    key = ConcurrencyKey(selector=f"tag:{tag}", limit=1)
    with pytest.raises(ValueError, match=rf"prefect gcl enable {name}"):
        per_node(project, executor, concurrency_keys=[key]).run_build()
    assert executor.requests == []


def test_plan_estimates_with_the_keys(project, heavy_manifest, tag) -> None:
    key = ConcurrencyKey(selector=f"tag:{tag}", limit=1)
    orch = per_node(project, FakeExecutor(heavy_manifest), concurrency=4, concurrency_keys=[key])
    # No history: 1 s per model by default; the three tagged models run one after the other.
    assert orch.plan().expected_wall_seconds == 3.0
    orch.concurrency_keys = ()
    assert orch.plan().expected_wall_seconds == 2.0


def test_keys_that_clash_are_refused_by_plan(project, heavy_manifest, tag) -> None:
    keys = [
        ConcurrencyKey(selector=f"tag:{tag}", limit=1, name="same"),
        ConcurrencyKey(selector="resource_type:model", limit=2, name="same"),
    ]
    with pytest.raises(ConcurrencyKeyError, match="Two concurrency keys have the name 'same'"):
        per_node(project, FakeExecutor(heavy_manifest), concurrency_keys=keys).plan()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"execution_mode": "per_wave"}, "only supported in PER_NODE"),
        ({"concurrency_keys": ConcurrencyKey(selector="tag:x", limit=1)}, "must be a list"),
        ({"concurrency_keys": ["tag:x"]}, "must hold ConcurrencyKey objects"),
    ],
)
def test_bad_keys_are_refused_at_construction(project, kwargs, message) -> None:
    options = {
        "execution_mode": "per_node",
        "concurrency_keys": [ConcurrencyKey(selector="tag:x", limit=1)],
        **kwargs,
    }
    with pytest.raises(ValueError, match=message):
        PrefectDbtOrchestrator(
            settings=project, executor=FakeExecutor(ManifestBuilder().build()), **options
        )


def test_keys_are_importable_from_the_orchestrator() -> None:
    import prefect_dbt_orchestrator

    assert prefect_dbt_orchestrator.ConcurrencyKey is ConcurrencyKey
