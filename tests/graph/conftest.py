"""Fixtures for the selection tests that compare with real dbt.

* ``run_dbt_ls``: runs many ``dbt ls`` invocations through dbt's ``dbtRunner`` in two worker
  processes that parse the project once each: a fraction of a second per invocation instead of
  5-10 s. Run as a script, this module is that worker (it also runs the fixture's dbt commands
  one after the other in one process).
* ``parity_project``: the shop project extended with a semantic layer and a pre-release model
  version, built on DuckDB with one failing test (for ``result:``); ``parity_state``: a state
  directory holding the manifest of an older version of the project, the ``run_results.json``
  of the build and the ``sources.json`` of a freshness check on older data (for ``state:`` and
  ``source_status:``).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

SHOP = Path(__file__).parents[1] / "fixtures" / "shop"
_ALL_SOURCES = ("--select", "source:*")

#: What one ``dbt ls`` printed (its unique_ids), or the error message that stopped it.
LsOutcome = frozenset[str] | str
LsRunner = Callable[..., list[LsOutcome]]


def copy_shop(dest: Path) -> Path:
    """A copy of the shop project without build output, its local package installed.

    The package is linked the way `dbt deps` installs a local package, which saves a dbt run.
    """
    shutil.copytree(
        SHOP, dest, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*")
    )
    (dest / "dbt_packages").mkdir()
    (dest / "dbt_packages" / "shop_utils").symlink_to(dest / "local_pkg", target_is_directory=True)
    return dest


@pytest.fixture(scope="session")
def run_dbt_ls() -> LsRunner:
    """``run(project, [args, ...], duckdb_path=None)``: ``dbt ls <args> --output json
    --output-keys unique_id`` for each argument list; a frozenset of unique_ids or an error
    message each.

    The project must be ready to parse (packages installed). ``duckdb_path`` defaults to the
    project's own file; pass the one the project was parsed with to let dbt parse partially.
    """
    return _run_dbt_ls


def _run_in_worker(project: Path, commands: list[list[str]]) -> None:
    """Run dbt commands one after the other in one process (one dbt start-up instead of many);
    failing tests are fine, dbt stopping with an error is not."""
    env = {**os.environ, "DBT_DUCKDB_PATH": str(project / "shop.duckdb")}
    proc = subprocess.run(
        [sys.executable, __file__],
        input=json.dumps({"project": str(project), "commands": commands}),
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise AssertionError(f"dbt {commands} failed:\n{proc.stdout}\n{proc.stderr}")


def _run_dbt_ls(
    project: Path, invocations: Sequence[Sequence[str]], duckdb_path: Path | None = None
) -> list[LsOutcome]:
    database = duckdb_path or project / "shop.duckdb"
    chunks = [list(invocations[0::2]), list(invocations[1::2])]
    with ThreadPoolExecutor(2) as pool:
        halves = list(pool.map(lambda chunk: _ls_worker(project, chunk, database), chunks))
    return [halves[i % 2][i // 2] for i in range(len(invocations))]


def _ls_worker(project: Path, invocations: list[Sequence[str]], database: Path) -> list[LsOutcome]:
    if not invocations:
        return []
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "out.json"
        request = {"project": str(project), "output": str(out), "invocations": invocations}
        env = {**os.environ, "DBT_DUCKDB_PATH": str(database)}
        proc = subprocess.run(
            [sys.executable, __file__],
            input=json.dumps(request),
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0 or not out.exists():
            raise AssertionError(f"the dbt ls worker failed:\n{proc.stdout}\n{proc.stderr}")
        return [
            frozenset(r["ids"]) if "ids" in r else str(r["error"])
            for r in json.loads(out.read_text())
        ]


_SEMANTIC_LAYER = """\
version: 2
models:
  - name: metricflow_time_spine
    time_spine:
      standard_granularity_column: date_day
    columns:
      - name: date_day
        granularity: day
semantic_models:
  - name: orders_semantic
    model: ref('orders')
    defaults:
      agg_time_dimension: ordered_at
    entities:
      - name: order
        type: primary
        expr: order_id
    dimensions:
      - name: ordered_at
        type: time
        type_params:
          time_granularity: day
    measures:
      - name: order_total
        agg: sum
        expr: amount
metrics:
  - name: revenue
    label: Revenue
    type: simple
    type_params:
      measure: order_total
saved_queries:
  - name: revenue_by_day
    query_params:
      metrics: [revenue]
      group_by: ["TimeDimension('order__ordered_at', 'day')"]
