"""Graph benchmark: load_manifest + select + build_plan on a generated 2,000-node project, and
select() against `dbt ls` for the same expressions; a plan of 10,000 nodes with cache predictions.

Usage::

    uv run python benchmarks/bench_graph.py [--models 620] [--dir DIR] [--ls-runs 3]
    uv run python benchmarks/bench_graph.py --big-plan [--models 3120] [--dir DIR]

Generates the project with generate_project.py (unless DIR already holds a parsed one), runs
`dbt parse`, then prints the median of repeated timings. ``--big-plan`` times, instead, what
``PrefectDbtOrchestrator.plan()`` does on a 10,000-node project (3,120 models): load the
manifest, select, build the plan and predict the cache (``dbt_cachekeys.compute_keys`` and
``predict`` against an empty and a full ``LocalKeyStore``), each step and in total. Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dbt_cachekeys import (
    CachePolicy,
    CacheSession,
    LocalKeyStore,
    ProjectFiles,
    compute_keys,
    predict,
)
from dbt_graph import (
    ExecutionPlan,
    Node,
    ResourceType,
    TestStrategy,
    Wave,
    build_plan,
    critical_path,
    estimate_wall_time,
    load_manifest,
    parse_manifest,
    select,
)
from generate_project import generate

EXPRESSIONS = (
    "tag:daily",
    "+model_7_3+",
    "layer_3,config.materialized:view",
    "@model_2_5",
    "path:models/layer_1 tag:finance",
)
_DBT = Path(sys.executable).parent / "dbt"


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # this process plus finished children: what an idle machine would take

    def __str__(self) -> str:
        return f"{_fmt(self.wall)} wall, {_fmt(self.cpu)} CPU"


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(run: Callable[[], object], repeat: int) -> tuple[Timing, object]:
    """Median wall and CPU time over ``repeat`` runs, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), _cpu()
        result = run()
        walls.append(time.perf_counter() - wall)
        cpus.append(_cpu() - cpu)
    return Timing(statistics.median(walls), statistics.median(cpus)), result


