"""DbtCoreExecutor on PostgreSQL: contract, per-node concurrency, query cancellation, secrecy."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg2
import pytest
from dbt_graph import Command, ExecutionRequest, Manifest, NodeStatus
from exec_core.projects import PG_PASSWORD, by_name, eager_per_node, run_one
from executor_contract import ContractCase, check_executor_contract

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SEEDS = ("raw_customers", "raw_orders", "raw_payments")


def _connect():
    return psycopg2.connect(
        host=os.environ["DBT_PG_HOST"],
        port=int(os.environ["DBT_PG_PORT"]),
        user=os.environ["DBT_PG_USER"],
        dbname=os.environ["DBT_PG_DBNAME"],
    )


def _query(sql: str) -> list[tuple]:
    with _connect() as con, con.cursor() as cur:
        cur.execute(sql)
        return cur.fetchall()


def test_postgres_executor_passes_the_executor_contract(pg_executor, pg_manifest):
    m = pg_manifest
    check_executor_contract(
        ContractCase(
            executor=pg_executor,
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


def test_per_node_concurrency_four_builds_the_project(pg_executor, pg_manifest: Manifest):
    m = pg_manifest
    wanted = [
        n
        for n in m.nodes.values()
        if (n.is_executable or n.is_test)
        and n.name not in {"slow", "broken", "after_broken", "exec_core_always_fails"}
    ]
    results = eager_per_node(pg_executor, m, wanted, concurrency=4)
    statuses = {uid: r.results[uid].status for uid, r in results.items()}
    assert set(statuses) == {n.unique_id for n in wanted}
    assert not {u: s for u, s in statuses.items() if s.is_failure}
    schema = os.environ["DBT_PG_SCHEMA"]
    assert _query(f"select count(*) from {schema}.orders") == [(7,)]
    assert _query(f"select count(*) from {schema}.customers_v2") == [(5,)]
    assert _query(f"select sum(order_count) from {schema}.customers_v1") == [(7,)]


def test_a_timed_out_query_is_cancelled_and_the_executor_recovers(pg_executor, pg_manifest):
    slow = by_name(pg_manifest, "slow")
    begin = time.monotonic()
    result = run_one(pg_executor, slow, timeout_seconds=3)
    assert time.monotonic() - begin < 20
    node = result.results[slow.unique_id]
    assert node.status is NodeStatus.ERROR and "Timed out after 3s" in node.message
    deadline = time.monotonic() + 10
    while _query(
        "select count(*) from pg_stat_activity where query like '%pg_sleep(300)%' "
        "and pid <> pg_backend_pid()"
    ) != [(0,)]:
        assert time.monotonic() < deadline, "the pg_sleep query is still running"
        time.sleep(0.2)
    again = run_one(pg_executor, by_name(pg_manifest, "stg_customers"))
    assert again.results["model.shop.stg_customers"].status is NodeStatus.SUCCESS


def test_the_database_password_never_leaks(pg_executor, pg_manifest, pg_project: Path):
    result = pg_executor.execute(
        ExecutionRequest(
            command=Command.BUILD,
            nodes=(by_name(pg_manifest, "raw_customers"), by_name(pg_manifest, "broken")),
        )
    )
    texts = [repr(pg_executor), repr(result), *result.invocation_args]
    texts += [line.message for r in result.results.values() for line in r.logs]
    assert not [t for t in texts if PG_PASSWORD in t]
    for path in (pg_project / "target").rglob("*"):
        if path.is_file() and path.suffix in {".json", ".msgpack", ".pickle"}:
            assert PG_PASSWORD.encode() not in path.read_bytes(), path
