"""Source data fingerprints on real DuckDB and PostgreSQL: every way data can change changes the
fingerprint, and nothing else does."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import psycopg2
import pytest
from dbt_exec_core import DbtCoreExecutor
from dbt_graph import FingerprintConfigError, FingerprintMethod, SourceFingerprint
from exec_core.projects import make_project, settings_for

pytestmark = pytest.mark.slow

SOURCES_YML = """\
version: 2
sources:
  - name: fp
    schema: "{{ target.schema }}"
    tables:
      - name: items
      - name: dupes
      - name: events
        loaded_at_field: loaded_at
        config:
          meta:
            data_fingerprint: loaded_at
      - name: clicks
        config:
          meta:
            data_fingerprint: {method: max_column, column: id}
      - name: feed
        config:
          meta:
            data_fingerprint: none
      - name: ghost
  - name: bad
    schema: "{{ target.schema }}"
    tables:
      - name: typo
        config:
          meta:
            data_fingerprint: checksum
"""


def uid(name: str) -> str:
    return f"source.shop.fp.{name}"


@dataclass
class Warehouse:
    """One database with an executor over the shop project plus the ``fp`` sources."""

    name: str
    executor: DbtCoreExecutor
    execute: Callable[[str], None]
    schema: str

    def fingerprint(self, name: str) -> SourceFingerprint:
        found = self.executor.source_fingerprints([uid(name)])
        assert set(found) == {uid(name)}
        return found[uid(name)]

    def value(self, name: str) -> str:
        fp = self.fingerprint(name)
        assert fp.value is not None, fp.detail
        return fp.value

    def table(self, name: str, columns: str, rows: str | None = None) -> None:
        self.execute(f"drop table if exists {self.schema}.{name}")
        self.execute(f"create table {self.schema}.{name} ({columns})")
        if rows:
            self.execute(f"insert into {self.schema}.{name} values {rows}")


def _project(root: Path) -> Path:
    project = make_project(root, extra=False)
    (project / "models" / "fp_sources.yml").write_text(SOURCES_YML)
    return project


@pytest.fixture(scope="module")
def duckdb_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Warehouse]:
    project = _project(tmp_path_factory.mktemp("fp-duckdb"))
    path = str(project / "shop.duckdb")

    def execute(sql: str) -> None:
        # The executor's worker closes the file after every invocation, so we can write.
        with duckdb.connect(path) as con:
            con.execute(sql)

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DBT_DUCKDB_PATH", path)
        executor = DbtCoreExecutor(settings_for(project))
        try:
            yield Warehouse("duckdb", executor, execute, "main")
        finally:
            executor.close()


@pytest.fixture(scope="module")
def pg_warehouse(tmp_path_factory: pytest.TempPathFactory, postgres_server) -> Iterator[Warehouse]:
    project = _project(tmp_path_factory.mktemp("fp-pg"))
    schema = f"fp_{uuid.uuid4().hex[:8]}"

    def execute(sql: str) -> None:
        con = psycopg2.connect(
            host=postgres_server.host,
            port=postgres_server.port,
            user=postgres_server.user,
            dbname=postgres_server.dbname,
        )
        con.autocommit = True  # VACUUM refuses to run in a transaction
        try:
            with con.cursor() as cur:
                cur.execute(sql)
        finally:
            con.close()

    execute(f"create schema {schema}")
    with pytest.MonkeyPatch.context() as mp:
        # Only PostgreSQL's variables: DBT_DUCKDB_PATH belongs to the DuckDB fixture, which
        # can be alive at the same time.
        for name, value in postgres_server.env(schema).items():
            mp.setenv(name, value)
        executor = DbtCoreExecutor(settings_for(project), target="pg")
        try:
            yield Warehouse("postgres", executor, execute, schema)
        finally:
            executor.close()


@pytest.fixture(params=["duckdb", pytest.param("pg", marks=pytest.mark.postgres)])
def warehouse(request: pytest.FixtureRequest) -> Warehouse:
    return request.getfixturevalue(f"{request.param}_warehouse")


ITEMS = "id integer, name varchar(20), price numeric(10, 2)"
ITEM_ROWS = "(1, 'pen', 1.50), (2, 'ink', 7.25), (3, null, 0.00)"

#: Each change to ``items`` (holding ITEM_ROWS), as SQL with ``{t}`` for the table.
CHANGES = {
    "insert": ["insert into {t} values (4, 'cap', 2.00)"],
    "update": ["update {t} set price = 1.51 where id = 1"],
    "update_to_null": ["update {t} set name = null where id = 2"],
    "swap_values_between_rows": [
        "update {t} set name = case id when 1 then 'ink' when 2 then 'pen' else name end"
    ],
    "delete": ["delete from {t} where id = 3"],
    "truncate": ["truncate table {t}"],
    "delete_and_reinsert_other": [
        "delete from {t} where id = 3",
        "insert into {t} values (3, null, 0.01)",
    ],
    "replace_table_other_data": [
        "drop table {t}",
        f"create table {{t}} ({ITEMS})",
        "insert into {t} values (1, 'pen', 1.50), (2, 'ink', 7.25)",
    ],
    "replace_table_other_type": [
        "drop table {t}",
        "create table {t} (id bigint, name varchar(20), price numeric(10, 2))",
        f"insert into {{t}} values {ITEM_ROWS}",
    ],
    "rename_column": ["alter table {t} rename column name to title"],
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_every_change_to_the_data_changes_the_content_fingerprint(
    warehouse: Warehouse, change: str
) -> None:
    warehouse.table("items", ITEMS, ITEM_ROWS)
    before = warehouse.fingerprint("items")
    assert before.method is FingerprintMethod.CONTENT
    assert before.detail == "3 rows"
    for sql in CHANGES[change]:
        warehouse.execute(sql.format(t=f"{warehouse.schema}.items"))
    assert warehouse.value("items") != before.value


def test_the_content_fingerprint_is_stable_while_nothing_changes(warehouse: Warehouse) -> None:
    warehouse.table("items", ITEMS, ITEM_ROWS)
    first = warehouse.fingerprint("items")
    maintenance = (
        ["vacuum full analyze {t}", "analyze {t}"]
        if warehouse.name == "postgres"
        else ["checkpoint", "vacuum {t}"]
    )
    for sql in maintenance:
        warehouse.execute(sql.format(t=f"{warehouse.schema}.items"))
    again = warehouse.fingerprint("items")
    assert again.value == first.value
    assert again.observed_at > first.observed_at


def test_a_table_recreated_with_the_same_rows_and_types_keeps_its_fingerprint(
    warehouse: Warehouse,
) -> None:
    # Content-addressed by design: a loader that rewrites a table with the same data did not
    # change anything a model can read.
    warehouse.table("items", ITEMS, ITEM_ROWS)
    before = warehouse.value("items")
    warehouse.table("items", ITEMS, "(3, null, 0.00), (2, 'ink', 7.25), (1, 'pen', 1.50)")
    assert warehouse.value("items") == before


def test_duplicate_rows_are_counted(warehouse: Warehouse) -> None:
    # An XOR of row hashes would cancel pairs: {1, 1, 2, 2} -> {3, 3, 2, 2} keeps XOR = 0.
    warehouse.table("dupes", "x integer", "(1), (1), (2), (2)")
    before = warehouse.value("dupes")
    warehouse.execute(f"update {warehouse.schema}.dupes set x = 3 where x = 1")
    assert warehouse.value("dupes") != before


def test_a_missing_table_has_no_fingerprint_until_it_appears(warehouse: Warehouse) -> None:
    warehouse.execute(f"drop table if exists {warehouse.schema}.ghost")
    missing = warehouse.fingerprint("ghost")
    assert missing.value is None
    assert "ghost" in (missing.detail or "")
    warehouse.table("ghost", "id integer")
    appeared = warehouse.fingerprint("ghost")
    assert appeared.value is not None and appeared.detail == "0 rows"


def test_one_broken_source_does_not_cost_the_others_their_fingerprint(
    warehouse: Warehouse,
) -> None:
    warehouse.execute(f"drop table if exists {warehouse.schema}.ghost")
    warehouse.table("items", ITEMS, ITEM_ROWS)
    warehouse.table("dupes", "x integer", "(1)")
    found = warehouse.executor.source_fingerprints([uid("items"), uid("ghost"), uid("dupes")])
    assert found[uid("items")].value == warehouse.value("items")
    assert found[uid("dupes")].value == warehouse.value("dupes")
    assert found[uid("ghost")].value is None


def test_all_sources_come_from_one_query(warehouse: Warehouse) -> None:
    warehouse.table("items", ITEMS, ITEM_ROWS)
    warehouse.table("dupes", "x integer", "(1)")
    both = warehouse.executor.source_fingerprints([uid("items"), uid("dupes")])
    assert both[uid("items")].observed_at == both[uid("dupes")].observed_at
    assert both[uid("items")].value == warehouse.value("items")
    assert both[uid("dupes")].value == warehouse.value("dupes")


def test_loaded_at_sees_inserts_and_deletes_but_not_updates_that_keep_it(
    warehouse: Warehouse,
) -> None:
    warehouse.table(
        "events",
        "id integer, kind varchar(10), loaded_at timestamp",
        "(1, 'a', '2026-01-01 10:00:00'), (2, 'b', '2026-01-01 11:00:00')",
    )
    first = warehouse.fingerprint("events")
    assert first.method is FingerprintMethod.LOADED_AT
    assert first.detail == "2 rows, max(loaded_at) 2026-01-01 11:00:00"
    events = f"{warehouse.schema}.events"
    warehouse.execute(f"update {events} set kind = 'z' where id = 1")
    assert warehouse.value("events") == first.value  # the documented limit of this method
    warehouse.execute(f"insert into {events} values (3, 'c', '2026-01-01 12:00:00')")
    inserted = warehouse.value("events")
    assert inserted != first.value
    warehouse.execute(f"delete from {events} where id = 1")
    assert warehouse.value("events") != inserted


def test_max_column_follows_the_named_column_and_the_count(warehouse: Warehouse) -> None:
    warehouse.table("clicks", "id integer", "(1), (2)")
    first = warehouse.fingerprint("clicks")
    assert (first.method, first.detail) == (FingerprintMethod.MAX_COLUMN, "2 rows, max(id) 2")
    warehouse.execute(f"insert into {warehouse.schema}.clicks values (3)")
    assert warehouse.value("clicks") != first.value


def test_a_source_that_opts_out_never_has_a_fingerprint(warehouse: Warehouse) -> None:
    fp = warehouse.fingerprint("feed")  # no table needed: nothing is queried
    assert (fp.value, fp.method) == (None, FingerprintMethod.NONE)


def test_an_unknown_method_is_a_clear_error(warehouse: Warehouse) -> None:
    with pytest.raises(FingerprintConfigError, match="unknown method 'checksum'"):
        warehouse.executor.source_fingerprints(["source.shop.bad.typo"])


def test_a_node_that_is_not_a_source_is_refused(warehouse: Warehouse) -> None:
    with pytest.raises(KeyError, match="not a source"):
        warehouse.executor.source_fingerprints(["model.shop.stg_orders"])


def test_fingerprints_and_dbt_runs_share_a_worker_without_stepping_on_each_other(
    warehouse: Warehouse,
) -> None:
    # The workers keep one dbt graph per manifest; the query's inline node must neither be
    # missing from the graph of a query after a build (it would return no row) nor stay in the
    # graph of a run after a query (dbt's test selection would look it up and fail).
    from dbt_graph import Command, ExecutionRequest, load_manifest

    executor = warehouse.executor
    manifest = load_manifest(executor.resolve_manifest())
    seed = manifest.nodes["seed.shop.raw_customers"]
    unit = manifest.nodes["unit_test.shop.orders.test_orders_paid_ratio"]
    warehouse.table("items", ITEMS, ITEM_ROWS)
    for _ in range(2):
        seeded = executor.execute(ExecutionRequest(command=Command.SEED, nodes=(seed,)))
        assert seeded.results[seed.unique_id].status.value == "success"
        assert warehouse.fingerprint("items").detail == "3 rows"
        tested = executor.execute(ExecutionRequest(command=Command.TEST, nodes=(unit,)))
        # The unit test's model was never built here: dbt's own error, not a lookup failure.
        message = tested.results[unit.unique_id].message or ""
        assert "inline_query" not in message and "did not report" not in message, message
