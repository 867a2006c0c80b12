"""Prefect assets: keys, names and lineage, read back from a real Prefect server's events."""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import pytest
from dbt_graph import ExecutionRequest, ExecutionResult, Manifest, NodeStatus
from dbt_graph.testing import FakeExecutor, ManifestBuilder
from prefect import flow
from prefect.assets import Asset
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter
from prefect_dbt_orchestrator import CacheConfig, PrefectDbtOrchestrator
from prefect_dbt_orchestrator._lineage import (
    MAX_KEY_LENGTH,
    asset_key,
    asset_name,
    upstream_specs,
    with_compiled_code,
)

SOURCE = "postgres://db/raw/orders"
STG = "postgres://db/main/stg_orders"
RAW = "postgres://db/main/raw_customers"
ORDERS = "postgres://db/main/orders"
SNAPSHOT = "postgres://db/main/orders_snapshot"


@pytest.mark.parametrize(
    ("relation", "adapter", "key"),
    [
        ('"shop"."main"."orders"', "duckdb", "duckdb://shop/main/orders"),
        ('"analytics"."public"."orders"', "postgres", "postgres://analytics/public/orders"),
        ('"DB"."SCH"."T"', "snowflake", "snowflake://DB/SCH/T"),
        ("ANALYTICS.PUBLIC.ORDERS", "snowflake", "snowflake://ANALYTICS/PUBLIC/ORDERS"),
        ("`my-proj`.`ds`.`t`", "bigquery", "bigquery://my-proj/ds/t"),
        ("[db].[dbo].[t]", "sqlserver", "sqlserver://db/dbo/t"),
        ('"db"."my.schema"."t"', "postgres", "postgres://db/my.schema/t"),
        ('"db"."main"."my table#1?"', "duckdb", "duckdb://db/main/my_table_1_"),
        ('"db"."main"."a/b"', "duckdb", "duckdb://db/main/a_b"),
        ('"db"."main"."t"', "Spark-SQL", "sparksql://db/main/t"),
    ],
)
def test_asset_key_per_adapter_is_a_valid_prefect_key(relation, adapter, key) -> None:
    assert asset_key(relation, adapter) == key
    assert Asset(key=asset_key(relation, adapter)).key == key


def test_forbidden_characters_are_replaced_not_dropped() -> None:
    # Dropping them would give "ab" to both relations.
    assert asset_key('"db"."s"."a b"', "duckdb") != asset_key('"db"."s"."ab"', "duckdb")


def test_overlong_keys_are_shortened_uniquely_and_stay_valid() -> None:
    long_a = '"db"."s"."' + "a" * 600 + '"'
    long_b = '"db"."s"."' + "a" * 599 + 'b"'
    key_a, key_b = asset_key(long_a, "duckdb"), asset_key(long_b, "duckdb")
    assert len(key_a) == MAX_KEY_LENGTH and key_a != key_b
    Asset(key=key_a)


def test_display_name_is_the_unquoted_relation() -> None:
    assert asset_name('"shop"."main"."orders"') == "shop.main.orders"
    assert asset_name("`p`.`d`.`t`") == "p.d.t"


def test_compiled_code_section_fits_prefect_limit() -> None:
    assert "### Compiled code" in with_compiled_code("Orders.", "select 1")
    huge = with_compiled_code("Orders.", "select 1 -- " + "x" * 5000)
    assert huge.startswith("Orders.") and "omitted" in huge and len(huge) <= 2500
    assert with_compiled_code("Orders.", None) == "Orders."


@pytest.fixture
def lineage_manifest(tmp_path: Path) -> Manifest:
    """source -> stg_orders; (stg_orders, raw_customers) -> ephemeral -> orders -> snapshot.

    A relationship test between orders and stg_orders makes the snapshot *wait* for stg_orders
    (dbt build's test placement) without *reading* it: lineage must not follow that edge.
    """
    return (
        ManifestBuilder(adapter_type="postgres")
        .source("app", "orders")
        .seed("raw_customers")
        .model("stg_orders", depends_on=["app.orders"], extra={"description": "Staged."})
        .model("int_orders", depends_on=["stg_orders", "raw_customers"], materialized="ephemeral")
        .model(
            "orders",
            depends_on=["int_orders"],
            materialized="table",
            config={"meta": {"owner": "finance@example.com"}},
            extra={"description": "One row per order."},
        )
        .test(
            "relationships_orders_stg",
            depends_on=["orders", "stg_orders"],
            test_name="relationships",
        )
        .snapshot("orders_snapshot", depends_on=["orders"])
        .build_file(tmp_path / "target")
    )


