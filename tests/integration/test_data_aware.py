"""Data-aware caching end to end, on DuckDB and PostgreSQL: real dbt, real fingerprints, the
summary artifact read back from a Prefect server.

The shop project's sources ``shop_app.orders`` and ``shop_app.payments`` read the tables its
seeds load (``raw_orders``, ``raw_payments``); the tests change those tables behind dbt's back,
as a loader would. Every test first brings the cache up to date (a settling run), changes one
source's data, and then checks that ``plan()`` predicts, and the run rebuilds, exactly that
source's descendants (``dbt_graph.descendants``), that everything else is served from cache,
and that the rebuilt tables hold the new data.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import psycopg2
import pytest
from conftest import copy_shop_project
from dbt_graph import Manifest, ResourceType, descendants, load_manifest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
)
from prefect.context import FlowRunContext
from prefect_dbt_orchestrator import CacheConfig, PrefectDbtOrchestrator, PrefectDbtSettings
from prefect_dbt_orchestrator._artifacts import ARTIFACT_KEY

pytestmark = [pytest.mark.usefixtures("prefect_server"), pytest.mark.slow]

ORDERS = "source.shop.shop_app.orders"
PAYMENTS = "source.shop.shop_app.payments"
PAYMENT_ROWS = (
    "(1, 1, 'card', 1250), (2, 2, 'card', 3000), (3, 2, 'gift_card', 1000), (4, 3, 'card', 999), "
    "(5, 4, 'bank_transfer', 15000), (6, 5, 'card', 250), (7, 6, 'card', 7800), "
    "(8, 7, 'gift_card', 3300)"
)
_ids = itertools.count(100)


@dataclass
class Warehouse:
    """The shop project on one database, with a data-aware orchestrator over it."""

    name: str
    orch: PrefectDbtOrchestrator
    target: str
    schema: str
    execute: Callable[[str], None]
    rows: Callable[[str], list[tuple[Any, ...]]]
    #: dbt's execution time of each node's last real run, as the runs reported it.
    last_real: dict[str, float] = field(default_factory=dict)

    def t(self, table: str) -> str:
        return f"{self.schema}.{table}"

    def build(self, **kw: Any) -> tuple[dict[str, dict[str, Any]], str]:
        """``run_build()`` in a flow: the results and the flow run's id."""

        @flow(name=f"data-aware-{self.name}")
        def dbt_build() -> tuple[dict[str, dict[str, Any]], str]:
            results = self.orch.run_build(target=self.target, **kw)
            return results, str(FlowRunContext.get().flow_run.id)

        results, flow_run_id = dbt_build()
        for uid, result in results.items():
            seconds = (result.get("timing") or {}).get("execution_time")
            if result["status"] == "success" and seconds is not None:
                self.last_real[uid] = seconds
        return results, flow_run_id

    def manifest(self) -> Manifest:
        return load_manifest(self.orch.executor.resolve_manifest(target=self.target))

    def new_order(self, order_id: int, status: str = "placed") -> str:
        return (
            f"insert into {self.t('raw_orders')} values "
            f"({order_id}, 2, '2030-01-01 00:00:{order_id % 60:02d}', '{status}', 500)"
        )


def _orchestrator(project: Path, cache_dir: Path, **cache: Any) -> PrefectDbtOrchestrator:
    config = CacheConfig(
        data_aware=True,
        result_storage=cache_dir / "results",
        key_storage=cache_dir / "keys",
        **cache,
    )
    return PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
        execution_mode="per_node",
        concurrency=4,
        cache=config,
    )


def _built(wh: Warehouse) -> Warehouse:
    # The sources read seed tables: load them first, so the first full build's fingerprints
    # see data (a source missing at fingerprint time counts as changed on the next run).
    seeds, _ = wh.build(select="resource_type:seed")
    results, _ = wh.build()
    assert cached(results) == set(seeds)  # unchanged CSVs
    assert ran(results) == set(results) - set(seeds)
    assert wh.rows(f"select count(*) from {wh.t('orders')}") == [(7,)]
    return wh


