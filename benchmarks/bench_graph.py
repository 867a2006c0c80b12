"""Graph benchmark: load_manifest + select + build_plan on a generated 2,000-node project, and
select() against `dbt ls` for the same expressions.

Usage::

    uv run python benchmarks/bench_graph.py [--models 620] [--dir DIR] [--ls-runs 3]

Generates the project with generate_project.py (unless DIR already holds a parsed one), runs
`dbt parse`, then prints the median of repeated timings. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import dbt_graph
from dbt_graph import load_manifest, select
from generate_project import generate

EXPRESSIONS = (
    "tag:daily",
    "+model_7_3+",
    "layer_3,config.materialized:view",
    "@model_2_5",
    "path:models/layer_1 tag:finance",
)
_DBT = Path(sys.executable).parent / "dbt"


def median_seconds(run: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def dbt_ls(project: Path, expression: str) -> frozenset[str]:
    out = subprocess.run(
        [str(_DBT), "ls", "--select", expression, "--resource-type", "all", "--output", "json",
         "--output-keys", "unique_id", "--quiet", "--project-dir", str(project),
         "--profiles-dir", str(project)],
        cwd=project,
        env={**os.environ, "BENCH_DUCKDB_PATH": str(project / "bench.duckdb")},
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return frozenset(json.loads(line)["unique_id"] for line in out.splitlines() if line.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=620)
    parser.add_argument("--dir", type=Path, default=None, help="project directory to reuse")
    parser.add_argument("--ls-runs", type=int, default=3)
    args = parser.parse_args()

    project = args.dir or Path(tempfile.mkdtemp(prefix="bench-graph-")) / "bench"
    manifest_path = project / "target" / "manifest.json"
    if not manifest_path.exists():
        generate(project, models=args.models, seeds=10, sources=10, layers=8)
        subprocess.run(
            [str(_DBT), "parse", "--quiet", "--project-dir", str(project), "--profiles-dir",
             str(project)],
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

    build_plan = getattr(dbt_graph, "build_plan", None)
    load = median_seconds(lambda: load_manifest(manifest_path), 5)
    print(f"load_manifest: {load * 1000:.0f} ms")
    print(f"{'expression':<36} {'nodes':>5} {'select':>9} {'plan':>9} {'dbt ls':>8} {'ratio':>7}")
    for expression in EXPRESSIONS:
        # Each call builds its own caches, as a fresh process would: measure with a fresh
        # manifest object so cached graph maps do not flatter the figures.
        fresh = load_manifest(manifest_path)
        first = time.perf_counter()
        selected = select(fresh, expression, resource_types=["all"])
        cold = time.perf_counter() - first
        warm = median_seconds(lambda e=expression: select(manifest, e, resource_types=["all"]), 5)
        plan = (
            median_seconds(lambda s=selected: build_plan(manifest, s), 3) if build_plan else 0.0
        )
        ls_timings = []
        for _ in range(args.ls_runs):
            start = time.perf_counter()
            listed = dbt_ls(project, expression)
            ls_timings.append(time.perf_counter() - start)
        ls = statistics.median(ls_timings)
        assert listed == selected, f"select() and dbt ls disagree on {expression!r}"
        print(
            f"{expression:<36} {len(selected):>5} {cold * 1000:>6.1f} ms {plan * 1000:>6.1f} ms"
            f" {ls:>6.2f} s {ls / cold:>6.0f}x   (warm select {warm * 1000:.1f} ms)"
        )
        print(f"  load + select + plan: {(load + cold + plan) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
