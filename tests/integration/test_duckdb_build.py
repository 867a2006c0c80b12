"""End to end on DuckDB with real dbt: both execution modes, statuses, data, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from integration.helpers import edit, query, statuses
from prefect import flow
from prefect_dbt_orchestrator import (
    DbtBuildFailed,
    ExecutionMode,
    PrefectDbtOrchestrator,
    TestStrategy,
)

EXECUTED = 34  # 3 seeds, 8 models (ephemeral excluded), 2 snapshots, 20 data tests, 1 unit test


def test_per_wave_builds_the_project_like_dbt_build(
    fresh_db: Path, settings, orchestrators
) -> None:
    orch = PrefectDbtOrchestrator(settings=settings)
    orchestrators.append(orch)
    results = orch.run_build()
    assert statuses(results)["success"] == EXECUTED
    assert "model.shop.int_order_payments" not in results  # ephemeral
    assert "model.shop.legacy_report" not in results  # excluded by the default YAML selector
    warn = results["test.shop.accepted_values_stg_payments_method__card__bank_transfer.199ef5ecff"]
    assert (warn["status"], warn["dbt_status"]) == ("success", "warn")
    assert results["unit_test.shop.orders.test_orders_paid_ratio"]["dbt_status"] == "pass"
    assert results["model.shop.orders"]["invocation"]["command"] == "build"
    orch.executor.close()
    assert query(fresh_db, "select count(*) from orders") == [(7,)]
    assert query(fresh_db, "select count(*) from customers_v2") == [(5,)]
    assert query(fresh_db, "select count(*) from orders_snapshot") == [(7,)]


def test_per_node_concurrency_4_in_a_flow(
    fresh_db: Path, settings, orchestrators, prefect_server
) -> None:
    orch = PrefectDbtOrchestrator(
        settings=settings, execution_mode=ExecutionMode.PER_NODE, concurrency=4
    )
    orchestrators.append(orch)

    @flow
    def build():
        return orch.run_build()

    results = build()
    assert statuses(results) == {"success": EXECUTED}
    assert results["seed.shop.raw_orders"]["invocation"]["command"] == "seed"
    assert results["snapshot.shop.orders_snapshot"]["invocation"]["command"] == "snapshot"
    assert (
        results["unit_test.shop.orders.test_orders_paid_ratio"]["invocation"]["command"] == "test"
    )
    orch.executor.close()
    assert query(fresh_db, "select count(*) from customers_v1") == [(5,)]


@pytest.mark.parametrize("mode", ["per_wave", "per_node"])
def test_a_failing_model_skips_its_descendants_only(
    fresh_db: Path, settings, orchestrators, mode, prefect_server
) -> None:
    orch = PrefectDbtOrchestrator(settings=settings, execution_mode=mode, raise_on_failure=False)
    orchestrators.append(orch)
    # A var makes `orders` fail at run time (a string compared with a number); its unit test
    # would fail first (and skip it), so unit tests are left out here.
    results = orch.run_build(exclude="test_type:unit", vars={"min_order_total": "'lots'"})
    orders = results["model.shop.orders"]
    assert orders["status"] == "error"
    assert orders["error"]["message"]
    for uid in (
        "model.shop.customers.v1",
        "model.shop.customers.v2",
        "test.shop.unique_orders_order_id.fed79b3a6e",
    ):
        assert results[uid]["status"] == "skipped"
        assert results[uid]["failed_upstream"] == ["model.shop.orders"]
    # Independent branches finished.
    assert results["snapshot.shop.orders_snapshot"]["status"] == "success"
    assert results["model.shop.order_events"]["status"] == "success"


def test_run_build_raises_build_failed_after_a_failure(
    fresh_db: Path, settings, orchestrators
) -> None:
    orch = PrefectDbtOrchestrator(settings=settings)
    orchestrators.append(orch)
    with pytest.raises(DbtBuildFailed) as info:
        orch.run_build(select="+customers", vars={"min_order_total": "'lots'"})
    # The unit test runs before `orders` (as in dbt build) and fails first.
    assert info.value.failed_node_ids == ["unit_test.shop.orders.test_orders_paid_ratio"]
    skipped = info.value.results["model.shop.orders"]
    assert skipped["failed_upstream"] == ["unit_test.shop.orders.test_orders_paid_ratio"]


def test_select_with_graph_operators_and_deferred_tests(
    fresh_db: Path, settings, orchestrators
) -> None:
    orch = PrefectDbtOrchestrator(settings=settings, test_strategy=TestStrategy.DEFERRED)
    orchestrators.append(orch)
    results = orch.run_build(select="+stg_customers +stg_orders")
    assert {u for u in results if not u.startswith("test.")} == {
        "seed.shop.raw_customers",
        "seed.shop.raw_orders",
        "model.shop.stg_customers",
        "model.shop.stg_orders",
    }
    # Eager indirect selection, as dbt: every test touching a selected node, incl. relationships.
    assert sum(u.startswith("test.") for u in results) == 8
    assert statuses(results) == {"success": 12}
    # Deferred: tests come after every model.
    order = list(results)
    assert max(order.index(u) for u in order if not u.startswith("test.")) < min(
        order.index(u) for u in order if u.startswith("test.")
    )


def test_state_modified_selects_only_what_changed(
    shop: Path, settings, orchestrators, tmp_path: Path
) -> None:
    orch = PrefectDbtOrchestrator(settings=settings)
    orchestrators.append(orch)
    prod = tmp_path / "prod_artifacts"
    prod.mkdir()
    manifest = Path(orch.executor.resolve_manifest())
    (prod / "manifest.json").write_text(manifest.read_text())
    edit(shop / "models/staging/stg_payments.sql", "order_id,", "order_id, 1 as changed,")
    try:
        state_orch = PrefectDbtOrchestrator(settings=settings, state_path=prod)
        orchestrators.append(state_orch)
        plan = state_orch.plan(select="state:modified")
        assert [n.unique_id for w in plan.waves for n in w.nodes if not n.is_test] == [
            "model.shop.stg_payments"
        ]
    finally:
        edit(shop / "models/staging/stg_payments.sql", "order_id, 1 as changed,", "order_id,")
