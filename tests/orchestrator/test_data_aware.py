"""Data-aware caching through the orchestrator, with the fake executor's scripted fingerprints:
new data in one source reruns exactly its descendants, plan() says so and the run agrees, a
source that cannot be fingerprinted always reruns, build_after defers, and the saved dbt time
is reported."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from dbt_graph import FingerprintMethod, Manifest, SourceFingerprint, descendants
from dbt_graph.testing import FakeExecutor, ManifestBuilder
from prefect_dbt_orchestrator import CacheConfig, PrefectDbtOrchestrator, PrefectDbtSettings
from prefect_dbt_orchestrator._artifacts import summary_markdown
from prefect_dbt_orchestrator._outcomes import NodeOutcome
from prefect_dbt_orchestrator._savings import CacheSavings

pytestmark = pytest.mark.usefixtures("prefect_server")

ORDERS, PAYMENTS = "source.p.app.orders", "source.p.app.payments"
DAILY = {"freshness": {"build_after": {"count": 1, "period": "day"}}}


def fingerprint(uid: str, rows: int, at: datetime) -> SourceFingerprint:
    return SourceFingerprint(
        unique_id=uid,
        value=f"{rows}:checksum",
        method=FingerprintMethod.CONTENT,
        observed_at=at,
        detail=f"{rows} rows",
    )


def shop(tmp_path: Path, *, mart_config: dict[str, Any] | None = None) -> Manifest:
    """Two sources (one through an ephemeral model), an incremental model, a seed branch."""
    return (
        ManifestBuilder()
        .source("app", "orders")
        .source("app", "payments")
        .seed("countries")
        .model("stg_orders", depends_on=["app.orders"])
        .model("stg_payments", depends_on=["app.payments"], materialized="ephemeral")
        .model("events", depends_on=["stg_orders"], materialized="incremental")
        .model("payments", depends_on=["stg_payments"], materialized="table")
        .model(
            "mart",
            depends_on=["events", "payments"],
            materialized="table",
            config=mart_config or {},
        )
        .model("geo", depends_on=["countries"], materialized="table")
        .test("not_null_mart_id", depends_on=["mart"])
        .build_file(tmp_path / "target")
    )


@pytest.fixture
def settings(project: PrefectDbtSettings) -> PrefectDbtSettings:
    (project.project_dir / "seeds").mkdir()
    (project.project_dir / "seeds" / "countries.csv").write_text("id\n1\n")
    return project


def orchestrator(
    settings: PrefectDbtSettings, executor: Any, tmp_path: Path, **cache: Any
) -> PrefectDbtOrchestrator:
    config = CacheConfig(
        result_storage=tmp_path / "results",
        key_storage=tmp_path / "keys",
        **{"data_aware": True, "exclude_resource_types": frozenset(), **cache},
    )
    return PrefectDbtOrchestrator(
        settings=settings, executor=executor, execution_mode="per_node", cache=config
    )


def ran(results: dict[str, dict[str, Any]]) -> set[str]:
    return {uid for uid, r in results.items() if r["status"] == "success"}


def cached(results: dict[str, dict[str, Any]]) -> set[str]:
    return {uid for uid, r in results.items() if r["status"] == "cached"}


def predicted(orch: PrefectDbtOrchestrator, **kw: Any) -> dict[str, str]:
    plan = orch.plan(**kw)
    assert plan.cache_predictions is not None
    return dict(plan.cache_predictions)


def test_the_classic_default_still_excludes_incremental_models() -> None:
    assert CacheConfig().exclude_materializations == frozenset({"incremental"})
    assert CacheConfig(data_aware=True).exclude_materializations == frozenset()
    explicit = CacheConfig(data_aware=True, exclude_materializations=frozenset({"incremental"}))
    assert explicit.exclude_materializations == frozenset({"incremental"})
    # replace() keeps the resolved set unless told to resolve it again.
    assert replace(CacheConfig(), data_aware=True).exclude_materializations == {"incremental"}
    again = replace(CacheConfig(), data_aware=True, exclude_materializations=None)
    assert again.exclude_materializations == frozenset()


def test_new_data_in_one_source_reruns_exactly_its_descendants(settings, tmp_path) -> None:
    manifest = shop(tmp_path)
    at = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
    executor = FakeExecutor(
        manifest, fingerprints={ORDERS: fingerprint(ORDERS, 7, at), PAYMENTS: "3 rows"}
    )
    orch = orchestrator(settings, executor, tmp_path)
    first = orch.run_build()
    assert ran(first) == set(first)
    assert set(predicted(orch).values()) == {"hit"}
    assert cached(orch.run_build()) == set(first)

    executor.fingerprints[ORDERS] = fingerprint(ORDERS, 9, datetime.now(UTC))
    plan = orch.plan()
    expected = descendants(manifest.child_map, ORDERS) & set(first)
    assert expected == {"model.p.stg_orders", "model.p.events", "model.p.mart"} | {
        "test.p.not_null_mart_id"
    }
    misses = {u for u, p in (plan.cache_predictions or {}).items() if p == "miss"}
    assert misses == expected
    assert plan.cache_reasons["model.p.stg_orders"] == (
        "source `app.orders` has new data since 2026-03-01 08:30:00 UTC (7 rows -> 9 rows)",
    )
    assert "(cache: miss: source `app.orders` has new data" in str(plan)
    executor.requests.clear()
    third = orch.run_build()
    assert ran(third) == expected  # what plan() said
    assert cached(third) == set(first) - expected
    assert {n.unique_id for r in executor.requests for n in r.nodes} == expected


def test_an_incremental_model_with_no_new_input_is_served_only_in_data_aware_mode(
    settings, tmp_path
) -> None:
    executor = FakeExecutor(shop(tmp_path), fingerprints={ORDERS: "7", PAYMENTS: "3"})
    classic = orchestrator(settings, executor, tmp_path / "classic", data_aware=False)
    data_aware = orchestrator(settings, executor, tmp_path / "data")
    for orch in (classic, data_aware):
        orch.run_build()
    assert predicted(classic)["model.p.events"] == "excluded"
    assert classic.run_build()["model.p.events"]["status"] == "success"
    assert data_aware.run_build()["model.p.events"]["status"] == "cached"


class WithoutFingerprints:
    """An executor that cannot fingerprint (as the dbt Cloud executor)."""

    def __init__(self, inner: FakeExecutor) -> None:
        self.inner = inner

    def resolve_manifest(self, **kw: Any) -> Path:
        return self.inner.resolve_manifest(**kw)

    def execute(self, request: Any) -> Any:
        return self.inner.execute(request)

    def source_freshness(self, sources: Any, **kw: Any) -> Any:
        return self.inner.source_freshness(sources, **kw)

    def close(self) -> None:
        self.inner.close()


def test_without_fingerprints_everything_fed_by_a_source_reruns_and_says_why(
    settings, tmp_path
) -> None:
    orch = orchestrator(settings, WithoutFingerprints(FakeExecutor(shop(tmp_path))), tmp_path)
    first = orch.run_build()
    plan = orch.plan()
    predictions = plan.cache_predictions or {}
    assert {u for u, p in predictions.items() if p == "hit"} == {
        "seed.p.countries",
        "model.p.geo",
    }
    reasons = plan.cache_reasons["model.p.stg_orders"]
    assert reasons == (
        "source `app.orders` has no data fingerprint (WithoutFingerprints cannot fingerprint "
        "source data): counted as changed",
    )
    again = orch.run_build()
    assert cached(again) == {"seed.p.countries", "model.p.geo"}
    assert ran(again) == set(first) - cached(again)


def test_a_source_the_executor_cannot_read_reruns_only_its_own_descendants(
    settings, tmp_path
) -> None:
    # No scripted value for payments: as a missing table, it has no usable fingerprint.
    executor = FakeExecutor(shop(tmp_path), fingerprints={ORDERS: "7"})
    orch = orchestrator(settings, executor, tmp_path)
    orch.run_build()
    again = orch.run_build()
    assert ran(again) == {"model.p.payments", "model.p.mart", "test.p.not_null_mart_id"}
    assert "model.p.stg_orders" in cached(again) and "model.p.events" in cached(again)


def test_full_refresh_serves_nothing(settings, tmp_path) -> None:
    executor = FakeExecutor(shop(tmp_path), fingerprints={ORDERS: "7", PAYMENTS: "3"})
    orch = orchestrator(settings, executor, tmp_path)
    orch.run_build()
    assert "hit" not in set(predicted(orch, full_refresh=True).values())
    assert cached(orch.run_build(full_refresh=True)) == set()


def test_fingerprints_are_taken_once_per_call_for_the_selection_only(settings, tmp_path) -> None:
    executor = FakeExecutor(shop(tmp_path), fingerprints={ORDERS: "7", PAYMENTS: "3"})
    orch = orchestrator(settings, executor, tmp_path)
    orch.run_build(select="geo")
    assert executor.fingerprint_calls == []  # nothing selected reads a source
    orch.run_build(select="events")
    orch.plan(select="+mart")
    assert executor.fingerprint_calls == [(ORDERS,), (ORDERS, PAYMENTS)]


def test_build_after_defers_a_rebuild_and_plan_and_run_agree(settings, tmp_path) -> None:
    executor = FakeExecutor(
        shop(tmp_path, mart_config=DAILY), fingerprints={ORDERS: "7", PAYMENTS: "3"}
    )
    orch = orchestrator(settings, executor, tmp_path)
    orch.run_build()
    executor.fingerprints[ORDERS] = "8"
    plan = orch.plan()
    predictions = plan.cache_predictions or {}
    assert predictions["model.p.events"] == "miss"
    assert predictions["model.p.mart"] == "hit"
    why = plan.cache_reasons["model.p.mart"]
    assert why[0].startswith("source `app.orders` has new data since ")
    assert why[-1].startswith("build_after 1 day: built ")
    assert "model.p.mart [model, table] (cache: hit, deferred: source `app.orders`" in str(plan)
    assert "Cache: 4 hit(s) (1 deferred), 3 miss(es), 0 excluded" in str(plan)
    results = orch.run_build()
    assert {u for u, r in results.items() if r["status"] == "cached"} == {
        u for u, p in predictions.items() if p == "hit"
    }
    hit = results["model.p.mart"]["cache"]
    assert hit["deferred"].startswith("build_after 1 day: built ")
    outcomes = {u: NodeOutcome.from_dict(r) for u, r in results.items()}
    savings = CacheSavings.of(outcomes)
    assert (savings.deferred, savings.unchanged) == (1, len(outcomes) - 4)
    markdown = summary_markdown(outcomes)
    assert "### Deferred by freshness.build_after (1)" in markdown
    assert "- `mart` (model): build_after 1 day: built " in markdown


def test_a_hit_reports_the_dbt_time_its_last_run_took(settings, tmp_path) -> None:
    manifest = shop(tmp_path)
    executor = FakeExecutor(
        manifest, fingerprints={ORDERS: "7", PAYMENTS: "3"}, delays={"model.p.mart": 0.2}
    )
    orch = orchestrator(settings, executor, tmp_path)
    first = orch.run_build()
    again = orch.run_build()
    took = {u: r["timing"]["execution_time"] for u, r in first.items()}
    assert took["model.p.mart"] >= 0.2
    saved = {u: r["cache"]["execution_time"] for u, r in again.items()}
    assert saved == took
    outcomes = {u: NodeOutcome.from_dict(r) for u, r in again.items()}
    savings = CacheSavings.of(outcomes)
    assert savings.unchanged == len(first) and savings.seconds == pytest.approx(sum(took.values()))
    line = f"{len(first)} node(s) skipped as unchanged, saving {sum(took.values()):.1f}s"
    assert line in summary_markdown(outcomes, manifest)