def test_upstream_assets_include_sources_and_look_through_ephemerals(lineage_manifest) -> None:
    nodes = lineage_manifest.nodes

    def upstream(uid: str) -> set[str]:
        return {s.key for s in upstream_specs(lineage_manifest, nodes[uid])}

    assert upstream("model.p.stg_orders") == {SOURCE}
    assert upstream("model.p.orders") == {STG, RAW}
    assert upstream("snapshot.p.orders_snapshot") == {ORDERS}
    assert upstream("seed.p.raw_customers") == set()


class CompilingExecutor(FakeExecutor):
    """The fake executor, reporting the SQL 'compiled' in this run like a real executor."""

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        execution = super().execute(request)
        compiled = {
            uid: dataclasses.replace(r, compiled_code=f"select 42 -- {uid} compiled this run")
            for uid, r in execution.results.items()
        }
        return dataclasses.replace(execution, results=compiled)


def run_in_flow(orch: PrefectDbtOrchestrator, **kw: Any) -> str:
    @flow(name="assets-test")
    def build() -> str:
        orch.run_build(**kw)
        return str(FlowRunContext.get().flow_run.id)

    return build()


def asset_events(
    flow_run_id: str, materialized: int, *, settle: float = 1.0, timeout: float = 120
) -> list[Any]:
    """The flow run's asset events, once ``materialized`` materializations arrived and settled."""
    event_filter = EventFilter(
        event=EventNameFilter(prefix=["prefect.asset."]),
        related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
    )

    def read() -> list[Any]:
        return list(client.read_events(filter=event_filter, limit=50).events)

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            events = read()
            if sum(".materialization." in e.event for e in events) >= materialized:
                break
            time.sleep(0.3)
        time.sleep(settle)
        return read()


def materializations(events: list[Any], outcome: str = "succeeded") -> dict[str, Any]:
    name = f"prefect.asset.materialization.{outcome}"
    return {e.resource.id: e for e in events if e.event == name}


def upstream_of(event: Any) -> set[str]:
    return {r.id for r in event.related if r.role == "asset"}


pytestmark_server = pytest.mark.usefixtures("prefect_server")


@pytestmark_server
@pytest.mark.parametrize("mode", ["per_node", "per_wave"])
def test_each_relation_is_an_asset_with_exact_lineage(project, lineage_manifest, mode) -> None:
    orch = PrefectDbtOrchestrator(
        settings=project, executor=FakeExecutor(lineage_manifest), execution_mode=mode
    )
    events = asset_events(run_in_flow(orch), materialized=4)
    done = materializations(events)
    assert set(done) == {STG, RAW, ORDERS, SNAPSHOT}  # no ephemeral, no test
    assert upstream_of(done[STG]) == {SOURCE}
    assert upstream_of(done[ORDERS]) == {STG, RAW}
    # The snapshot waited for the relationship test (and so for stg_orders) but reads orders only.
    assert upstream_of(done[SNAPSHOT]) == {ORDERS}
    for event in done.values():
        by_role = {r.role: r.id for r in event.related}
        assert by_role["asset-materialized-by"] == "dbt"
        assert event.payload["dbt_status"] == "success"
    orders = done[ORDERS].resource
    assert orders["prefect.resource.name"] == "db.main.orders"
    assert orders["prefect.asset.description"] == "One row per order."
    assert json.loads(orders["prefect.asset.owners"]) == ["finance@example.com"]
    referenced = {e.resource.id: e for e in events if e.event == "prefect.asset.referenced"}
    assert referenced[SOURCE].resource["prefect.resource.name"] == "db.raw.orders"


