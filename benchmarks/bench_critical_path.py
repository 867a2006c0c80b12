"""Critical-path scheduling on a warehouse-bound PostgreSQL project (issue 15).

Usage::

    uv run python benchmarks/bench_critical_path.py [--models 240] [--chain 24]
        [--short-layers 4] [--concurrency 4] [--modes plain,per_node] [--keep DIR]

Generates the project of ``generate_warehouse_project.py`` (models that sleep known, skewed
times on the server; one long chain hidden among wide, shallow short branches), starts a
throwaway PostgreSQL server, and times side by side in one run, each into an empty schema:

* **plain**: ``dbt build --threads N`` on the command line, after a ``dbt parse`` (warm partial
  parsing), timed as a user runs it;
* **per_node**: ``PrefectDbtOrchestrator(execution_mode="per_node", concurrency=N)``, the public
  API only, inside a running flow against a Prefect server started before any timing; one
  ``plan()`` resolves the manifest before the clock starts, and only ``run_build()`` is timed.
  Today's PER_NODE submits ready nodes in the order they become ready (plan order).

Before the runs it prints what ``dbt_graph`` predicts from the *known* sleep times (tests count
0 s): the critical path, the lower bound ``max(critical path, total work / N)``, and simulated
wall times for dbt's own queue order (depth level, then unique_id), plan order and
critical-path-first. After them it prints the estimate ``dbt_graph`` makes from one run's
history (that run's ``run_results.json``) next to the measured wall times, so the estimate's
error is visible. dbt's anonymous usage statistics are off (there is no internet here).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _postgres import temporary_postgres
from dbt_graph import (
    DurationHistory,
    ExecutionPlan,
    build_plan,
    estimate_wall_time,
    load_manifest,
    run_results_timings,
)
from generate_warehouse_project import generate

DBT = Path(sys.executable).parent / "dbt"
MODES = ("plain", "per_node")
#: What the orchestrator gives a Prefect server it starts itself (task runs recorded in batches).
SERVER_SETTINGS = {
    "server.analytics_enabled": False,
    "server.services.task_run_recorder.batch_size": 200,
    "server.services.task_run_recorder.flush_interval": 1,
}


@dataclass
class Run:
    mode: str
    wall: float
    history: dict[str, float] = field(default_factory=dict)  # seconds per node, run_results
    notes: list[str] = field(default_factory=list)


@contextlib.contextmanager
def patched_environ(values: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def read_history(project: Path) -> dict[str, float]:
    return run_results_timings(json.loads((project / "target" / "run_results.json").read_text()))


def run_plain(project: Path, env: dict[str, str], concurrency: int) -> Run:
    args = ["--project-dir", str(project), "--profiles-dir", str(project)]
    subprocess.run([str(DBT), "parse", *args], env=env, check=True, capture_output=True)
    started = time.perf_counter()
    proc = subprocess.run(
        [str(DBT), "build", "--threads", str(concurrency), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    notes = [line.split("Done. ")[-1] for line in proc.stdout.splitlines() if "Done. PASS=" in line]
    # dbt's own clock for the build; the rest of the wall time is start-up and shutdown.
    finished = re.search(r"Finished running .* \(([0-9.]+)s\)", proc.stdout)
    if finished:
        notes.append(f"dbt's own run time {float(finished.group(1)):.1f} s")
    return Run("plain", wall, read_history(project), notes)


def run_per_node(project: Path, env: dict[str, str], concurrency: int) -> Run:
    from prefect import flow
    from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

    with patched_environ(env):
        orch = PrefectDbtOrchestrator(
            settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
            execution_mode="per_node",
            concurrency=concurrency,
            threads=concurrency,
            write_run_results=True,
        )

        @flow(name="bench-critical-path-per-node", log_prints=False)
        def timed() -> tuple[float, dict[str, Any]]:
            orch.plan()  # the manifest is resolved here, before the clock starts
            started = time.perf_counter()
            results = orch.run_build()
            return time.perf_counter() - started, results

        try:
            wall, results = timed()
        finally:
            orch.executor.close()
    statuses: dict[str, int] = {}
    for result in results.values():
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
    notes = [", ".join(f"{n} {s}" for s, n in sorted(statuses.items()))]
    return Run("per_node", wall, read_history(project), notes)


def dbt_queue_order(plan: ExecutionPlan) -> list[str]:
    """dbt's own queue: nodes scored by depth level (our waves), ties by unique_id."""
    level = {uid: wave.number for wave in plan.waves for uid in wave.node_ids}
    return sorted(plan.nodes, key=lambda uid: (level[uid], uid))


