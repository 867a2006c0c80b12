"""The orchestrator at scale: wall time, CPU and peak memory of the whole process tree (issue 16).

Usage::

    uv run python benchmarks/bench_scale.py [--models 200,2000] [--adapters duckdb,postgres]
        [--modes plain,per_wave,per_node,cached_rerun_all] [--concurrency 4]
        [--server tuned|default] [--leak-builds 10] [--leak-models 200] [--keep DIR]

For each size (one generated project, ``benchmarks/generate_project.py``) and adapter, every
row runs in a fresh Python process of its own, started by this driver, so that no row inherits
another's memory, threads or caches:

* **plain**: ``dbt build --threads 4`` after a ``dbt parse`` (so partial parsing is warm);
  its memory is the ``dbt`` process during the build;
* **per_wave**, **per_node** (``concurrency``), **cached_rerun** and **cached_rerun_all**:
  ``bench_orchestrator.run_orchestrated`` inside a Prefect flow against a Prefect server the
  row's process starts (``prefect_test_harness``); its memory is the whole tree: the flow's
  process, the executor's dbt zygote and workers, and the Prefect server;
* **fake_per_wave**, **fake_per_node**: the same with ``dbt_graph.testing.FakeExecutor``
  instead of dbt: what the orchestrator and Prefect cost per node, alone.
* **floor**: the tree before the orchestrator holds anything of a project: the flow's process
  with the orchestrator and the core executor imported and one trivial task run, and the idle
  Prefect server. Beside plain dbt's tree it is the least any row can measure, whatever the
  orchestrator does (its "x plain" is a lower bound of every row's memory ratio, before a dbt
  process exists).

Memory is sampled every 0.25 s during the timed part by a process of its own
(``_memory.TreeSampler``; its CPU is nobody's row's) and reported as peak summed PSS (RSS in
brackets; see ``_memory``). ``--leak-builds N`` then runs N
consecutive PER_NODE builds of a ``--leak-models`` project in one process, each in a new flow
with a new orchestrator, and reports the flow process's own memory after each.

Only the public API is used (``PrefectDbtOrchestrator``, ``plan``, ``run_build``), so the
script survives refactors of the orchestrator's insides.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil
from _memory import MIB, TreeSampler, tree_memory
from _postgres import temporary_postgres

HERE = Path(__file__).resolve().parent
DBT = Path(sys.executable).parent / "dbt"
MODES = (
    "plain",
    "per_wave",
    "per_node",
    "cached_rerun",
    "cached_rerun_all",
    "fake_per_wave",
    "fake_per_node",
    "floor",
)
TIME_TARGETS = {"per_wave": 1.0, "per_node": 1.1, "cached_rerun_all": 0.2}
MEMORY_TARGET = 1.5


# -- one row, in its own process -------------------------------------------------------------


def row_plain(project: Path, adapter: str) -> dict[str, Any]:
    """``dbt build --threads 4`` as a user runs it, after a warm-up ``dbt parse``."""
    dbt_args = ["--project-dir", str(project), "--profiles-dir", str(project), "--target", adapter]
    subprocess.run([str(DBT), "parse", *dbt_args], check=True, capture_output=True)
    if adapter == "duckdb":  # parsing may have created the file
        db = Path(os.environ["BENCH_DUCKDB_PATH"])
        for stale in db.parent.glob(db.name + "*"):
            stale.unlink()
    with tempfile.TemporaryFile("w+") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(DBT), "build", "--threads", "4", *dbt_args], stdout=out, stderr=subprocess.STDOUT
        )
        with TreeSampler(psutil.Process(proc.pid)) as sampler:
            times = _wait_for_cpu(proc)
        wall = time.perf_counter() - started
        out.seek(0)
        log = out.read()
    if proc.returncode != 0:
        raise RuntimeError(f"dbt build failed:\n{log[-3000:]}")
    done = [line.split("Done. ")[-1] for line in log.splitlines() if "Done. PASS=" in line]
    return {
        "wall": wall,
        "cpu_self": times,
        "peak": dataclasses.asdict(sampler.peak),
        "notes": done,
    }


def _wait_for_cpu(proc: subprocess.Popen[bytes]) -> float:
    """Wait for ``proc``; its CPU seconds (children included) from the kernel's accounting."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return usage.ru_utime + usage.ru_stime


