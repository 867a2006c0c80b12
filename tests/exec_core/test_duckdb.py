"""DbtCoreExecutor on DuckDB: contract, commands, statuses, concurrency, timeouts."""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import duckdb
import pytest
from dbt_exec_core import DbtCoreExecutor
from dbt_graph import (
    Command,
    ExecutionRequest,
    FreshnessStatus,
    Manifest,
    Node,
    NodeStatus,
    ResourceType,
)
from exec_core.projects import by_name, eager_per_node, run_one, run_pickled, settings_for
from executor_contract import ContractCase, check_executor_contract

pytestmark = pytest.mark.slow

SEEDS = ("raw_customers", "raw_orders", "raw_payments")


def _build(executor: DbtCoreExecutor, manifest: Manifest, *names: str) -> None:
    nodes = tuple(by_name(manifest, n) for n in names)
    result = executor.execute(ExecutionRequest(command=Command.BUILD, nodes=nodes))
    assert result.success, {u: (r.status, r.message) for u, r in result.results.items()}


def _query(project: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(project / "shop.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_duckdb_executor_passes_the_executor_contract(duckdb_executor, duckdb_manifest):
    m = duckdb_manifest
    check_executor_contract(
        ContractCase(
            executor=duckdb_executor,
            manifest=m,
            passing=by_name(m, "stg_customers"),
            failing=by_name(m, "broken"),
            warn_test=by_name(
                m, "accepted_values_stg_payments_method__card__bank_transfer.199ef5ecff"
            ),
            skipped_downstream=by_name(m, "after_broken"),
            prepare=tuple(by_name(m, n) for n in (*SEEDS, "stg_payments")),
            source_ids=("source.shop.shop_app.orders",),
        )
    )


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("raw_orders", NodeStatus.SUCCESS),
        ("stg_orders", NodeStatus.SUCCESS),
        ("not_null_stg_orders_order_id.81cfe2fe64", NodeStatus.PASS),
        ("orders_snapshot", NodeStatus.SUCCESS),
        ("orders", NodeStatus.SUCCESS),
        ("unit_test.shop.orders.test_orders_paid_ratio", NodeStatus.PASS),
    ],
)
def test_each_command_runs_exactly_its_node(duckdb_executor, duckdb_manifest, name, status):
    _build(duckdb_executor, duckdb_manifest, *SEEDS, "stg_orders", "stg_payments")
    node = by_name(duckdb_manifest, name)
    result = run_one(duckdb_executor, node)
    assert list(result.results) == [node.unique_id]
    got = result.results[node.unique_id]
    assert got.status is status, got.message
    # Alone, a node runs in a streaming session (one long dbt build); else with its command.
    assert result.invocation_args[0] in ("build", Command.for_node(node).value)
    assert "--indirect-selection" in result.invocation_args


def test_a_unit_test_in_a_build_without_its_model_still_runs(duckdb_executor, duckdb_manifest):
    # dbt build runs a unit test only together with its model; the executor runs the unit test
    # with dbt test beside the build instead of reporting it as not run.
    _build(duckdb_executor, duckdb_manifest, *SEEDS)
    unit = by_name(duckdb_manifest, "unit_test.shop.orders.test_orders_paid_ratio")
    days = by_name(duckdb_manifest, "util_days")
    result = duckdb_executor.execute(ExecutionRequest(command=Command.BUILD, nodes=(unit, days)))
    assert result.results[unit.unique_id].status is NodeStatus.PASS
    assert result.results[days.unique_id].status is NodeStatus.SUCCESS
    assert "&&" in result.invocation_args


def test_a_yaml_snapshot_runs_without_its_siblings(
    duckdb_executor, duckdb_manifest, duckdb_project
):
    _build(duckdb_executor, duckdb_manifest, *SEEDS, "stg_orders", "stg_customers")
    _query_names = "select table_name from information_schema.tables where table_schema = 'main'"
    before = {name for (name,) in _query(duckdb_project, _query_names)}
    result = run_one(duckdb_executor, by_name(duckdb_manifest, "customers_snapshot"))
    assert result.success
    after = {name for (name,) in _query(duckdb_project, _query_names)}
    assert after - before <= {"customers_snapshot"}
    assert ("orders_snapshot" in after) == ("orders_snapshot" in before)