"""


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def _extend(project: Path) -> None:
    """The additions both versions share: semantic layer, a v3 pre-release, persisted docs."""
    semantic = project / "models" / "semantic"
    semantic.mkdir()
    (semantic / "metricflow_time_spine.sql").write_text(
        "select cast('2024-01-01' as date) as date_day\n"
    )
    (semantic / "semantic.yml").write_text(_SEMANTIC_LAYER)
    marts = project / "models" / "marts"
    shutil.copy(marts / "customers_v2.sql", marts / "customers_v3.sql")
    _edit(marts / "marts.yml", "      - v: 2\n", "      - v: 2\n      - v: 3\n")
    _edit(
        project / "dbt_project.yml",
        '      +tags: ["staging", "daily"]\n',
        '      +tags: ["staging", "daily"]\n      +persist_docs: {relation: true}\n',
    )


def _make_current(project: Path) -> None:
    _extend(project)
    # A duplicate customer id: unique_raw_customers_id fails, its descendants are skipped.
    with (project / "seeds" / "raw_customers.csv").open("a") as f:
        f.write("1,Ada,Again,GB\n")


def _make_previous(project: Path) -> None:
    """The older version the state directory describes: one change per state sub-selector."""
    _extend(project)
    staging, marts = project / "models" / "staging", project / "models" / "marts"
    _edit(staging / "stg_orders.sql", "select\n", "select distinct\n")  # body
    _edit(marts / "order_events.sql", 'unique_key="order_id"', 'unique_key="status"')  # configs
    _edit(
        project / "macros" / "cents_to_dollars.sql",
        "round({{ expression }}, 2)",
        "round({{ expression }}, 3)",
    )  # macros
    _edit(staging / "staging.yml", "One row per customer.", "A customer.")  # descriptions
    _edit(
        staging / "stg_payments.sql",
        'config(tags=["finance"])',
        'config(tags=["finance"], alias="payments")',
    )  # relation
    (marts / "legacy_report.sql").unlink()  # new in the current version
    _edit(marts / "marts.yml", "  - name: legacy_report\n", "")
    _edit(marts / "marts.yml", "type: dashboard", "type: application")  # exposure
    _edit(marts / "marts.yml", "{order_id: 1, paid_amount: 5.0}", "{order_id: 1, paid_amount: 6.0}")
    _edit(project / "models" / "semantic" / "semantic.yml", "label: Revenue", "label: Turnover")
    _edit(staging / "sources.yml", "{count: 3650, period: day}", "{count: 3000, period: day}")
    _edit(staging / "staging.yml", "severity: warn", "severity: error")  # generic test config
    orders = project / "seeds" / "raw_orders.csv"  # older data: the current check is fresher
    orders.write_text("".join(orders.read_text().splitlines(keepends=True)[:-2]))


@pytest.fixture(scope="session")
def _parity(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("parity")
    current, previous = copy_shop(root / "current"), copy_shop(root / "previous")
    _make_current(current)
    _make_previous(previous)

    # Each command also writes target/manifest.json; freshness writes only sources.json besides.
    # The project's default YAML selector leaves sources out, hence the explicit selection.
    freshness = ["source", "freshness", *_ALL_SOURCES]
    jobs = [(current, [["build"], freshness]), (previous, [["seed"], freshness])]
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(lambda job: _run_in_worker(*job), jobs))
    state = root / "state"
    state.mkdir()
    shutil.copy(previous / "target" / "manifest.json", state / "manifest.json")
    shutil.copy(previous / "target" / "sources.json", state / "sources.json")
    shutil.copy(current / "target" / "run_results.json", state / "run_results.json")
    return current, state


@pytest.fixture(scope="session")
def parity_project(_parity: tuple[Path, Path]) -> Path:
    """The current project: built (one failing test) and freshness-checked."""
    return _parity[0]


@pytest.fixture(scope="session")
def parity_state(_parity: tuple[Path, Path]) -> Path:
    """The ``--state`` directory: an older version's manifest, the build's run_results.json and
    an older freshness check's sources.json."""
    return _parity[1]


def _worker() -> None:
    from dbt.cli.main import dbtRunner

    request = json.load(sys.stdin)
    project = request["project"]
    common = ["--project-dir", project, "--profiles-dir", project, "--quiet"]
    if "commands" in request:
        for command in request["commands"]:
            done = dbtRunner().invoke([*command, *common])
            if done.exception is not None:
                raise SystemExit(f"dbt {' '.join(command)} failed: {done.exception}")
        return
    # A manifest read back from manifest.json would not do: dbt tells generic from singular
    # tests by their Python classes, which only parsing restores. Partial parsing keeps it short.
    parsed = dbtRunner().invoke(["parse", *common])
    if not parsed.success:
        raise SystemExit(f"dbt parse failed: {parsed.exception}")
    outcomes = []
    for args in request["invocations"]:
        result = dbtRunner(manifest=parsed.result).invoke(
            ["ls", *args, "--output", "json", "--output-keys", "unique_id", *common]
        )
        if result.success:
            lines = result.result or []
            outcomes.append({"ids": [json.loads(line)["unique_id"] for line in lines]})
        else:
            outcomes.append({"error": str(result.exception)})
    Path(request["output"]).write_text(json.dumps(outcomes))


if __name__ == "__main__":
    _worker()
