"""PER_NODE inside a flow run and outside one, dbt taken out (``FakeExecutor``).

Usage::

    uv run python benchmarks/bench_outside_flow.py [--models 300] [--concurrency 4]

A wide project (one seed, ``--models`` models reading it, a test on each) is built twice, each
time in a fresh Python process against a Prefect server that process starts
(``prefect_test_harness``): once with ``run_build()`` called inside a flow, once outside any
flow. Only ``run_build()`` is timed. Outside a flow, each of Prefect's task runs is an orphan
that does more per run than a task run of a flow (``docs/prefect-dbt-orchestrator.md``,
"Speed").
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def one(models: int, concurrency: int, in_flow: bool) -> dict[str, float]:
    from dbt_graph.testing import FakeExecutor, ManifestBuilder
    from prefect import flow
    from prefect.testing.utilities import prefect_test_harness
    from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

    root = Path(tempfile.mkdtemp(prefix="bench-outside-flow-"))
    (root / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    (root / "profiles.yml").write_text("p: {}\n")
    builder = ManifestBuilder().seed("raw")
    for i in range(models):
        builder.model(f"m{i}", depends_on=["raw"]).test(f"not_null_m{i}", depends_on=[f"m{i}"])
    manifest = builder.build_file(root / "target")
    with prefect_test_harness(server_startup_timeout=120):
        orch = PrefectDbtOrchestrator(
            settings=PrefectDbtSettings(project_dir=root, profiles_dir=root),
            executor=FakeExecutor(manifest),
            execution_mode="per_node",
            concurrency=concurrency,
        )

        def timed() -> dict[str, float]:
            started = time.perf_counter()
            results = orch.run_build()
            return {"wall": time.perf_counter() - started, "nodes": len(results)}

        return flow(timed)() if in_flow else timed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--row", choices=("in_flow", "outside"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.row:
        row = one(args.models, args.concurrency, args.row == "in_flow")
        print("ROW " + json.dumps(row), flush=True)
        return
    print("| run_build() called | nodes | wall s | ms per node |")
    print("| --- | ---: | ---: | ---: |")
    for row in ("in_flow", "outside"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--row",
                row,
                "--models",
                str(args.models),
                "--concurrency",
                str(args.concurrency),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(next(line for line in out.splitlines() if line.startswith("ROW "))[4:])
        label = "in a flow" if row == "in_flow" else "outside any flow"
        print(
            f"| {label} | {result['nodes']} | {result['wall']:.1f} | "
            f"{1000 * result['wall'] / result['nodes']:.1f} |"
        )


if __name__ == "__main__":
    main()