def test_failing_model_is_an_error_with_dbts_message(duckdb_executor, duckdb_manifest):
    _build(duckdb_executor, duckdb_manifest, "raw_customers")
    result = run_one(duckdb_executor, by_name(duckdb_manifest, "broken"))
    node = result.results["model.shop.broken"]
    assert node.status is NodeStatus.ERROR
    assert "no_such_column" in node.message
    assert node.error is not None and node.error.type == "DbtRuntimeError"
    assert node.started_at is not None and node.compiled_code is not None
    assert not result.success


def test_failing_test_is_fail_with_its_row_count(duckdb_executor, duckdb_manifest):
    result = run_one(duckdb_executor, by_name(duckdb_manifest, "exec_core_always_fails"))
    node = result.results["test.shop.exec_core_always_fails"]
    assert node.status is NodeStatus.FAIL
    assert node.failures == 1
    assert node.error is not None and node.error.type == "TestFailure"


def test_warn_test_is_warn_and_downstream_of_failure_is_skipped(duckdb_executor, duckdb_manifest):
    _build(duckdb_executor, duckdb_manifest, *SEEDS, "stg_payments")
    nodes = tuple(
        by_name(duckdb_manifest, n)
        for n in (
            "broken",
            "after_broken",
            "accepted_values_stg_payments_method__card__bank_transfer.199ef5ecff",
        )
    )
    result = duckdb_executor.execute(ExecutionRequest(command=Command.BUILD, nodes=nodes))
    statuses = {uid.split(".")[2]: r.status for uid, r in result.results.items()}
    assert statuses == {
        "broken": NodeStatus.ERROR,
        "after_broken": NodeStatus.SKIPPED,
        "accepted_values_stg_payments_method__card__bank_transfer": NodeStatus.WARN,
    }


def test_results_carry_timing_logs_compiled_code_and_relation(duckdb_executor, duckdb_manifest):
    _build(duckdb_executor, duckdb_manifest, *SEEDS)
    result = run_one(duckdb_executor, by_name(duckdb_manifest, "stg_customers"))
    node = result.results["model.shop.stg_customers"]
    assert node.started_at.tzinfo is not None and node.started_at <= node.completed_at
    assert node.execution_time > 0
    assert node.relation_name == '"shop"."main"."stg_customers"'
    assert "raw_customers" in node.compiled_code
    assert any("stg_customers" in line.message for line in node.logs)
    assert all(line.node_id == "model.shop.stg_customers" for line in node.logs)


def test_an_ephemeral_parent_is_inlined_on_every_run(duckdb_executor, duckdb_manifest):
    # dbt marks nodes as "CTEs injected" in the manifest object it is given; the worker resets
    # that state, or the second run would reference the CTE without defining it.
    _build(duckdb_executor, duckdb_manifest, *SEEDS, "stg_orders", "stg_payments")
    orders = by_name(duckdb_manifest, "orders")
    for _ in range(2):
        result = run_one(duckdb_executor, orders)
        assert result.results["model.shop.orders"].status is NodeStatus.SUCCESS, result.results


def test_full_refresh_is_passed_only_where_dbt_accepts_it(duckdb_executor, duckdb_manifest):
    _build(duckdb_executor, duckdb_manifest, *SEEDS, "stg_orders")
    events = by_name(duckdb_manifest, "order_events")
    run = run_one(duckdb_executor, events, full_refresh=True)
    assert run.results[events.unique_id].status is NodeStatus.SUCCESS
    assert "--full-refresh" in run.invocation_args
    test = run_one(
        duckdb_executor,
        by_name(duckdb_manifest, "not_null_order_events_order_id.6617edd6ae"),
        full_refresh=True,
    )
    assert test.success and "--full-refresh" not in test.invocation_args


def test_a_node_missing_from_the_manifest_is_an_error_result(duckdb_executor, duckdb_manifest):
    ghost = Node(
        unique_id="model.shop.ghost",
        name="ghost",
        resource_type=ResourceType.MODEL,
        package_name="shop",
    )
    result = run_one(duckdb_executor, ghost)
    assert result.results["model.shop.ghost"].status is NodeStatus.ERROR


@pytest.fixture
def patient_executor(duckdb_project, duckdb_manifest):
    """A second executor on the same project that waits long enough to coalesce reliably."""
    executor = DbtCoreExecutor(settings_for(duckdb_project), coalesce_ms=500)
    yield executor
    executor.close()


