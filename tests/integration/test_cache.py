"""Caching end to end: real dbt on DuckDB, Prefect result storage, plan() agreeing with runs."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from integration.helpers import edit, statuses
from prefect import flow
from prefect_dbt_orchestrator import CacheConfig, ExecutionMode, PrefectDbtOrchestrator

pytestmark = pytest.mark.usefixtures("prefect_server")

EXCLUDED = {
    "model.shop.order_events",  # incremental
    "snapshot.shop.orders_snapshot",
    "snapshot.shop.customers_snapshot",
}


@pytest.fixture(scope="module")
def cache_dirs(tmp_path_factory: pytest.TempPathFactory) -> CacheConfig:
    base = tmp_path_factory.mktemp("cache")
    return CacheConfig(result_storage=base / "results", key_storage=base / "keys")


def make(settings, cache: CacheConfig, orchestrators, **kw) -> PrefectDbtOrchestrator:
    orch = PrefectDbtOrchestrator(
        settings=settings, execution_mode=ExecutionMode.PER_NODE, concurrency=4, cache=cache, **kw
    )
    orchestrators.append(orch)
    return orch


def build(orch: PrefectDbtOrchestrator, **kw):
    @flow
    def dbt_build():
        return orch.run_build(**kw)

    return dbt_build()


def test_second_run_is_served_from_cache_as_plan_predicts(
    fresh_db: Path, settings, cache_dirs, orchestrators
) -> None:
    orch = make(settings, cache_dirs, orchestrators)
    first = build(orch)
    assert "cached" not in statuses(first)
    plan = orch.plan()
    predictions = plan.cache_predictions
    assert predictions is not None
    for uid in EXCLUDED:
        assert predictions[uid] == "excluded"
    assert all(predictions[u] == "excluded" for u in predictions if u.startswith("test."))
    hits = {u for u, p in predictions.items() if p == "hit"}
    assert "model.shop.customers.v2" in hits and "seed.shop.raw_orders" in hits
    second = build(orch)
    assert {u for u, r in second.items() if r["status"] == "cached"} == hits
    cached = second["model.shop.customers.v2"]
    # This run's timing, not the stored run's.
    assert (
        cached["timing"]["started_at"] > first["model.shop.customers.v2"]["timing"]["completed_at"]
    )
    for uid in EXCLUDED:
        assert second[uid]["status"] == "success"


def test_a_cache_hit_does_not_invoke_dbt(shop: Path, settings, cache_dirs, orchestrators) -> None:
    with duckdb.connect(str(shop / "shop.duckdb")) as con:
        con.execute("drop table customers_v2")
    orch = make(settings, cache_dirs, orchestrators, raise_on_failure=False)
    results = build(orch, select="customers")
    assert results["model.shop.customers.v2"]["status"] == "cached"
    # Its tests are never cached: they ran, and found the table gone.
    assert results["test.shop.unique_customers_v2_customer_id.bed577df77"]["status"] == "error"
    orch.executor.close()
    with duckdb.connect(str(shop / "shop.duckdb"), read_only=True) as con:
        rows = con.execute("select table_name from information_schema.tables").fetchall()
    tables = {r[0] for r in rows}
    assert "customers_v2" not in tables  # dbt never ran, so nothing re-created it


def test_vars_target_and_full_refresh_are_misses(settings, cache_dirs, orchestrators) -> None:
    orch = make(settings, cache_dirs, orchestrators)
    plan = orch.plan(vars={"min_order_total": 1})
    assert plan.cache_predictions["model.shop.stg_orders"] == "miss"
    assert "vars changed" in plan.cache_reasons["model.shop.stg_orders"]
    prod = orch.plan(target="prod")
    assert prod.cache_predictions["model.shop.stg_orders"] == "miss"
    refresh = orch.plan(full_refresh=True)
    assert "hit" not in set(refresh.cache_predictions.values())


def test_changed_sql_misses_for_the_node_and_its_descendants_only(
    shop: Path, settings, cache_dirs, orchestrators
) -> None:
    edit(shop / "models/staging/stg_payments.sql", "method,", "method, 1 as extra,")
    try:
        orch = make(settings, cache_dirs, orchestrators)
        plan = orch.plan(exclude="customers")
        p = plan.cache_predictions
        assert p["model.shop.stg_payments"] == "miss"
        assert plan.cache_reasons["model.shop.stg_payments"] == ("SQL changed",)
        assert p["model.shop.orders"] == "miss"
        assert p["model.shop.stg_customers"] == "hit"
        assert p["model.shop.stg_orders"] == "hit"
        results = build(orch, exclude="customers")
        assert results["model.shop.stg_payments"]["status"] == "success"
        assert results["model.shop.orders"]["status"] == "success"
        assert results["model.shop.stg_customers"]["status"] == "cached"
    finally:
        edit(shop / "models/staging/stg_payments.sql", "method, 1 as extra,", "method,")