def row_orchestrated(spec: dict[str, Any]) -> dict[str, Any]:
    """One orchestrator row: ``bench_orchestrator.run_orchestrated`` with memory sampled."""
    import contextlib

    from bench_orchestrator import run_orchestrated

    mode, adapter = spec["mode"], spec["adapter"]
    samplers: list[TreeSampler] = []

    def sampled(title: str) -> contextlib.AbstractContextManager[Any]:
        if "cache fill" in title:
            return contextlib.nullcontext()
        samplers.append(TreeSampler(psutil.Process()))
        return samplers[-1]

    cached = mode.startswith("cached_rerun")
    timed, filling = run_orchestrated(
        Path(spec["project"]),
        adapter,
        dict(os.environ),
        "per_node" if cached else mode,
        spec["concurrency"],
        Path(spec["root"]) / f"cache-{adapter}-{mode}" if cached else None,
        mode == "cached_rerun_all",
        sampled,
    )
    out = dataclasses.asdict(timed)
    out["peak"] = dataclasses.asdict(samplers[-1].peak)
    out["nodes"] = sum(timed.statuses.values())
    if filling is not None:
        out["notes"].append(f"cache fill {filling.wall:.1f} s")
    return out


def row_fake(spec: dict[str, Any]) -> dict[str, Any]:
    """The orchestrator and Prefect alone: ``dbt_graph.testing.FakeExecutor`` instead of dbt.

    Uses the manifest the plain row's ``dbt parse`` wrote, so run it after ``plain``.
    """
    from bench_orchestrator import cpu_snapshot, status_of
    from dbt_graph import load_manifest
    from dbt_graph.testing import FakeExecutor
    from prefect import flow
    from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

    project, mode = Path(spec["project"]), spec["mode"].removeprefix("fake_")
    me = psutil.Process()
    orch = PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
        executor=FakeExecutor(load_manifest(project / "target" / "manifest.json")),
        execution_mode=mode,
        concurrency=spec["concurrency"] if mode == "per_node" else None,
    )

    @flow(name=f"bench-fake-{mode}")
    def timed() -> dict[str, Any]:
        orch.plan()
        with TreeSampler(me) as sampler:
            before, started = cpu_snapshot(), time.perf_counter()
            results = orch.run_build()
            wall, after = time.perf_counter() - started, cpu_snapshot()
        statuses: dict[str, int] = {}
        for result in results.values():
            statuses[status_of(result)] = statuses.get(status_of(result), 0) + 1
        return {
            "wall": wall,
            "cpu_self": after["self"] - before["self"],
            "cpu_dbt": 0.0,
            "cpu_server": after["server"] - before["server"],
            "statuses": statuses,
            "nodes": len(results),
            "peak": dataclasses.asdict(sampler.peak),
            "notes": ["no dbt (FakeExecutor)"],
        }

    return timed()


def row_floor() -> dict[str, Any]:
    """The flow's process and the Prefect server with nothing of a project loaded."""
    import dbt_exec_core  # noqa: F401  (what a build imports: the executor's client side)
    from prefect import flow, task
    from prefect_dbt_orchestrator import PrefectDbtOrchestrator  # noqa: F401

    @task
    def trivial() -> int:
        return 1

    @flow(name="bench-floor")
    def floor() -> int:
        return trivial()

    floor()
    gc.collect()
    time.sleep(5)  # the server records the run
    pss, rss, by_kind = tree_memory(psutil.Process())
    peak = {"pss": pss, "rss": rss, "by_kind": by_kind, "samples": 1, "pss_readings": 1}
    return {
        "wall": 0.0,
        "cpu_self": 0.0,
        "cpu_dbt": 0.0,
        "cpu_server": 0.0,
        "nodes": 0,
        "peak": peak,
        "notes": ["nothing of a project loaded; no dbt process"],
    }


def row_leak(spec: dict[str, Any]) -> dict[str, Any]:
    """``builds`` consecutive PER_NODE builds in this process; memory after each."""
    from prefect import flow
    from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

    project, adapter = Path(spec["project"]), spec["adapter"]
    me = psutil.Process()
    after: list[dict[str, float]] = []

    @flow(name="bench-leak")
    def build() -> int:
        orch = PrefectDbtOrchestrator(
            settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
            execution_mode="per_node",
            concurrency=spec["concurrency"],
            threads=4,
        )
        try:
            return len(orch.run_build(target=adapter))
        finally:
            orch.executor.close()

    for _ in range(spec["builds"]):
        with TreeSampler(me) as sampler:
            nodes = build()
        gc.collect()
        info = me.memory_full_info()
        _, _, by_kind = tree_memory(me)
        after.append(
            {
                "nodes": nodes,
                "flow_rss": info.rss / MIB,
                "flow_uss": info.uss / MIB,
                "server_pss": by_kind.get("server", 0) / MIB,
                "tree_peak_pss": sampler.peak.pss / MIB,
            }
        )
        print(f"build {len(after)}: {after[-1]}", flush=True)
    return {"builds": after}