def test_single_node_requests_share_a_session_without_skipping_each_other(
    duckdb_executor, duckdb_manifest, patient_executor
):
    _build(duckdb_executor, duckdb_manifest, *SEEDS)
    broken, days = by_name(duckdb_manifest, "broken"), by_name(duckdb_manifest, "util_days")
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda n: run_one(patient_executor, n), [broken, days])
    assert a.results[broken.unique_id].status is NodeStatus.ERROR
    assert b.results[days.unique_id].status is NodeStatus.SUCCESS
    assert a.invocation_args[0] == b.invocation_args[0] == "build"


def test_independent_multi_node_requests_are_coalesced(
    duckdb_executor, duckdb_manifest, patient_executor
):
    _build(duckdb_executor, duckdb_manifest, *SEEDS)
    first = tuple(by_name(duckdb_manifest, n) for n in ("broken", "raw_orders"))
    second = tuple(by_name(duckdb_manifest, n) for n in ("util_days", "stg_payments"))

    def run(nodes):
        return patient_executor.execute(ExecutionRequest(command=Command.BUILD, nodes=nodes))

    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(run, [first, second])
    assert a.invocation_args == b.invocation_args  # one dbt invocation answered both
    assert a.results["model.shop.broken"].status is NodeStatus.ERROR
    assert a.results["seed.shop.raw_orders"].status is NodeStatus.SUCCESS
    assert all(r.status is NodeStatus.SUCCESS for r in b.results.values())


def test_a_request_is_never_coalesced_with_its_own_ancestor(
    duckdb_executor, duckdb_manifest, patient_executor
):
    _build(duckdb_executor, duckdb_manifest, *SEEDS)
    broken, child = by_name(duckdb_manifest, "broken"), by_name(duckdb_manifest, "after_broken")
    with ThreadPoolExecutor(2) as pool:
        a, b = pool.map(lambda n: run_one(patient_executor, n), [broken, child])
    assert a.results[broken.unique_id].status is NodeStatus.ERROR
    # Asked for alone, the child runs (and fails on its own) rather than being skipped by dbt.
    assert b.results[child.unique_id].status is NodeStatus.ERROR
    assert a.invocation_args != b.invocation_args


def test_per_node_concurrency_four_builds_the_project(
    duckdb_executor, duckdb_manifest, duckdb_project
):
    m = duckdb_manifest
    wanted = [
        n
        for n in m.nodes.values()
        if (n.is_executable or n.is_test)
        and n.name not in {"slow", "broken", "after_broken", "exec_core_always_fails"}
    ]
    results = eager_per_node(duckdb_executor, m, wanted, concurrency=4)
    assert set(results) == {n.unique_id for n in wanted}
    statuses = {uid: r.results[uid].status for uid, r in results.items()}
    failing = {uid: s for uid, s in statuses.items() if s.is_failure}
    assert not failing, failing
    assert (
        statuses["test.shop.accepted_values_stg_payments_method__card__bank_transfer.199ef5ecff"]
        is NodeStatus.WARN
    )
    assert _query(duckdb_project, "select count(*) from main.orders") == [(7,)]
    assert _query(duckdb_project, "select count(*) from main.customers_v2") == [(5,)]


def test_source_freshness_reports_status_age_and_thresholds(duckdb_executor, duckdb_manifest):
    _build(duckdb_executor, duckdb_manifest, "raw_orders")
    report = duckdb_executor.source_freshness(
        ["source.shop.shop_app.orders", "source.shop.shop_app.payments"]
    )
    assert set(report) == {"source.shop.shop_app.orders"}  # payments has no freshness config
    orders = report["source.shop.shop_app.orders"]
    assert orders.status is FreshnessStatus.PASS
    assert orders.max_loaded_at is not None and orders.max_loaded_at.tzinfo is not None
    assert orders.age_seconds > 0
    assert orders.warn_after is not None and orders.warn_after.period == "day"
    assert orders.error_after is not None and orders.error_after.count == 36500


