"""Benchmark data-aware caching (issue 14) against plain ``dbt build``.

Usage::

    uv run python benchmarks/bench_data_aware.py [--models 200] [--adapters duckdb,postgres]
        [--source 0] [--rows 5] [--concurrency 4] [--keep DIR]

Generates the synthetic project (``generate_project.py --own-source-tables``: 200 models, 10
sources each read through a table of its own, 20 seeds, 447 tests) and, per adapter, side by
side in one run, each in its own empty DuckDB file or PostgreSQL schema:

* **plain**: ``dbt parse``; a full ``dbt build --threads 4``; ``--rows`` new rows appended to
  the table of source ``raw.src_<source>``; the timed rerun, ``dbt build --threads 4`` (plain
  dbt rebuilds everything);
* **data_aware**: ``PrefectDbtOrchestrator(execution_mode="per_node", concurrency=4,
  cache=CacheConfig(data_aware=True))``: the seeds (the sources' tables), a full build that
  fills the cache, the same rows appended, ``plan()``, then the timed ``run_build()``. The
  guide's default exclusions apply: the 447 tests run every time;
* **data_aware_all**: the same with ``exclude_resource_types=frozenset()``: a test is served
  too when nothing it reads changed.

Each data-aware rerun is checked against the graph: the nodes it rebuilt must be exactly the
descendants of the changed source (``dbt_graph.descendants``), plus the tests when they are
excluded from caching; every other node must be served from cache, as ``plan()`` predicted.
The orchestrator runs inside a running flow against a Prefect server started before any timing
(``prefect_test_harness``, with the settings the orchestrator gives a server it starts); only
the rerun's ``run_build()`` is timed. Plain dbt is timed as a user runs it (interpreter start,
imports and partial-parse load included).
"""

from __future__ import annotations

import argparse
import collections
import datetime
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _postgres import temporary_postgres
from bench_orchestrator import cpu_snapshot, env_for, patched_environ

HERE = Path(__file__).resolve().parent
DBT = Path(sys.executable).parent / "dbt"


@dataclass
class Run:
    label: str
    wall: float
    full_build: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


# -- the data change ---------------------------------------------------------------------------


def appender(adapter: str, env: dict[str, str]) -> Callable[[str], None]:
    """Runs SQL against the run's own database (the DuckDB file or the PostgreSQL schema)."""
    if adapter == "duckdb":
        import duckdb

        def run_duckdb(sql: str) -> None:
            with duckdb.connect(env["BENCH_DUCKDB_PATH"]) as con:
                con.execute(sql)

        return run_duckdb
    import psycopg2

    def run_postgres(sql: str) -> None:
        con = psycopg2.connect(
            host=env["BENCH_PG_HOST"],
            port=env["BENCH_PG_PORT"],
            user=env["BENCH_PG_USER"],
            dbname=env["BENCH_PG_DBNAME"],
        )
        con.autocommit = True
        try:
            with con.cursor() as cur:
                cur.execute(sql)
        finally:
            con.close()

    return run_postgres


def append_rows(adapter: str, env: dict[str, str], source: int, rows: int) -> None:
    """New rows in source ``raw.src_<source>``'s table, as a loader would append them."""
    schema = "main" if adapter == "duckdb" else env["BENCH_PG_SCHEMA"]
    values = ", ".join(
        f"({100 + i}, 'daily', {i}, timestamp '2024-02-{1 + i % 28:02d} 00:00:00')"
        for i in range(rows)
    )
    appender(adapter, env)(f"insert into {schema}.src_{source}_rows values {values}")


# -- plain dbt -----------------------------------------------------------------------------------


