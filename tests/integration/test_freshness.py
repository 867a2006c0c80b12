"""only_fresh_sources with real `dbt source freshness` on DuckDB."""

from __future__ import annotations

from pathlib import Path

from integration.helpers import edit
from prefect_dbt_orchestrator import PrefectDbtOrchestrator

STALE = "stale source: source.shop.shop_app.orders"


def test_nodes_fed_by_a_stale_source_are_skipped_with_the_reason(
    fresh_db: Path, settings, orchestrators
) -> None:
    orch = PrefectDbtOrchestrator(settings=settings)
    orchestrators.append(orch)
    orch.run_build(select="raw_orders raw_payments")  # load the tables the sources read
    # The seeded orders are from 2024: a one-day error threshold makes the source stale.
    edit(
        fresh_db / "models/staging/sources.yml",
        "error_after: {count: 36500, period: day}",
        "error_after: {count: 1, period: day}",
    )
    try:
        plan = orch.plan(select="stg_orders+ stg_payments", only_fresh_sources=True)
        assert plan.skipped_nodes["model.shop.stg_orders"]["reason"] == STALE
        assert plan.skipped_nodes["model.shop.orders"]["reason"] == STALE
        planned = {n.unique_id for w in plan.waves for n in w.nodes}
        assert "model.shop.stg_payments" in planned
        assert "model.shop.stg_orders" not in planned
        assert not any(u.startswith("test.shop.unique_stg_orders") for u in planned)

        results = orch.run_build(select="stg_orders+ stg_payments", only_fresh_sources=True)
        assert results["model.shop.stg_orders"] == {"status": "skipped", "reason": STALE}
        assert results["model.shop.stg_payments"]["status"] == "success"
        # Skips alone never fail the build.
        assert all(r["status"] != "error" for r in results.values())

        fresh = orch.plan(select="stg_payments", only_fresh_sources=True)
        assert fresh.skipped_nodes == {}
    finally:
        edit(
            fresh_db / "models/staging/sources.yml",
            "error_after: {count: 1, period: day}",
            "error_after: {count: 36500, period: day}",
        )