@pytest.fixture(scope="module")
def duckdb_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    base = tmp_path_factory.mktemp("data-aware-duckdb")
    project = copy_shop_project(base)
    path = str(project / "shop.duckdb")

    def execute(sql: str) -> None:
        # The executor's worker closes the file after every invocation, so we can write.
        with duckdb.connect(path) as con:
            con.execute(sql)

    def rows(sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(path, read_only=True) as con:
            return con.execute(sql).fetchall()

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_DUCKDB_PATH", path)
        orch = _orchestrator(project, base / "cache", exclude_resource_types=frozenset())
        try:
            yield _built(Warehouse("duckdb", orch, "dev", "main", execute, rows))
        finally:
            orch.close()


@pytest.fixture(scope="module")
def pg_warehouse(tmp_path_factory: pytest.TempPathFactory, postgres_server) -> Iterator[Warehouse]:
    base = tmp_path_factory.mktemp("data-aware-pg")
    project = copy_shop_project(base)
    schema = f"da_{uuid.uuid4().hex[:8]}"

    def connect() -> Any:
        return psycopg2.connect(
            host=postgres_server.host,
            port=postgres_server.port,
            user=postgres_server.user,
            dbname=postgres_server.dbname,
        )

    def execute(sql: str) -> None:
        con = connect()
        con.autocommit = True
        try:
            with con.cursor() as cur:
                cur.execute(sql)
        finally:
            con.close()

    def rows(sql: str) -> list[tuple[Any, ...]]:
        con = connect()
        try:
            with con.cursor() as cur:
                cur.execute(sql)
                return cur.fetchall()
        finally:
            con.close()

    with pytest.MonkeyPatch.context() as mp:
        # Only PostgreSQL's variables: DBT_DUCKDB_PATH belongs to the DuckDB fixture.
        for name, value in postgres_server.env(schema).items():
            mp.setenv(name, value)
        orch = _orchestrator(project, base / "cache", exclude_resource_types=frozenset())
        try:
            yield _built(Warehouse("postgres", orch, "pg", schema, execute, rows))
        finally:
            orch.close()


@pytest.fixture(params=["duckdb", pytest.param("pg", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    wh = request.getfixturevalue(f"{request.param}_warehouse")
    settle(wh)
    return wh


def settle(wh: Warehouse) -> None:
    """Bring the cache up to date with the data as it is now; then nothing is left to build."""
    wh.build()
    plan = wh.orch.plan(target=wh.target)
    misses = {
        u: plan.cache_reasons.get(u) for u, p in plan.cache_predictions.items() if p == "miss"
    }
    assert misses == {}


def ran(results: dict[str, dict[str, Any]]) -> set[str]:
    return {uid for uid, r in results.items() if r["status"] == "success"}


def cached(results: dict[str, dict[str, Any]]) -> set[str]:
    return {uid for uid, r in results.items() if r["status"] == "cached"}


def unit_tests(manifest: Manifest, planned: set[str]) -> set[str]:
    return {u for u in planned if manifest.nodes[u].resource_type is ResourceType.UNIT_TEST}


def rebuild_after(wh: Warehouse, source: str, change: list[str]) -> dict[str, dict[str, Any]]:
    """Change ``source``'s data; check plan() and the run: exactly its descendants rebuild.

    Unit tests are never cached (they run before their model): they run either way.
    """
    manifest = wh.manifest()
    for sql in change:
        wh.execute(sql)
    plan = wh.orch.plan(target=wh.target)
    predictions = dict(plan.cache_predictions or {})
    planned = set(predictions)
    always = unit_tests(manifest, planned)
    expected = (descendants(manifest.child_map, source) & planned) - always
    assert {u for u, p in predictions.items() if p == "miss"} == expected
    news = f"source `{source.split('.', 2)[2]}` has new data since"
    assert all(any(news in r for r in plan.cache_reasons[u]) for u in expected)
    results, _ = wh.build()
    assert ran(results) == expected | always
    assert cached(results) == planned - expected - always
    # Each served node saved what its last real run took.
    for uid in cached(results):
        assert results[uid]["cache"]["execution_time"] == wh.last_real[uid]
    return results


def test_an_insert_rebuilds_the_sources_descendants(warehouse: Warehouse) -> None:
    wh, order = warehouse, next(_ids)
    assert wh.rows(f"select count(*) from {wh.t('orders')} where order_id = {order}") == [(0,)]
    rebuild_after(wh, ORDERS, [wh.new_order(order)])
    assert wh.rows(f"select status from {wh.t('orders')} where order_id = {order}") == [("placed",)]
    # The incremental model took in the new row.
    events = wh.rows(f"select count(*) from {wh.t('order_events')} where order_id = {order}")
    assert events == [(1,)]


def test_an_update_rebuilds_the_sources_descendants(warehouse: Warehouse) -> None:
    wh, order = warehouse, next(_ids)
    wh.execute(wh.new_order(order))
    settle(wh)
    update = f"update {wh.t('raw_orders')} set status = 'shipped' where id = {order}"
    rebuild_after(wh, ORDERS, [update])
    assert wh.rows(f"select status from {wh.t('orders')} where order_id = {order}") == [
        ("shipped",)
    ]


def test_a_delete_rebuilds_the_sources_descendants(warehouse: Warehouse) -> None:
    wh, order = warehouse, next(_ids)
    wh.execute(wh.new_order(order))
    settle(wh)
    assert wh.rows(f"select count(*) from {wh.t('orders')} where order_id = {order}") == [(1,)]
    rebuild_after(wh, ORDERS, [f"delete from {wh.t('raw_orders')} where id = {order}"])
    assert wh.rows(f"select count(*) from {wh.t('orders')} where order_id = {order}") == [(0,)]


def test_a_truncate_rebuilds_the_sources_descendants(warehouse: Warehouse) -> None:
    wh = warehouse
    payments = wh.t("raw_payments")
    wh.execute(f"delete from {payments}")
    wh.execute(f"insert into {payments} values {PAYMENT_ROWS}")
    settle(wh)
    assert wh.rows(f"select sum(paid_amount) > 0 from {wh.t('orders')}") == [(True,)]
    results = rebuild_after(wh, PAYMENTS, [f"truncate table {payments}"])
    assert wh.rows(f"select sum(paid_amount) from {wh.t('orders')}") == [(0,)]
    # The other source's own staging model was served, not rebuilt.
    assert results["model.shop.stg_orders"]["status"] == "cached"


def test_a_new_source_table_rebuilds_the_sources_descendants(warehouse: Warehouse) -> None:
    # A loader that builds the table anew and swaps it in (views on it go with it).
    wh, order = warehouse, next(_ids)
    old, new = wh.t("raw_orders"), wh.t("raw_orders_next")
    cascade = " cascade" if wh.name == "postgres" else ""
    swap = [
        f"create table {new} as select * from {old}",
        wh.new_order(order).replace(old, new),
        f"drop table {old}{cascade}",
        f"alter table {new} rename to raw_orders",
    ]
    rebuild_after(wh, ORDERS, swap)
    assert wh.rows(f"select count(*) from {wh.t('orders')} where order_id = {order}") == [(1,)]


def test_nothing_changed_serves_everything_cacheable(warehouse: Warehouse) -> None:
    wh = warehouse
    manifest = wh.manifest()
    results, flow_run_id = wh.build()
    always = unit_tests(manifest, set(results))
    assert ran(results) == always
    assert cached(results) == set(results) - always
    # The artifact says what was saved: the last real runs' dbt time of the served nodes.
    saved = sum(wh.last_real[u] for u in results if u in cached(results))  # in the run's order
    artifact = _summary_artifact(flow_run_id)
    sentence = f"{len(cached(results))} node(s) skipped as unchanged, saving {saved:.1f}s"
    assert sentence in artifact.data
    assert f"cached (saved {saved:.1f}s of dbt time)" in artifact.description


def test_the_default_exclusions_cache_incremental_models_but_run_tests(
    warehouse: Warehouse,
) -> None:
    wh = warehouse
    # The same cache, with CacheConfig(data_aware=True)'s defaults: tests, snapshots and unit
    # tests run; every model, the incremental one included, is served.
    storage = wh.orch.cache
    assert storage is not None
    defaults = CacheConfig(
        data_aware=True, result_storage=storage.result_storage, key_storage=storage.key_storage
    )
    orch, wh.orch = wh.orch, _with_cache(wh.orch, defaults)
    try:
        manifest = wh.manifest()
        results, _ = wh.build()
    finally:
        wh.orch = orch
    kinds = {u: manifest.nodes[u].resource_type for u in results}
    always = {ResourceType.TEST, ResourceType.SNAPSHOT, ResourceType.UNIT_TEST}
    assert ran(results) == {u for u, k in kinds.items() if k in always}
    assert cached(results) == {u for u, k in kinds.items() if k not in always}
    assert results["model.shop.order_events"]["status"] == "cached"


def test_full_refresh_serves_nothing(warehouse: Warehouse) -> None:
    wh = warehouse
    plan = wh.orch.plan(target=wh.target, full_refresh=True)
    assert "hit" not in set((plan.cache_predictions or {}).values())
    results, _ = wh.build(full_refresh=True)
    assert cached(results) == set()
    # The seeds were loaded again from their CSVs, and everything rebuilt from them.
    assert wh.rows(f"select count(*) from {wh.t('orders')}") == [(7,)]
    assert wh.rows(f"select count(*) from {wh.t('order_events')}") == [(7,)]


def _with_cache(orch: PrefectDbtOrchestrator, cache: CacheConfig) -> PrefectDbtOrchestrator:
    """``orch`` with another cache config, sharing its executor (and its dbt workers)."""
    return PrefectDbtOrchestrator(
        settings=orch.settings,
        executor=orch.executor,
        execution_mode="per_node",
        concurrency=4,
        cache=cache,
    )


def _summary_artifact(flow_run_id: str) -> Any:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(any_=[ARTIFACT_KEY]),
                flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
            )
        )
    (artifact,) = artifacts
    return artifact


def test_build_after_holds_a_model_back_until_it_is_due(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    # orders may be rebuilt once a day: new orders rebuild its staging view, not the table.
    base = tmp_path_factory.mktemp("data-aware-build-after")
    project = copy_shop_project(base)
    marts = project / "models/marts/marts.yml"
    owner = '        owner: "finance@example.com"\n'
    marts.write_text(
        marts.read_text().replace(
            owner, owner + "      freshness:\n        build_after: {count: 1, period: day}\n"
        )
    )
    path = str(project / "shop.duckdb")

    def execute(sql: str) -> None:
        with duckdb.connect(path) as con:
            con.execute(sql)

    def rows(sql: str) -> list[tuple[Any, ...]]:
        with duckdb.connect(path, read_only=True) as con:
            return con.execute(sql).fetchall()

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_DUCKDB_PATH", path)
        orch = _orchestrator(project, base / "cache", exclude_resource_types=frozenset())
        try:
            wh = _built(Warehouse("duckdb", orch, "dev", "main", execute, rows))
            order = next(_ids)
            wh.execute(wh.new_order(order))
            plan = orch.plan()
            assert plan.cache_predictions["model.shop.stg_orders"] == "miss"
            assert plan.cache_predictions["model.shop.orders"] == "hit"
            waits = plan.cache_reasons["model.shop.orders"][-1]
            assert waits.startswith("build_after 1 day: built ")
            assert "model.shop.orders [model, table] (cache: hit, deferred: " in str(plan)
            results, flow_run_id = wh.build()
        finally:
            orch.close()
    assert results["model.shop.stg_orders"]["status"] == "success"
    assert results["model.shop.orders"]["status"] == "cached"
    assert results["model.shop.orders"]["cache"]["deferred"] == waits
    # Held back: the table does not have the new order yet (its view does).
    assert rows(f"select count(*) from main.orders where order_id = {order}") == [(0,)]
    assert rows(f"select count(*) from main.stg_orders where order_id = {order}") == [(1,)]
    artifact = _summary_artifact(flow_run_id)
    assert "1 deferred by freshness.build_after" in artifact.data
    assert "### Deferred by freshness.build_after (1)" in artifact.data