def run_plain(project: Path, adapter: str, env: dict[str, str], source: int, rows: int) -> Run:
    dbt_args = ["--project-dir", str(project), "--profiles-dir", str(project), "--target", adapter]

    def dbt(*args: str) -> tuple[float, float, str]:
        before = os.times()
        started = time.perf_counter()
        proc = subprocess.run([str(DBT), *args, *dbt_args], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - started
        after = os.times()
        if proc.returncode != 0:
            raise RuntimeError(
                f"dbt {args[0]} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}"
            )
        cpu = (after.children_user - before.children_user) + (
            after.children_system - before.children_system
        )
        return wall, cpu, proc.stdout

    dbt("parse")
    full, _, _ = dbt("build", "--threads", "4")
    append_rows(adapter, env, source, rows)
    wall, cpu, out = dbt("build", "--threads", "4")
    done = [line.split("Done. ")[-1] for line in out.splitlines() if "Done. PASS=" in line]
    return Run(label="plain", wall=wall, full_build=full, cpu={"dbt": cpu}, notes=done)


# -- the orchestrator ----------------------------------------------------------------------------


def run_data_aware(
    project: Path,
    adapter: str,
    env: dict[str, str],
    args: argparse.Namespace,
    cache_dir: Path,
    *,
    cache_tests: bool,
) -> Run:
    from dbt_graph import ResourceType, descendants, load_manifest
    from prefect import flow
    from prefect_dbt_orchestrator import CacheConfig, PrefectDbtOrchestrator, PrefectDbtSettings

    shutil.rmtree(cache_dir, ignore_errors=True)
    excluded = {"exclude_resource_types": frozenset()} if cache_tests else {}
    cache = CacheConfig(
        data_aware=True,
        result_storage=cache_dir / "results",
        key_storage=cache_dir / "keys",
        **excluded,
    )
    label = "data_aware_all" if cache_tests else "data_aware"
    with patched_environ(env):
        orch = PrefectDbtOrchestrator(
            settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
            execution_mode="per_node",
            concurrency=args.concurrency,
            cache=cache,
            threads=4,
        )

        @flow(name=f"bench-{adapter}-{label}", log_prints=False)
        def session() -> Run:
            orch.run_build(target=adapter, select="resource_type:seed")
            started = time.perf_counter()
            orch.run_build(target=adapter)
            full = time.perf_counter() - started
            append_rows(adapter, env, args.source, args.rows)
            plan = orch.plan(target=adapter)  # warm-up, and the predictions to check
            before = cpu_snapshot()
            started = time.perf_counter()
            results = orch.run_build(target=adapter)
            wall = time.perf_counter() - started
            after = cpu_snapshot()
            manifest = load_manifest(orch.executor.resolve_manifest(target=adapter))
            run = Run(
                label=label,
                wall=wall,
                full_build=full,
                cpu={k: after[k] - before[k] for k in after},
                statuses=dict(collections.Counter(r["status"] for r in results.values())),
            )
            run.notes += check(manifest, plan, results, args.source, cache_tests)
            tests = {ResourceType.TEST, ResourceType.UNIT_TEST}
            changed = descendants(manifest.child_map, f"source.bench.raw.src_{args.source}")
            models = [u for u in results if manifest.nodes[u].resource_type is ResourceType.MODEL]
            rebuilt = [u for u in models if u in changed]
            skipped = [u for u in results if results[u]["status"] == "cached"]
            run.notes.append(
                f"{len(rebuilt)} of {len(models)} models rebuilt (the source's descendants), "
                f"{len(skipped)} of {len(results)} nodes skipped "
                f"({len(skipped) / len(results):.0%}), "
                f"{sum(1 for u in results if manifest.nodes[u].resource_type in tests)} tests"
            )
            return run

        try:
            return session()
        finally:
            orch.close()


def check(
    manifest: Any, plan: Any, results: dict[str, dict[str, Any]], source: int, cache_tests: bool
) -> list[str]:
    """The rerun against the graph: exactly the source's descendants rebuilt, as predicted."""
    from dbt_graph import ResourceType, descendants

    planned = set(results)
    changed = descendants(manifest.child_map, f"source.bench.raw.src_{source}") & planned
    always = (
        set()
        if cache_tests
        else {u for u in planned if manifest.nodes[u].resource_type is ResourceType.TEST}
    )
    ran = {u for u, r in results.items() if r["status"] == "success"}
    cached = {u for u, r in results.items() if r["status"] == "cached"}
    predicted = {u for u, p in (plan.cache_predictions or {}).items() if p == "miss"}
    problems = []
    if ran != changed | always:
        problems.append(f"ran {len(ran)} != descendants+always {len(changed | always)}")
    if cached != planned - changed - always:
        problems.append(f"cached {len(cached)} != the rest {len(planned - changed - always)}")
    if predicted != changed - always:
        problems.append(f"plan() predicted {len(predicted)} misses, not {len(changed - always)}")
    return problems or ["checked: rebuilt = the source's descendants, the rest cached, as planned"]


# -- driver --------------------------------------------------------------------------------------


def descendant_counts(project: Path, adapter: str, env: dict[str, str], sources: int) -> str:
    """How many nodes and models each source feeds (from the parsed manifest)."""
    from dbt_graph import ResourceType, descendants, load_manifest

    subprocess.run(
        [
            str(DBT),
            "parse",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
            "--target",
            adapter,
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    manifest = load_manifest(project / "target" / "manifest.json")
    parts = []
    for k in range(sources):
        found = descendants(manifest.child_map, f"source.bench.raw.src_{k}")
        models = sum(1 for u in found if manifest.nodes[u].resource_type is ResourceType.MODEL)
        parts.append(f"src_{k}: {models} models / {len(found)} nodes")
    return "; ".join(parts)


def bench_adapter(
    adapter: str, args: argparse.Namespace, root: Path, project: Path, base: dict[str, str]
) -> list[Run]:
    runs = []
    print(f"== {adapter} plain", flush=True)
    runs.append(
        run_plain(
            project, adapter, env_for(adapter, "da_plain", root, base), args.source, args.rows
        )
    )
    for cache_tests in (False, True):
        label = "data_aware_all" if cache_tests else "data_aware"
        print(f"== {adapter} {label}", flush=True)
        env = env_for(adapter, f"da_{label}", root, base)
        runs.append(
            run_data_aware(
                project,
                adapter,
                env,
                args,
                root / f"cache-{adapter}-{label}",
                cache_tests=cache_tests,
            )
        )
    return runs


def table(adapter: str, runs: list[Run]) -> str:
    plain = runs[0].wall
    rows = [
        "| adapter | run | full build s | rerun after new rows s | x plain rerun "
        "| CPU s: orchestrator / dbt / server | statuses | notes |",
        "| --- | --- | ---: | ---: | ---: | --- | --- | --- |",
    ]
    for run in runs:
        cpu = (
            f"{run.cpu['dbt']:.1f} (dbt process)"
            if run.label == "plain"
            else " / ".join(f"{run.cpu.get(k, 0.0):.1f}" for k in ("self", "dbt", "server"))
        )
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(run.statuses.items()))
        rows.append(
            f"| {adapter} | {run.label} | {run.full_build:.1f} | {run.wall:.1f} "
            f"| {run.wall / plain:.2f} | {cpu} | {statuses} | {'; '.join(run.notes)} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--adapters", default="duckdb,postgres")
    parser.add_argument("--source", type=int, default=0, help="which source gets new rows")
    parser.add_argument("--rows", type=int, default=5, help="how many rows to append")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    args = parser.parse_args()
    if not 0 <= args.source < 10:
        parser.error("--source must be one of the 10 sources, 0 to 9")

    root = (args.keep or Path(tempfile.mkdtemp(prefix="bench-data-aware-"))).absolute()
    project = root / "project"
    subprocess.run(
        [
            sys.executable,
            str(HERE / "generate_project.py"),
            str(project),
            "--models",
            str(args.models),
            "--own-source-tables",
        ],
        check=True,
    )
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    print(
        f"{datetime.date.today()}: project {project} ({args.models} models), source "
        f"raw.src_{args.source} gets {args.rows} rows, concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    print(descendant_counts(project, "duckdb", dict(os.environ), 10), flush=True)

    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness
    from prefect_dbt_orchestrator._server import SERVER_DEFAULTS

    tables = []
    with (
        temporary_settings(set_defaults=SERVER_DEFAULTS),
        prefect_test_harness(server_startup_timeout=180),
    ):
        for adapter in args.adapters.split(","):
            try:
                if adapter == "postgres":
                    with temporary_postgres() as pg_env:
                        runs = bench_adapter(adapter, args, root, project, {**os.environ, **pg_env})
                else:
                    runs = bench_adapter(adapter, args, root, project, dict(os.environ))
            except Exception as exc:  # report and go on with the next adapter
                print(f"!! {adapter} failed: {type(exc).__name__}: {exc}", flush=True)
                continue
            tables.append(table(adapter, runs))
            print(tables[-1], flush=True)
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n\n".join(tables))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