def run_row(spec_path: Path) -> None:
    """The entry point of a row's process: run it, write its JSON next to the spec."""
    spec = json.loads(spec_path.read_text())
    os.environ.update(spec["env"])
    if spec["mode"] == "plain":
        result = row_plain(Path(spec["project"]), spec["adapter"])
    else:
        from prefect.settings import temporary_settings
        from prefect.testing.utilities import prefect_test_harness
        from prefect_dbt_orchestrator._server import SERVER_DEFAULTS

        server = SERVER_DEFAULTS if spec["server"] == "tuned" else {}
        with (
            temporary_settings(set_defaults=server),
            prefect_test_harness(server_startup_timeout=300),
        ):
            if spec["mode"] == "leak":
                result = row_leak(spec)
            elif spec["mode"] == "floor":
                result = row_floor()
            elif spec["mode"].startswith("fake_"):
                result = row_fake(spec)
            else:
                result = row_orchestrated(spec)
    spec_path.with_suffix(".out.json").write_text(json.dumps(result))


# -- the driver ----------------------------------------------------------------------------------


def spawn(root: Path, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """Run one row in a fresh process; its output goes to ``root/logs/name.log``."""
    (root / "logs").mkdir(exist_ok=True)
    spec_path = root / "logs" / f"{name}.json"
    spec_path.write_text(json.dumps(spec))
    with (root / "logs" / f"{name}.log").open("w") as log:
        proc = subprocess.run(
            [sys.executable, __file__, "--row", str(spec_path)], stdout=log, stderr=log
        )
    if proc.returncode != 0:
        tail = (root / "logs" / f"{name}.log").read_text()[-2000:]
        raise RuntimeError(f"row {name} failed (exit {proc.returncode}):\n{tail}")
    return json.loads(spec_path.with_suffix(".out.json").read_text())


def row_env(adapter: str, name: str, root: Path, base: dict[str, str]) -> dict[str, str]:
    env = {**base, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    if adapter == "duckdb":
        db = root / "db" / f"{name}.duckdb"
        db.parent.mkdir(exist_ok=True)
        for stale in db.parent.glob(f"{name}.duckdb*"):
            stale.unlink()
        env["BENCH_DUCKDB_PATH"] = str(db)
    else:
        env["BENCH_PG_SCHEMA"] = name
    return env


def generate(root: Path, models: int) -> Path:
    project = root / f"project_{models}"
    subprocess.run(
        [sys.executable, str(HERE / "generate_project.py"), str(project), "--models", str(models)],
        check=True,
    )
    return project


def table(adapter: str, models: int, rows: dict[str, dict[str, Any]]) -> list[str]:
    plain = rows["plain"]
    lines = [
        "| database | models | run | wall s | x plain | target | CPU s: flow / dbt / server "
        "| flow CPU ms per node | peak memory MiB, PSS (RSS) = per process kind | x plain "
        "memory | x plain, server left out | statuses |",
        "| --- | ---: | --- | ---: | ---: | --- | --- | ---: | --- | ---: | ---: | --- |",
    ]
    for mode, row in rows.items():
        ratio = row["wall"] / plain["wall"]
        target = TIME_TARGETS.get(mode)
        verdict = f"<= {target} {'ok' if ratio <= target else 'MISSED'}" if target else ""
        wall = f"{row['wall']:.1f} | {ratio:.2f}"
        memory = row["peak"]["pss"] / plain["peak"]["pss"]
        # As in production, where the Prefect server runs elsewhere (at the tree's peak).
        serverless = (row["peak"]["pss"] - row["peak"]["by_kind"].get("server", 0)) / plain["peak"][
            "pss"
        ]
        peak = _describe(row["peak"])
        if mode == "plain":
            cpu, per_node = f"{row['cpu_self']:.1f} (dbt)", ""
        elif mode == "floor":
            cpu, per_node, wall = "", "", "- | -"
        else:
            cpu = f"{row['cpu_self']:.1f} / {row['cpu_dbt']:.1f} / {row['cpu_server']:.1f}"
            per_node = f"{row['cpu_self'] * 1000 / max(row['nodes'], 1):.1f}"
        mem_ok = "ok" if memory <= MEMORY_TARGET else "MISSED"
        mem_verdict = "" if mode == "plain" else f" ({mem_ok})"
        statuses = ", ".join(f"{n} {s}" for s, n in sorted(row.get("statuses", {}).items()))
        notes = "; ".join(filter(None, [statuses, *row.get("notes", [])]))
        lines.append(
            f"| {adapter} | {models:,} | {mode} | {wall} | {verdict} "
            f"| {cpu} | {per_node} | {peak} | {memory:.2f}{mem_verdict} | {serverless:.2f} "
            f"| {notes} |"
        )
    return lines


def _describe(peak: dict[str, Any]) -> str:
    kinds = " + ".join(f"{v / MIB:.0f} {k}" for k, v in sorted(peak["by_kind"].items()))
    return f"{peak['pss'] / MIB:,.0f} ({peak['rss'] / MIB:,.0f}) = {kinds}"


def leak_table(adapter: str, models: int, builds: list[dict[str, float]]) -> list[str]:
    lines = [
        f"{adapter}, {models} models: PER_NODE builds in one process",
        "| build | nodes | flow process RSS MiB | flow process USS MiB | Prefect server PSS MiB "
        "| tree peak PSS MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for i, b in enumerate(builds, 1):
        lines.append(
            f"| {i} | {b['nodes']} | {b['flow_rss']:.0f} | {b['flow_uss']:.0f} "
            f"| {b['server_pss']:.0f} | {b['tree_peak_pss']:.0f} |"
        )
    return lines


def bench(args: argparse.Namespace, root: Path, base: dict[str, str], adapter: str) -> list[str]:
    out: list[str] = []
    common = {"adapter": adapter, "concurrency": args.concurrency, "server": args.server}
    for models in args.models:
        project = generate(root, models)
        rows: dict[str, dict[str, Any]] = {}
        for mode in ["plain", *(m for m in args.modes if m != "plain")]:
            name = f"{adapter}_{models}_{mode}"
            print(f"== {name} ({_now()})", flush=True)
            env = row_env(adapter, name, root, base)
            spec = {**common, "mode": mode, "project": str(project), "root": str(root), "env": env}
            rows[mode] = spawn(root, name, spec)
            row = rows[mode]
            print(f"   {row['wall']:.1f} s, peak {_describe(row['peak'])}", flush=True)
        out.append("\n".join(table(adapter, models, rows)))
        print(out[-1], flush=True)
    if args.leak_builds:
        project = generate(root, args.leak_models)
        name = f"{adapter}_{args.leak_models}_leak"
        print(f"== {name} ({_now()})", flush=True)
        spec = {**common, "mode": "leak", "builds": args.leak_builds, "project": str(project)}
        env = row_env(adapter, name, root, base)
        result = spawn(root, name, {**spec, "root": str(root), "env": env})
        out.append("\n".join(leak_table(adapter, args.leak_models, result["builds"])))
        print(out[-1], flush=True)
    return out


def _now() -> str:
    return datetime.datetime.now().strftime("%H:%M:%S")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--row", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--models", default="200,2000")
    parser.add_argument("--adapters", default="duckdb,postgres")
    parser.add_argument("--modes", default="plain,per_wave,per_node,cached_rerun_all")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--server", choices=("default", "tuned"), default="tuned")
    parser.add_argument("--leak-builds", type=int, default=0)
    parser.add_argument("--leak-models", type=int, default=200)
    parser.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it")
    args = parser.parse_args()
    if args.row is not None:
        run_row(args.row)
        return
    args.models = [int(m) for m in args.models.split(",")]
    args.modes = args.modes.split(",")
    unknown = set(args.modes) - set(MODES)
    if unknown:
        parser.error(f"unknown mode(s) {', '.join(sorted(unknown))}; choose from {MODES}")
    root = (args.keep or Path(tempfile.mkdtemp(prefix="bench-scale-"))).absolute()
    root.mkdir(parents=True, exist_ok=True)
    print(
        f"{datetime.date.today()}: models {args.models}, modes {args.modes}, concurrency "
        f"{args.concurrency}, {args.server} server, {os.cpu_count()} CPUs, "
        f"{psutil.virtual_memory().total / 2**30:.0f} GiB, load average "
        f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}; work dir {root}",
        flush=True,
    )
    tables: list[str] = []
    for adapter in args.adapters.split(","):
        try:
            if adapter == "postgres":
                with temporary_postgres() as pg_env:
                    tables += bench(args, root, {**os.environ, **pg_env}, adapter)
            else:
                tables += bench(args, root, dict(os.environ), adapter)
        except Exception as exc:  # report and go on with the next adapter
            print(f"!! {adapter} failed: {type(exc).__name__}: {exc}", flush=True)
    print(f"\nload average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("\n\n".join(tables))
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
