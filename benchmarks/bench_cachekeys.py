"""Benchmark dbt-cachekeys on a synthetic 2,000-node manifest.

    uv run python benchmarks/bench_cachekeys.py [--nodes 2000] [--repeat 5]

The manifest is synthesised here (deterministically): sources, seeds with CSV files on disk,
staging/intermediate/mart models (some ephemeral, some incremental), snapshots, data tests, and
about 500 macros calling each other, including materialization macros with their own closures
(as dbt's built-in macros do). It prints the time to compute every key (seed files read, every
macro hashed), to predict a plan against an empty and a full local key store, and to record
every node.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt_cachekeys import (
    CachePolicy,
    CacheSession,
    KeySet,
    LocalKeyStore,
    ProjectFiles,
    compute_keys,
    predict,
)
from dbt_graph import Manifest, parse_manifest
from dbt_graph.testing import ManifestBuilder

MATERIALIZATIONS = ("view", "table", "incremental", "seed", "snapshot", "test")


def synthesise(nodes: int, project: Path, rng: random.Random) -> Manifest:
    """A manifest of about ``nodes`` nodes, with seed CSVs written under ``project``."""
    b = ManifestBuilder(package="bench")
    n_sources, n_seeds = nodes // 40, nodes // 20
    n_snapshots, n_tests = nodes // 40, nodes * 3 // 10
    n_models = nodes - n_sources - n_seeds - n_snapshots - n_tests

    helpers = [f"m{i:03d}" for i in range(400)]
    for i, name in enumerate(helpers):
        deps = [f"macro.bench.{helpers[j]}" for j in rng.sample(range(i), min(i, 3))]
        b.macro(
            name, f"{{% macro {name}() %}} {name} {'x' * 400} {{% endmacro %}}", depends_on=deps
        )
    for mat in MATERIALIZATIONS:
        name = f"materialization_{mat}_default"
        deps = [f"macro.bench.{h}" for h in rng.sample(helpers, 20)]
        b.macro(name, f"{{% materialization {mat} %}} {'y' * 2000}", depends_on=deps)

    sources = []
    for i in range(n_sources):
        b.source("app", f"t{i}", warn_after=(12, "hour"))
        sources.append(f"app.t{i}")
    seeds = []
    (project / "seeds").mkdir(parents=True)
    for i in range(n_seeds):
        name = f"seed_{i}"
        rows = "\n".join(f"{r},{rng.random()}" for r in range(300))
        (project / "seeds" / f"{name}.csv").write_text(f"id,value\n{rows}\n")
        b.seed(name)
        seeds.append(name)

    models: list[str] = []
    for i in range(n_models):
        name = f"model_{i}"
        layer = i * 3 // n_models  # 0 staging, 1 intermediate, 2 marts
        if layer == 0:
            deps = [rng.choice(sources), rng.choice(seeds)]
        else:
            deps = rng.sample(models, min(len(models), rng.randint(1, 4)))
        materialized = rng.choices(
            ["view", "table", "ephemeral", "incremental"], weights=[5, 4, 1, 1]
        )[0]
        macros = [f"macro.bench.{h}" for h in rng.sample(helpers, rng.randint(0, 4))]
        code = f"select * from x -- {name} {'z' * rng.randint(200, 2000)}"
        b.model(
            name,
            depends_on=deps,
            materialized=materialized,
            macros=macros,
            code=code,
            config={"tags": ["daily"], "meta": {"owner": f"team{i % 7}"}, "schema": "marts"},
        )
        models.append(name)
    for i in range(n_snapshots):
        b.snapshot(f"snap_{i}", depends_on=[rng.choice(models)])
    for i in range(n_tests):
        b.test(f"test_{i}", depends_on=[rng.choice(models)], macros=["macro.bench.m000"])
    return parse_manifest(b.build_dict())


def timed(fn: Any, repeat: int) -> tuple[float, float, Any]:
    """Median wall-clock and CPU seconds of ``repeat`` calls, and the last result."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        result = fn()
        cpus.append(time.process_time() - cpu)
        walls.append(time.perf_counter() - wall)
    return statistics.median(walls), statistics.median(cpus), result


def ms(wall: float, cpu: float) -> str:
    return f"{wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU"


def record_all(keys: KeySet, store: LocalKeyStore, now: datetime) -> None:
    session = CacheSession(keys, store, selected=keys, policy=CachePolicy())
    for uid in keys:
        if not session.check(uid, now=now).hit:
            session.record_success(uid, finished_at=now)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-cachekeys-"))
    try:
        start = time.perf_counter()
        manifest = synthesise(args.nodes, root / "project", random.Random(42))
        built = time.perf_counter() - start
        reader = ProjectFiles(root / "project", root_package="bench")
        now = datetime(2025, 6, 1, tzinfo=UTC)
        print(
            f"manifest: {len(manifest.nodes)} nodes, {len(manifest.macros)} macros "
            f"(synthesised and parsed in {built:.2f}s)"
        )

        wall, cpu, keys = timed(
            lambda: compute_keys(manifest, read_file=reader, target="dev", vars={"x": 1}),
            args.repeat,
        )
        print(f"compute_keys: {len(keys)} keys in {ms(wall, cpu)} (median of {args.repeat})")

        store = LocalKeyStore(root / "store")
        wall, cpu, _ = timed(lambda: predict(keys, store, selected=keys, now=now), args.repeat)
        print(f"predict, empty local store: {ms(wall, cpu)}")

        start = time.perf_counter()
        record_all(keys, store, now)
        t_record = time.perf_counter() - start
        print(
            f"check + record_success for every node (fsync'd writes): {t_record:.2f}s wall "
            f"({t_record / len(keys) * 1000:.2f} ms per node)"
        )

        wall, cpu, plan = timed(lambda: predict(keys, store, selected=keys, now=now), args.repeat)
        hits = sum(d.hit for d in plan.values())
        print(f"predict, full local store: {ms(wall, cpu)} ({hits} hits)")
        print(f"(load average while running: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
