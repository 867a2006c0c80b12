"""run_results.json from a real build is valid dbt, and dbt's own tools act on it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jsonschema
import pytest
from conftest import dbt_cli
from integration.helpers import edit, query
from prefect_dbt_orchestrator import PrefectDbtOrchestrator

BROKEN_MODEL = "model.shop.order_events"
FAILING_TEST = "test.shop.assert_customers_v2_is_empty"
WARN_TEST = "test.shop.accepted_values_stg_payments_method__card__bank_transfer.199ef5ecff"


def ls_result(project: Path, statuses: list[str], state: Path) -> set[str]:
    """``dbt ls --select result:<status>... --state <dir>``: the unique_ids dbt selects.

    Without indirect selection, so a failed model does not bring its tests along.
    """
    out = dbt_cli(
        "ls",
        "--select",
        *(f"result:{s}" for s in statuses),
        "--state",
        str(state),
        "--resource-type",
        "all",
        "--indirect-selection",
        "empty",
        "--output",
        "json",
        "--output-keys",
        "unique_id",
        "--quiet",
        project=project,
    )
    return {json.loads(line)["unique_id"] for line in out.splitlines() if line.startswith("{")}


@pytest.fixture
def broken_shop(fresh_db: Path) -> Path:
    """The shop with one model that errors and one singular test that fails."""
    model = fresh_db / "models/marts/order_events.sql"
    original = model.read_text()
    model.write_text("select * from a_table_that_does_not_exist")
    test = fresh_db / "tests/assert_customers_v2_is_empty.sql"
    test.write_text("select * from {{ ref('customers', v=2) }}\n")
    yield fresh_db
    model.write_text(original)
    test.unlink(missing_ok=True)


def test_run_results_is_dbts_schema_and_feeds_result_selectors_and_retry(
    broken_shop: Path, settings, orchestrators, tmp_path: Path
) -> None:
    from dbt.artifacts.schemas.run import RunResultsArtifact

    orch = PrefectDbtOrchestrator(settings=settings, write_run_results=True, raise_on_failure=False)
    orchestrators.append(orch)
    results = orch.run_build()
    orch.executor.close()
    assert results[BROKEN_MODEL]["status"] == "error"
    (skipped_test,) = (u for u in results if u.startswith("test.shop.not_null_order_events_"))

    path = broken_shop / "target" / "run_results.json"
    document = json.loads(path.read_text())
    jsonschema.validate(document, RunResultsArtifact.json_schema())
    RunResultsArtifact.read_and_check_versions(str(path))
    rows = {r["unique_id"]: r for r in document["results"]}
    assert set(rows) == set(results)
    assert rows[BROKEN_MODEL]["status"] == "error"
    assert "a_table_that_does_not_exist" in rows[BROKEN_MODEL]["message"]
    assert (rows[FAILING_TEST]["status"], rows[FAILING_TEST]["failures"]) == ("fail", 5)
    assert rows[WARN_TEST]["status"] == "warn"
    assert rows[skipped_test]["status"] == "skipped"
    assert rows["unit_test.shop.orders.test_orders_paid_ratio"]["status"] == "pass"
    orders = rows["model.shop.orders"]
    assert orders["status"] == "success"
    assert orders["timing"] and orders["execution_time"] > 0
    assert orders["adapter_response"]  # e.g. {"_message": "OK", "rows_affected": ...}
    assert orders["relation_name"]

    state = tmp_path / "state"
    shutil.copytree(broken_shop / "target", state)
    assert ls_result(broken_shop, ["error", "fail"], state) == {BROKEN_MODEL, FAILING_TEST}

    # Fix the model; `dbt retry` reruns exactly what failed or was skipped.
    edit(
        broken_shop / "models/marts/order_events.sql",
        "select * from a_table_that_does_not_exist",
        "select order_id, status, ordered_at from {{ ref('stg_orders') }}",
    )
    dbt_cli("retry", project=broken_shop)
    retried = json.loads(path.read_text())
    assert {r["unique_id"]: r["status"] for r in retried["results"]} == {
        BROKEN_MODEL: "success",
        skipped_test: "pass",
        FAILING_TEST: "fail",
    }
    assert query(broken_shop, "select count(*) from order_events") == [(7,)]
