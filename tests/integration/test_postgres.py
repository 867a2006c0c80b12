"""End to end on a real PostgreSQL server: per-wave, and per-node with 4 concurrent workers."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import psycopg2
import pytest
from integration.helpers import statuses
from prefect import flow
from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

pytestmark = pytest.mark.postgres

EXECUTED = 34


def rows(postgres_server, sql: str) -> list[tuple]:
    con = psycopg2.connect(
        host=postgres_server.host, port=postgres_server.port, user="postgres", dbname="postgres"
    )
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()
    finally:
        con.close()


def schema_of(project: Path) -> str:
    import os

    return os.environ["DBT_PG_SCHEMA"]


@pytest.mark.parametrize("mode", ["per_wave", "per_node"])
def test_builds_the_project_on_postgres(
    pg_shop: Path, postgres_server, mode, prefect_server
) -> None:
    settings = PrefectDbtSettings(project_dir=pg_shop, profiles_dir=pg_shop)
    kw = {"concurrency": 4} if mode == "per_node" else {}
    orch = PrefectDbtOrchestrator(settings=settings, execution_mode=mode, **kw)
    try:

        @flow
        def build():
            return orch.run_build(target="pg", full_refresh=True)

        results = build()
    finally:
        orch.executor.close()
    assert statuses(results) == {"success": EXECUTED}
    schema = schema_of(pg_shop)
    assert rows(postgres_server, f"select count(*) from {schema}.orders") == [(7,)]
    assert rows(postgres_server, f"select count(*) from {schema}.customers_v2") == [(5,)]
    assert rows(postgres_server, f"select count(*) from {schema}.order_events") == [(7,)]
    if mode == "per_node":
        spans = sorted(
            (r["timing"]["started_at"], r["timing"]["completed_at"])
            for u, r in results.items()
            if u.startswith("test.")
        )
        # Some tests overlapped in time: real concurrency, not a serial queue.
        assert any(b[0] < a[1] for a, b in pairwise(spans))
