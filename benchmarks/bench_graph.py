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
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
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

    build_plan = getattr(dbt_graph, "build_plan", None)
    load, _ = measure(lambda: load_manifest(manifest_path), 5)
    print(f"load_manifest: {load}")
    for expression in EXPRESSIONS:
        # A fresh manifest object per run: select() builds the parent/child maps, as it would
        # in a new process.
        fresh = iter([load_manifest(manifest_path) for _ in range(3)])
        chosen, selected = measure(
            lambda e=expression, f=fresh: select(next(f), e, resource_types=["all"]), 3
        )
        warm, _ = measure(lambda e=expression: select(manifest, e, resource_types=["all"]), 5)
        plan, _ = (
            measure(lambda s=selected: build_plan(manifest, s), 3)
            if build_plan
            else (Timing(0.0, 0.0), None)
        )
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


if __name__ == "__main__":
    main()