@pytestmark_server
@pytest.mark.parametrize("mode", ["per_node", "per_wave"])
def test_include_compiled_code_adds_this_runs_sql(project, lineage_manifest, mode) -> None:
    orch = PrefectDbtOrchestrator(
        settings=project,
        executor=CompilingExecutor(lineage_manifest),
        execution_mode=mode,
        include_compiled_code=True,
    )
    done = materializations(asset_events(run_in_flow(orch), materialized=4))
    description = done[ORDERS].resource["prefect.asset.description"]
    assert description.startswith("One row per order.")
    assert "### Compiled code" in description
    assert "select 42 -- model.p.orders compiled this run" in description


@pytestmark_server
@pytest.mark.parametrize("mode", ["per_node", "per_wave"])
def test_disable_assets_emits_no_asset_events(project, lineage_manifest, mode) -> None:
    orch = PrefectDbtOrchestrator(
        settings=project,
        executor=FakeExecutor(lineage_manifest),
        execution_mode=mode,
        disable_assets=True,
    )
    assert asset_events(run_in_flow(orch), materialized=1, settle=0, timeout=4) == []


@pytestmark_server
@pytest.mark.parametrize("mode", ["per_node", "per_wave"])
def test_failed_node_reports_a_failed_materialization(project, lineage_manifest, mode) -> None:
    executor = FakeExecutor(lineage_manifest, outcomes={"model.p.stg_orders": NodeStatus.ERROR})
    orch = PrefectDbtOrchestrator(
        settings=project, executor=executor, execution_mode=mode, raise_on_failure=False
    )
    events = asset_events(run_in_flow(orch), materialized=2)
    assert set(materializations(events, "failed")) == {STG}
    # Downstream nodes were skipped: nothing claims they were materialized.
    assert set(materializations(events)) == {RAW}


@pytestmark_server
def test_cache_hit_materializes_nothing(project, lineage_manifest, tmp_path) -> None:
    seed = project.project_dir / "seeds" / "raw_customers.csv"  # seeds are keyed by their CSV
    seed.parent.mkdir()
    seed.write_text("id\n1\n")
    cache = CacheConfig(result_storage=tmp_path / "results", key_storage=tmp_path / "keys")
    orch = PrefectDbtOrchestrator(
        settings=project,
        executor=FakeExecutor(lineage_manifest),
        execution_mode="per_node",
        cache=cache,
        test_strategy="skip",
    )
    first = materializations(asset_events(run_in_flow(orch), materialized=4))
    assert set(first) == {STG, RAW, ORDERS, SNAPSHOT}
    # Second run: everything but the snapshot (never cached) is served from cache.
    second = materializations(asset_events(run_in_flow(orch), materialized=1, settle=3))
    assert set(second) == {SNAPSHOT}


@pytest.mark.parametrize("disable_assets", [False, True])
def test_each_node_task_is_what_with_options_would_build(
    project, lineage_manifest, disable_assets
) -> None:
    from prefect_dbt_orchestrator import _assets
    from prefect_dbt_orchestrator._context import BuildArgs
    from prefect_dbt_orchestrator._node_tasks import TaskFactory, node_task
    from prefect_dbt_orchestrator._prepare import prepare

    orch = PrefectDbtOrchestrator(
        settings=project,
        executor=FakeExecutor(lineage_manifest),
        execution_mode="per_node",
        retries=2,
        retry_delay_seconds=7,
        disable_assets=disable_assets,
    )
    ctx = prepare(orch._options(), orch.executor, BuildArgs())
    factory = TaskFactory(ctx)
    built = {}
    for uid in ctx.plan.nodes:
        node = ctx.manifest.nodes[uid]
        name = f"{node.resource_type.value} {node.display_name}"
        expected = node_task.with_options(
            name=name, task_run_name=name, retries=2, retry_delay_seconds=7
        )
        assets = _assets.node_assets(ctx, node)
        if assets is not None:
            expected = _assets.materializing(expected, ctx, *assets)
        task = factory(node)
        assert type(task) is type(expected)
        assert vars(task) == vars(expected), uid
        built[uid] = task
    materializing = {uid for uid, t in built.items() if getattr(t, "assets", None)}
    assert len(materializing) == (0 if disable_assets else 4)
    # Copies share no hook list: a hook added to one node's task stays there.
    first, second = list(built.values())[:2]
    first.on_completion_hooks.append(print)
    assert print not in second.on_completion_hooks