def dbt_ls(project: Path, expression: str) -> frozenset[str]:
    out = subprocess.run(
        [
            str(_DBT),
            "ls",
            "--select",
            expression,
            "--resource-type",
            "all",
            "--output",
            "json",
            "--output-keys",
            "unique_id",
            "--quiet",
            "--project-dir",
            str(project),
            "--profiles-dir",
            str(project),
        ],
        cwd=project,
        env={**os.environ, "BENCH_DUCKDB_PATH": str(project / "bench.duckdb")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return frozenset(json.loads(line)["unique_id"] for line in out.splitlines() if line.strip())


def scheduling_timing(nodes: int = 10_000, rng_seed: int = 0) -> str:
    """critical_path() + estimate_wall_time() on a synthetic layered plan of ``nodes`` models.

    The plan is built directly (each model reads 1-3 of the 200 models before it, durations
    skewed between 0.05 and 30 s), so no dbt project of that size is needed.
    """
    rng = random.Random(rng_seed)
    ids = [f"model.bench.n{i}" for i in range(nodes)]
    deps = {
        uid: tuple(sorted(rng.sample(ids[max(0, i - 200) : i], min(i, rng.randint(1, 3)))))
        for i, uid in enumerate(ids)
    }
    level: dict[str, int] = {}
    for uid in ids:
        level[uid] = 1 + max((level[d] for d in deps[uid]), default=-1)
    waves = [[] for _ in range(max(level.values()) + 1)]
    for uid in ids:
        waves[level[uid]].append(uid)
    order = [uid for wave in waves for uid in wave]
    node = {
        u: Node(unique_id=u, name=u, resource_type=ResourceType.MODEL, package_name="bench")
        for u in ids
    }
    plan = ExecutionPlan(
        nodes={u: node[u] for u in order},
        dependencies={u: deps[u] for u in order},
        phases=(tuple(order),),
        waves=tuple(Wave(number=i, nodes=tuple(node[u] for u in w)) for i, w in enumerate(waves)),
        test_strategy=TestStrategy.IMMEDIATE,
    )
    seconds = {uid: 0.05 + 30 * rng.random() ** 4 for uid in ids}
    path, _ = measure(lambda: critical_path(plan, seconds), 3)
    both, estimate = measure(lambda: estimate_wall_time(plan, seconds, concurrency=4), 3)
    edges = sum(len(d) for d in deps.values())
    return (
        f"critical_path, {nodes:,} nodes ({edges:,} edges, {len(waves)} waves): {path}; "
        f"estimate_wall_time at concurrency 4 (critical path included): {both} "
        f"(estimate {estimate.wall_seconds:.0f} s, bound {estimate.lower_bound_seconds:.0f} s)"
    )


def plan_with_predictions(
    manifest_path: Path, project: Path, expression: str | None, store: LocalKeyStore
) -> tuple[int, int]:
    """What ``PrefectDbtOrchestrator.plan()`` computes with a cache configured, from a file."""
    manifest = load_manifest(manifest_path)
    selected = select(manifest, expression)
    plan = build_plan(manifest, selected)
    keys = compute_keys(
        manifest,
        read_file=ProjectFiles(project, root_package=manifest.project_name),
        target="duckdb",
        vars={},
    )
    # Unit tests are never predicted (the orchestrator leaves them out of the cache session).
    cachable = [
        uid
        for uid, node in plan.nodes.items()
        if uid in keys and node.resource_type is not ResourceType.UNIT_TEST
    ]
    decisions = predict(keys, store, selected=cachable, now=_NOW, policy=CachePolicy())
    return len(plan.nodes), sum(d.hit for d in decisions.values())


def big_plan(project: Path, manifest_path: Path, store_dir: Path, repeat: int = 3) -> None:
    """Each step of a plan with cache predictions, and all of them from the file, timed."""
    manifest = load_manifest(manifest_path)
    files = ProjectFiles(project, root_package=manifest.project_name)
    cold = ColdCopies(manifest_path, store_dir / "copies")
    load, _ = measure(lambda: load_manifest(cold.path()), repeat)
    fresh = iter([load_manifest(cold.path()) for _ in range(repeat)])
    chosen, selected = measure(lambda: select(next(fresh), None), repeat)
    plan, planned = measure(lambda: build_plan(manifest, selected), repeat)
    keyed, keys = measure(
        lambda: compute_keys(manifest, read_file=files, target="duckdb", vars={}), repeat
    )
    # Under the project's name, where the orchestrator's CacheConfig(key_storage=...) looks.
    store = LocalKeyStore(store_dir / manifest.project_name)
    empty, _ = measure(lambda: predict(keys, store, selected=keys, now=_NOW), repeat)
    session = CacheSession(keys, store, selected=keys, policy=CachePolicy())
    for uid in keys:  # fill the store, as a finished run leaves it
        if not session.check(uid, now=_NOW).hit:
            session.record_success(uid, finished_at=_NOW)
    full, _ = measure(lambda: predict(keys, store, selected=keys, now=_NOW), repeat)
    print(f"nodes planned: {len(planned.nodes)} in {len(planned.waves)} waves; {len(keys)} keys")
    print(f"  load_manifest:                 {load}")
    print(f"  select (every node, cold):     {chosen}")
    print(f"  build_plan:                    {plan}")
    print(f"  compute_keys:                  {keyed}")
    print(f"  predict, empty key store:      {empty}")
    print(f"  predict, full key store:       {full}")
    sys.stdout.flush()
    # The totals in a process of their own, as a flow's process computes a plan: this one now
    # holds several 10,000-node manifests, key sets and plans, which no flow's process does.
    subprocess.run(
        [sys.executable, __file__, "--dir", str(project), "--totals", str(store_dir)], check=True
    )


def totals(project: Path, manifest_path: Path, store_dir: Path, repeat: int = 3) -> None:
    """All of a plan from the file, and ``plan()`` itself (``store_dir``: the key storage that
    :func:`big_plan` filled)."""
    manifest_name = load_manifest(manifest_path).project_name
    cold = ColdCopies(manifest_path, store_dir / "copies-totals")
    for label, expression in (("everything", None), ("tag:daily", "tag:daily")):
        for kind, directory in (
            ("empty", store_dir / "none"),
            ("full", store_dir / manifest_name),
        ):
            total, (n, hits) = measure(
                lambda e=expression, d=directory: plan_with_predictions(
                    cold.path(), project, e, LocalKeyStore(d)
                ),
                repeat,
            )
            print(
                f"  all of it from the file, {label}, {kind} key store: {total} "
                f"({n} nodes, {hits} predicted hits)"
            )
    orchestrator_plan(project, cold, store_dir, repeat)


class ColdCopies:
    """A copy of the manifest at a new path for each call: ``load_manifest`` shares a manifest
    between loads of one file while it is in use, and these timings are of a first load."""

    def __init__(self, manifest_path: Path, directory: Path) -> None:
        self.manifest_path, self.directory = manifest_path, directory
        self.made = 0

    def path(self) -> Path:
        self.made += 1
        copy = self.directory / str(self.made) / "manifest.json"
        copy.parent.mkdir(parents=True)
        shutil.copyfile(self.manifest_path, copy)
        return copy


def orchestrator_plan(project: Path, cold: ColdCopies, store_dir: Path, repeat: int) -> None:
    """``PrefectDbtOrchestrator.plan()`` itself, with a cache, dbt replaced by ``FakeExecutor``
    (``store_dir``: the ``key_storage`` that ``big_plan`` filled).

    Also with the cyclic collector left running during the call (the orchestrator pauses it),
    to show what the pause saves, side by side.
    """
    import contextlib

    from dbt_graph.testing import FakeExecutor
    from prefect_dbt_orchestrator import (
        CacheConfig,
        PrefectDbtOrchestrator,
        PrefectDbtSettings,
        _orchestrator,
    )

    def fakes() -> Iterator[tuple[Path, FakeExecutor]]:
        """Made before the clock starts; the fake's manifest is parsed apart, so that
        plan()'s own load is a first one."""
        for _ in range(repeat):
            path = cold.path()
            yield path, FakeExecutor(parse_manifest(json.loads(path.read_bytes()), path=path))

    def plan_once(kind: str, made: Iterator[tuple[Path, FakeExecutor]]) -> object:
        path, fake = next(made)
        orch = PrefectDbtOrchestrator(
            settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
            manifest_path=path,
            executor=fake,
            execution_mode="per_node",
            cache=CacheConfig(
                key_storage=store_dir if kind == "full" else store_dir / "none",
                result_storage=store_dir / "results",
            ),
        )
        return orch.plan(target="duckdb")

    paused = _orchestrator.collector_paused
    for label, pause in (("collector paused (as shipped)", paused), ("collector running", None)):
        _orchestrator.collector_paused = pause or contextlib.nullcontext  # type: ignore[assignment]
        try:
            for kind in ("empty", "full"):
                made = iter(list(fakes()))
                timing, plan = measure(lambda k=kind, m=made: plan_once(k, m), repeat)
                hits = sum(v == "hit" for v in (plan.cache_predictions or {}).values())  # type: ignore[attr-defined]
                print(f"  plan() with a cache, {kind} key store, {label}: {timing} ({hits} hits)")
        finally:
            _orchestrator.collector_paused = paused


_NOW = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=None, help="620; 3,120 with --big-plan")
    parser.add_argument("--dir", type=Path, default=None, help="project directory to reuse")
    parser.add_argument("--ls-runs", type=int, default=3)
    parser.add_argument("--big-plan", action="store_true", help="the 10,000-node plan")
    parser.add_argument("--totals", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.totals:  # big_plan's second half, in a fresh process
        totals(args.dir, args.dir / "target" / "manifest.json", args.totals)
        return
    args.models = args.models or (3120 if args.big_plan else 620)

    project = args.dir or Path(tempfile.mkdtemp(prefix="bench-graph-")) / "bench"
    manifest_path = project / "target" / "manifest.json"
    if not manifest_path.exists():
        generate(project, models=args.models, seeds=10, sources=10, layers=8)
        subprocess.run(
            [
                str(_DBT),
                "parse",
                "--quiet",
                "--project-dir",
                str(project),
                "--profiles-dir",
                str(project),
            ],
            cwd=project,
            env={**os.environ, "BENCH_DUCKDB_PATH": str(project / "bench.duckdb")},
            check=True,
        )
    manifest = load_manifest(manifest_path)
    kinds: dict[str, int] = {}
    for node in manifest.nodes.values():
        kinds[node.resource_type.value] = kinds.get(node.resource_type.value, 0) + 1
    print(f"project: {project}")
    counts = ", ".join(f"{v} {k}" for k, v in sorted(kinds.items()))
    print(f"nodes: {len(manifest.nodes)} ({counts})")
    print(f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}, {os.cpu_count()} CPUs")
    if args.big_plan:
        store_dir = Path(tempfile.mkdtemp(prefix="bench-keys-"))
        try:
            big_plan(project, manifest_path, store_dir)
        finally:
            shutil.rmtree(store_dir, ignore_errors=True)
        return

    copies = Path(tempfile.mkdtemp(prefix="bench-graph-copies-"))
    cold = ColdCopies(manifest_path, copies)
    load, _ = measure(lambda: load_manifest(cold.path()), 5)
    print(f"load_manifest: {load}")
    print(scheduling_timing())
    for expression in EXPRESSIONS:
        # A fresh manifest object per run: select() builds the parent/child maps, as it would
        # in a new process.
        fresh = iter([load_manifest(cold.path()) for _ in range(3)])
        chosen, selected = measure(
            lambda e=expression, f=fresh: select(next(f), e, resource_types=["all"]), 3
        )
        warm, _ = measure(lambda e=expression: select(manifest, e, resource_types=["all"]), 5)
        plan, _ = measure(lambda s=selected: build_plan(manifest, s), 3)
        ls, listed = measure(lambda e=expression: dbt_ls(project, e), args.ls_runs)
        assert listed == selected, f"select() and dbt ls disagree on {expression!r}"
        print(f"\n{expression!r}: {len(selected)} nodes")
        print(f"  select (cold, maps built): {chosen}; warm: {warm}")
        print(f"  build_plan (waves):        {plan}")
        total = Timing(load.wall + chosen.wall + plan.wall, load.cpu + chosen.cpu + plan.cpu)
        print(f"  load + select + plan:      {total}")
        print(f"  dbt ls:                    {ls}")
        print(
            f"  dbt ls / select:           {ls.wall / max(chosen.wall, 1e-6):.0f}x wall, "
            f"{ls.cpu / max(chosen.cpu, 1e-6):.0f}x CPU"
        )
    shutil.rmtree(copies, ignore_errors=True)


if __name__ == "__main__":
    main()
