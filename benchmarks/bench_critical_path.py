"""Critical-path scheduling on a warehouse-bound PostgreSQL project (issue 15).

Usage::

    uv run python benchmarks/bench_critical_path.py [--models 240] [--chain 24]
        [--short-layers 4] [--concurrency 4] [--rounds 2]
        [--modes plain,plan_order,critical_path] [--keep DIR]

Generates the project of ``generate_warehouse_project.py`` (models that sleep known, skewed
times on the server; one long chain hidden among wide, shallow short branches), starts a
throwaway PostgreSQL server, and times, interleaved in rounds, each into an empty schema:

* **plain**: ``dbt build --threads N`` on the command line, after a ``dbt parse`` (warm partial
  parsing), timed as a user runs it;
* **plan_order**: ``PrefectDbtOrchestrator(execution_mode="per_node", concurrency=N,
  scheduling="plan_order")``, the public API only, inside a running flow against a Prefect
  server started before any timing; one ``plan()`` resolves the manifest before the clock
  starts, and only ``run_build()`` is timed. It starts from no duration history (the round
  deletes it) and leaves one: it is the *history run*;
* **critical_path**: the same with the default ``scheduling="critical_path"``, after that one
  history run. Before the clock, its ``plan()`` gives the estimate (expected wall time, lower
  bound) from the learned durations, printed beside the measured wall time.

Before the runs it prints what ``dbt_graph`` predicts from the *known* sleep times (tests count
0 s): the critical path, the lower bound ``max(critical path, total work / N)``, and simulated
wall times for dbt's own queue order (depth level, then unique_id), plan order and
critical-path-first. dbt's anonymous usage statistics are off (there is no internet here).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

from _postgres import temporary_postgres
from dbt_graph import (
    Estimate,
    ExecutionPlan,
    build_plan,
    estimate_wall_time,
    load_manifest,
    run_results_timings,
)
from generate_warehouse_project import generate

DBT = Path(sys.executable).parent / "dbt"
MODES = ("plain", "plan_order", "critical_path")
HISTORY = Path("target") / "orchestrator-durations.postgres.json"
#: What the orchestrator gives a Prefect server it starts itself (task runs recorded in batches).
SERVER_SETTINGS = {
    "server.analytics_enabled": False,
    "server.services.task_run_recorder.batch_size": 200,
    "server.services.task_run_recorder.flush_interval": 1,
}


@dataclass
class Run:
    mode: str
    round: int
    wall: float
    notes: list[str] = field(default_factory=list)
    load: float = 0.0  # 1-minute load average when the run started
    estimate: Estimate | None = None  # plan()'s, before the run (critical_path only)
    span: tuple[datetime.datetime, datetime.datetime] | None = None  # the timed build, UTC


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


def run_plain(project: Path, env: dict[str, str], concurrency: int) -> Run:
    args = ["--project-dir", str(project), "--profiles-dir", str(project)]
    subprocess.run([str(DBT), "parse", *args], env=env, check=True, capture_output=True)
    started, began = time.perf_counter(), now()
    proc = subprocess.run(
        [str(DBT), "build", "--threads", str(concurrency), *args],
        env=env,
        capture_output=True,
        text=True,
    )
    wall, ended = time.perf_counter() - started, now()
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    notes = [line.split("Done. ")[-1] for line in proc.stdout.splitlines() if "Done. PASS=" in line]
    # dbt's own clock for the build; the rest of the wall time is start-up and shutdown.
    finished = re.search(r"Finished running .* \(([0-9.]+)s\)", proc.stdout)
    if finished:
        notes.append(f"dbt's own run time {float(finished.group(1)):.1f} s")
    return Run("plain", 0, wall, notes, span=(began, ended))


def run_per_node(project: Path, env: dict[str, str], concurrency: int, scheduling: str) -> Run:
    from prefect import flow
    from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

    with patched_environ(env):
        orch = PrefectDbtOrchestrator(
            settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
            execution_mode="per_node",
            concurrency=concurrency,
            threads=concurrency,
            write_run_results=True,
            scheduling=scheduling,
        )

        @flow(name=f"bench-critical-path-{scheduling}", log_prints=False)
        def timed() -> tuple[float, dict[str, Any], Estimate | None, tuple]:
            plan = orch.plan()  # the manifest is resolved here, before the clock
            estimate = plan.estimate if plan.known_durations else None  # None: no history
            started, began = time.perf_counter(), now()
            results = orch.run_build()
            return time.perf_counter() - started, results, estimate, (began, now())

        try:
            wall, results, estimate, span = timed()
        finally:
            orch.close()
    statuses: dict[str, int] = {}
    for result in results.values():
        statuses[result["status"]] = statuses.get(result["status"], 0) + 1
    notes = [", ".join(f"{n} {s}" for s, n in sorted(statuses.items())), overhead(project)]
    return Run(scheduling, 0, wall, notes, estimate=estimate, span=span)


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def chain_breakdown(project: Path, run: Run, chain: Estimate, sleeps: dict[str, float]) -> str:
    """Where the wall time went along the known critical path, from this run's run_results.json.

    head: build start to the chain's first node starting (in dbt); sleeps; dbt: each chain
    node's own time in dbt beyond its sleep; hand-offs: from one chain node's end (in dbt) to
    the next one's start (in dbt): the orchestrator's or dbt's queue, and waiting for a slot;
    tail: the chain's end to the build's end. They add up to the wall time.
    """
    data = json.loads((project / "target" / "run_results.json").read_text())
    spans = {}
    for row in data["results"]:
        times = [t for t in row["timing"] if t.get("started_at") and t.get("completed_at")]
        if times:
            start = min(datetime.datetime.fromisoformat(t["started_at"]) for t in times)
            end = max(datetime.datetime.fromisoformat(t["completed_at"]) for t in times)
            spans[row["unique_id"]] = (start.astimezone(datetime.UTC), end.astimezone(datetime.UTC))
    nodes = [step.unique_id for step in chain.critical_path]
    if run.span is None or any(u not in spans for u in nodes):
        return "no chain breakdown"
    began, ended = run.span
    sleep = sum(sleeps[u] for u in nodes)
    dbt = sum((spans[u][1] - spans[u][0]).total_seconds() for u in nodes) - sleep
    hand = sum((spans[b][0] - spans[a][1]).total_seconds() for a, b in pairwise(nodes))
    head = (spans[nodes[0]][0] - began).total_seconds()
    tail = (ended - spans[nodes[-1]][1]).total_seconds()
    return (
        f"chain of {len(nodes)}: head {head:.1f} + sleeps {sleep:.1f} + dbt {dbt:.1f} "
        f"+ hand-offs {hand:.1f} ({hand / max(len(nodes) - 1, 1):.3f} s each) "
        f"+ tail {tail:.1f} = {head + sleep + dbt + hand + tail:.1f} s"
    )


def overhead(project: Path) -> str:
    """The per-node cost around dbt the run learned: its history sample less dbt's time."""
    samples = json.loads((project / HISTORY).read_text())["samples"]
    dbt = run_results_timings(json.loads((project / "target" / "run_results.json").read_text()))
    gaps = [samples[u][-1] - dbt[u] for u in dbt if u in samples]
    if not gaps:
        return "no overhead figures"
    return f"learned per-node cost around dbt {statistics.median(gaps):.3f} s"


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
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the modes, interleaved")
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
        for number in range(1, args.rounds + 1):
            (project / HISTORY).unlink(missing_ok=True)  # critical_path: one history run
            for mode in modes:
                runs.append(timed_run(project, base, mode, number, n, bound, sleeps))
    report(runs, bound, n)
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


