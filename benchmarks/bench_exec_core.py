"""Benchmark dbt-exec-core: plain ``dbt build`` vs per-wave and per-node execution.

Usage::

    uv run python benchmarks/bench_exec_core.py [--models 200] [--concurrency 4]
        [--databases duckdb,postgres] [--workers N] [--keep DIR]

Generates one synthetic project (``benchmarks/generate_project.py``) and, for each database,
times three ways of building all of it from an empty database or schema:

* **plain**: ``dbt build --threads 4`` on the command line (after a ``dbt parse``, so its
  partial parsing is warm);
* **per-wave**: one :class:`~dbt_exec_core.DbtCoreExecutor` request per wave of
  ``dbt_graph.build_plan`` (``build`` command, waves one after the other);
* **per-node**: one request per node (``run``/``test``/``seed``...), ``--concurrency`` callers,
  eager: a node is submitted as soon as the nodes it waits for (``build_plan``'s dependencies,
  so dbt build's test placement) have finished.

The executor's manifest is resolved once beforehand (as the plain build's parse is), so every
mode is timed as a fresh process: interpreter start, dbt import, loading the manifest and the
run itself. PostgreSQL runs on a throwaway server started for the benchmark.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path
from types import SimpleNamespace

from _postgres import temporary_postgres

HERE = Path(__file__).resolve().parent
DBT = Path(sys.executable).parent / "dbt"


# -- the modes, each run in a fresh process (`--run MODE`) -------------------------------------


def _executor(project: Path, target: str, workers: int | None):
    from dbt_exec_core import DbtCoreExecutor

    settings = SimpleNamespace(project_dir=project, profiles_dir=project, target_path="target")
    return DbtCoreExecutor(settings, target=target, workers=workers)


def run_mode(mode: str, project: Path, target: str, concurrency: int, workers: int | None) -> dict:
    from dbt_graph import Command, ExecutionRequest, build_plan, load_manifest

    started = time.perf_counter()
    executor = _executor(project, target, workers)
    manifest = load_manifest(executor.resolve_manifest())
    if mode == "resolve":
        executor.close()
        return {"wall": time.perf_counter() - started}
    plan = build_plan(manifest)
    statuses: dict[str, str] = {}
    requests = 0
    if mode == "per-wave":
        for wave in plan.waves:
            result = executor.execute(ExecutionRequest(command=Command.BUILD, nodes=wave.nodes))
            requests += 1
            statuses.update({u: r.status.value for u, r in result.results.items()})
    else:
        deps = plan.dependencies
        waiting = {uid: set(d) for uid, d in deps.items()}
        dependents = plan.dependents
        lock = threading.Lock()

        def run(uid: str) -> tuple[str, str]:
            node = plan.nodes[uid]
            request = ExecutionRequest(command=Command.for_node(node), nodes=(node,))
            return uid, executor.execute(request).results[uid].status.value

        with ThreadPoolExecutor(concurrency) as pool:
            running = {pool.submit(run, u) for u, d in waiting.items() if not d}
            requests = len(running)
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    uid, status = future.result()
                    with lock:
                        statuses[uid] = status
                    for child in dependents[uid]:
                        waiting[child].discard(uid)
                        if not waiting[child] and status in ("success", "pass", "warn"):
                            running.add(pool.submit(run, child))
                            requests += 1
    executor.close()
    failures = {u: s for u, s in statuses.items() if s not in ("success", "pass", "warn")}
    return {
        "wall": time.perf_counter() - started,
        "nodes": len(statuses),
        "planned": plan.node_count,
        "requests": requests,
        "failures": len(failures),
    }


# -- the driver --------------------------------------------------------------------------------


def _timed(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    begin = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True)
    wall = time.perf_counter() - begin
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(cmd[:3])} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        )
    return wall, proc.stdout


def _mode_process(
    mode: str, args: argparse.Namespace, project: Path, target: str, env: dict[str, str]
) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--run",
        mode,
        "--project",
        str(project),
        "--target",
        target,
        "--concurrency",
        str(args.concurrency),
    ]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    wall, out = _timed(cmd, env, project)
    report = json.loads(out.strip().splitlines()[-1])
    report["process_wall"] = wall
    return report


def bench_database(
    database: str, args: argparse.Namespace, project: Path, extra_env: dict[str, str]
) -> dict[str, dict]:
    target = database
    base_env = {**os.environ, **extra_env}
    dbt_args = ["--project-dir", str(project), "--profiles-dir", str(project), "--target", target]

    def env_for(run: str) -> dict[str, str]:
        env = dict(base_env)
        if database == "duckdb":
            path = project / f"bench-{run}.duckdb"
            for stale in project.glob(f"bench-{run}.duckdb*"):
                stale.unlink()
            env["BENCH_DUCKDB_PATH"] = str(path)
        else:
            env["BENCH_PG_SCHEMA"] = f"bench_{run.replace('-', '_')}"
        return env

    # Warm both: dbt's partial parsing, and the executor's fingerprinted manifest. The same
    # environment (DuckDB file / schema name) keeps each valid for the timed run after it.
    _timed([str(DBT), "parse", *dbt_args], env_for("plain"), project)
    reports: dict[str, dict] = {}
    wall, _ = _timed([str(DBT), "build", "--threads", "4", *dbt_args], env_for("plain"), project)
    reports["plain"] = {"process_wall": wall}
    for mode in ("per-wave", "per-node"):
        env = env_for(mode)
        _mode_process("resolve", args, project, target, env)
        reports[mode] = _mode_process(mode, args, project, target, env)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--databases", default="duckdb,postgres")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", type=Path, default=None, help="generate the project here")
    parser.add_argument("--run", help=argparse.SUPPRESS)
    parser.add_argument("--project", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        report = run_mode(args.run, args.project, args.target, args.concurrency, args.workers)
        print(json.dumps(report))
        return

    root = args.keep or Path(tempfile.mkdtemp(prefix="bench-exec-core-"))
    project = root / "project"
    if project.exists():
        shutil.rmtree(project)
    subprocess.run(
        [
            sys.executable,
            str(HERE / "generate_project.py"),
            str(project),
            "--models",
            str(args.models),
        ],
        check=True,
    )
    print(
        f"project: {project} ({args.models} models), concurrency {args.concurrency}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    print(f"{'database':10} {'mode':9} {'wall s':>8} {'x plain':>8} {'requests':>9} {'nodes':>6}")
    for database in args.databases.split(","):
        if database == "postgres":
            with temporary_postgres() as pg_env:
                reports = bench_database(database, args, project, pg_env)
        else:
            reports = bench_database(database, args, project, {})
        plain = reports["plain"]["process_wall"]
        for mode, report in reports.items():
            wall = report["process_wall"]
            bad = f"  FAILURES: {report['failures']}" if report.get("failures") else ""
            print(
                f"{database:10} {mode:9} {wall:8.1f} {wall / plain:8.2f} "
                f"{report.get('requests', 1):>9} {report.get('nodes', ''):>6}{bad}"
            )
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