def test_a_timed_out_node_is_stopped_and_the_executor_recovers(
    duckdb_executor, duckdb_manifest, duckdb_project
):
    _build(duckdb_executor, duckdb_manifest, "raw_customers")
    slow = by_name(duckdb_manifest, "slow")
    begin = time.monotonic()
    result = run_one(duckdb_executor, slow, timeout_seconds=3)
    elapsed = time.monotonic() - begin
    node = result.results[slow.unique_id]
    assert node.status is NodeStatus.ERROR
    assert "Timed out after 3s" in node.message
    assert result.error is not None and result.error.type == "TimeoutError"
    assert elapsed < 20
    # The killed worker released the database file, and a fresh worker takes the next request.
    assert _query(duckdb_project, "select 1") == [(1,)]
    again = run_one(duckdb_executor, by_name(duckdb_manifest, "stg_customers"))
    assert again.results["model.shop.stg_customers"].status is NodeStatus.SUCCESS


def test_a_pickled_copy_runs_in_another_process_beside_this_one(duckdb_executor, duckdb_manifest):
    # Both processes write the same DuckDB file; the lock file next to it takes turns.
    _build(duckdb_executor, duckdb_manifest, *SEEDS)
    mine, theirs = by_name(duckdb_manifest, "stg_customers"), by_name(duckdb_manifest, "stg_orders")
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        future = pool.submit(run_pickled, pickle.dumps(duckdb_executor), theirs)
        runs = 0
        while not future.done() and runs < 200:
            assert run_one(duckdb_executor, mine).success
            runs += 1
        assert future.result(timeout=300) == "success"


def _sessions_opened(caplog: pytest.LogCaptureFixture) -> int:
    return sum("(new session)" in r.getMessage() for r in caplog.records)


def test_a_run_scope_keeps_one_session_across_a_chain_of_requests(
    duckdb_executor, duckdb_manifest, duckdb_project, caplog
):
    _build(duckdb_executor, duckdb_manifest, *SEEDS)
    names = ("stg_customers", "stg_orders", "stg_payments", "orders")
    chain = [by_name(duckdb_manifest, n) for n in names]
    caplog.set_level(logging.DEBUG, logger="dbt_exec_core")

    # Each request is sent only when the previous one was answered, as a per-node run does.
    for node in chain:
        assert run_one(duckdb_executor, node).success
    assert _sessions_opened(caplog) == len(chain)  # without a scope, each pays a dbt start-up

    caplog.clear()
    with duckdb_executor.run_scope():
        for node in chain:
            assert run_one(duckdb_executor, node).success
        # Answered, but the session lingers and still holds the database file.
        with pytest.raises(duckdb.Error):
            duckdb.connect(str(duckdb_project / "shop.duckdb")).close()
    assert _sessions_opened(caplog) == 1
    # Leaving the scope ended the session and closed the file.
    assert _query(duckdb_project, "select count(*) from main.orders") == [(7,)]


def test_other_work_inside_a_run_scope_ends_the_lingering_session(
    duckdb_executor, duckdb_manifest, duckdb_project
):
    _build(duckdb_executor, duckdb_manifest, *SEEDS)
    with duckdb_executor.run_scope(linger_seconds=60):
        assert run_one(duckdb_executor, by_name(duckdb_manifest, "stg_customers")).success
        # A multi-node request needs the DuckDB worker for an invocation of its own.
        _build(duckdb_executor, duckdb_manifest, "stg_orders", "stg_payments")
        report = duckdb_executor.source_freshness(["source.shop.shop_app.orders"])
        assert report["source.shop.shop_app.orders"].status is FreshnessStatus.PASS
        assert run_one(duckdb_executor, by_name(duckdb_manifest, "orders")).success
    assert _query(duckdb_project, "select count(*) from main.orders") == [(7,)]


def test_a_lingering_session_ends_by_itself(duckdb_executor, duckdb_manifest, duckdb_project):
    _build(duckdb_executor, duckdb_manifest, *SEEDS)
    with duckdb_executor.run_scope(linger_seconds=0.5):
        assert run_one(duckdb_executor, by_name(duckdb_manifest, "stg_customers")).success
        deadline = time.monotonic() + 30
        while True:  # the file frees up once the linger has passed, scope or not
            try:
                assert _query(duckdb_project, "select 1") == [(1,)]
                break
            except duckdb.Error:
                assert time.monotonic() < deadline, "the session never ended"
                time.sleep(0.2)
        assert run_one(duckdb_executor, by_name(duckdb_manifest, "stg_orders")).success
