"""``dbt-orchestrator build --data-aware`` as a user runs it: the final summary line says how
many nodes were skipped as unchanged and the dbt time their last real runs took."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).parents[2] / "examples" / "jaffle_shop_duckdb"
SAVED = re.compile(r"(\d+) node\(s\) skipped as unchanged, saving ([0-9.]+)s of dbt time\.")
CACHED = "Served from the orchestrator's cache"


def cli(*args: str, cwd: Path, api_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "PREFECT_"))}
    env |= {"PREFECT_API_URL": api_url, "PREFECT_HOME": str(home)}  # the cache lives in home
    exe = Path(sys.executable).parent / "dbt-orchestrator"
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def finished_line(out: str) -> str:
    (line,) = [line for line in out.splitlines() if line.startswith("Finished in ")]
    return line


def test_the_summary_line_reports_what_data_aware_caching_saved(
    tmp_path: Path, prefect_server
) -> None:
    from prefect.settings import PREFECT_API_URL

    example = tmp_path / "jaffle_shop_duckdb"
    shutil.copytree(
        EXAMPLE,
        example,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*"),
    )
    run_results = example / "target" / "run_results.json"
    runs: list[dict[str, dict]] = []  # each build's run_results.json entries, by unique_id

    def build() -> tuple[str, dict[str, dict]]:
        proc = cli(
            "build",
            "--project-dir",
            str(example),
            "--mode",
            "per-node",
            "--data-aware",
            cwd=example,
            api_url=PREFECT_API_URL.value(),
            home=tmp_path / "home",
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        results = json.loads(run_results.read_text())["results"]
        runs.append({r["unique_id"]: r for r in results})
        return finished_line(proc.stdout), runs[-1]

    # The seeds load the tables the sources read: the first build has nothing to serve, and
    # fingerprints its sources before they exist, so the second rebuilds what they feed.
    line, _ = build()
    assert "skipped as unchanged" not in line
    build()
    line, last = build()
    served = {u for u, r in last.items() if (r["message"] or "").startswith(CACHED)}
    match = SAVED.search(line)
    assert match is not None, line
    assert int(match.group(1)) == len(served)
    assert f"{len(served)} cached" in line

    # New rows in one source: what it feeds runs, the rest is served, and the line says so.
    with duckdb.connect(str(example / "jaffle_shop.duckdb")) as con:
        con.execute(
            "insert into main.raw_payments select id + 1000, order_id, method, 0 "
            "from main.raw_payments limit 1"
        )
    line, rerun = build()
    match = SAVED.search(line)
    assert match is not None, line
    again = {u for u, r in rerun.items() if (r["message"] or "").startswith(CACHED)}
    assert 0 < len(again) < len(served)
    assert int(match.group(1)) == len(again)
    # The time saved is what those nodes took when they last really ran.
    took = sum(_last_real_time(u, runs) for u in again)
    assert float(match.group(2)) == pytest.approx(took, abs=0.051)


def _last_real_time(uid: str, runs: list[dict[str, dict]]) -> float:
    """dbt's execution time of the last run of ``uid`` that really ran it."""
    for run in reversed(runs):
        result = run.get(uid)
        if result is not None and not (result["message"] or "").startswith(CACHED):
            return result["execution_time"]
    raise AssertionError(f"{uid} never really ran in the runs looked at")