def predictions(plan: ExecutionPlan, seconds: dict[str, float], concurrency: int) -> list[str]:
    """Simulated wall times for the three orders, and the lower bound, from seconds per node."""
    lines = []
    for label, order in (
        ("dbt's queue order", dbt_queue_order(plan)),
        ("plan order", list(plan.nodes)),
        ("critical-path-first", None),
    ):
        estimate = estimate_wall_time(plan, seconds, concurrency=concurrency, order=order)
        lines.append(f"  {label:22} {estimate.wall_seconds:6.1f} s")
    lines.append(
        f"  {'lower bound':22} {estimate.lower_bound_seconds:6.1f} s (critical path "
        f"{estimate.critical_path_seconds:.1f} s, work / {concurrency} "
        f"{estimate.total_seconds / concurrency:.1f} s)"
    )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=240)
    parser.add_argument("--chain", type=int, default=24)
    parser.add_argument("--short-layers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--modes", default=",".join(MODES), help=f"any of {','.join(MODES)}")
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    args = parser.parse_args()
    modes = args.modes.split(",")
    if set(modes) - set(MODES):
        parser.error(f"unknown mode(s) in {args.modes!r}; choose from {MODES}")

    root = (args.keep or Path(tempfile.mkdtemp(prefix="bench-critpath-"))).absolute()
    project = generate(
        root / "project", models=args.models, chain=args.chain, short_layers=args.short_layers
    )
    os.environ["DBT_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")  # no line per node on the console
    n = args.concurrency
    print(
        f"{datetime.date.today()}: {project} ({args.models} models), concurrency {n}, "
        f"{os.cpu_count()} CPUs, load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}",
        flush=True,
    )
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    runs: list[Run] = []
    with (
        temporary_postgres() as pg_env,
        temporary_settings(set_defaults=SERVER_SETTINGS),
        prefect_test_harness(server_startup_timeout=180),
    ):
        base = {**os.environ, **pg_env}
        subprocess.run(
            [str(DBT), "parse", "--project-dir", str(project), "--profiles-dir", str(project)],
            env=base,
            check=True,
            capture_output=True,
        )
        plan = build_plan(load_manifest(project / "target" / "manifest.json"))
        known = json.loads((project / "durations.json").read_text())
        sleeps = {uid: known.get(uid, 0.0) for uid in plan.nodes}
        bound = estimate_wall_time(plan, sleeps, concurrency=n)
        print(f"plan: {len(plan.nodes)} nodes in {len(plan.waves)} waves")
        print(f"from the known sleeps (tests 0 s), simulated at concurrency {n}:")
        print("\n".join(predictions(plan, sleeps, n)), flush=True)
        for mode in modes:
            print(f"== {mode}", flush=True)
            env = {**base, "BENCH_PG_SCHEMA": f"bench_{mode}"}
            run = (run_plain if mode == "plain" else run_per_node)(project, env, n)
            print(f"   {run.wall:.1f} s; {'; '.join(run.notes)}", flush=True)
            runs.append(run)
    report(runs, plan, bound.lower_bound_seconds, n)
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


def report(runs: list[Run], plan: ExecutionPlan, bound: float, n: int) -> None:
    plain = next((r.wall for r in runs if r.mode == "plain"), None)
    print("\n| run | wall s | x plain | x lower bound |")
    print("| --- | ---: | ---: | ---: |")
    print(f"| lower bound from the known sleeps | {bound:.1f} | | 1.00 |")
    for run in runs:
        ratio = f"{run.wall / plain:.2f}" if plain else ""
        print(f"| {run.mode} | {run.wall:.1f} | {ratio} | {run.wall / bound:.2f} |")
    for run in runs:
        seconds = DurationHistory().record(run.history).durations().for_plan(plan)
        print(f"\nfrom the history of the {run.mode} run (its run_results.json):")
        print("\n".join(predictions(plan, seconds, n)))
        measured = ", ".join(f"{r.mode} {r.wall:.1f} s" for r in runs)
        print(f"  measured: {measured}")


if __name__ == "__main__":
    main()