def timed_run(
    project: Path,
    base: dict[str, str],
    mode: str,
    number: int,
    n: int,
    chain: Estimate,
    sleeps: dict[str, float],
) -> Run:
    load = os.getloadavg()[0]
    print(f"== round {number}: {mode} (load average {load:.1f})", flush=True)
    env = {**base, "BENCH_PG_SCHEMA": f"bench_{mode}_{number}"}
    if mode == "plain":
        run = run_plain(project, env, n)
    else:
        run = run_per_node(project, env, n, mode)
    run.round, run.load = number, load
    run.notes.append(chain_breakdown(project, run, chain, sleeps))
    if run.estimate is not None:
        run.notes.append(
            f"estimate {run.estimate.wall_seconds:.1f} s, learned lower bound "
            f"{run.estimate.lower_bound_seconds:.1f} s"
        )
    print(f"   {run.wall:.1f} s; {'; '.join(run.notes)}", flush=True)
    return run


def report(runs: list[Run], bound: Estimate, n: int) -> None:
    """One row per run; ratios to the same round's plain build and to both lower bounds."""
    lower = bound.lower_bound_seconds
    print(
        f"\nlower bound from the known sleeps: {lower:.1f} s (critical path "
        f"{bound.critical_path_seconds:.1f} s, work / {n} {bound.total_seconds / n:.1f} s)"
    )
    print(
        "\n| round | run | load | wall s | x plain | x bound (sleeps) | learned bound | "
        "x learned bound | estimate | estimate error |"
    )
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in runs:
        plain = next((r.wall for r in runs if r.mode == "plain" and r.round == run.round), None)
        cells = [
            str(run.round),
            run.mode,
            f"{run.load:.1f}",
            f"{run.wall:.1f}",
            f"{run.wall / plain:.2f}" if plain else "",
            f"{run.wall / lower:.2f}",
        ]
        if run.estimate is not None:
            learned, expected = run.estimate.lower_bound_seconds, run.estimate.wall_seconds
            cells += [
                f"{learned:.1f}",
                f"{run.wall / learned:.2f}",
                f"{expected:.1f}",
                f"{(expected - run.wall) / run.wall:+.0%}",
            ]
        else:
            cells += ["", "", "", ""]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
