"""The dbt-orchestrator CLI, end to end on the example project, as a user runs it."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from integration.helpers import edit
from prefect.client.orchestration import get_client
from prefect.events.filters import EventFilter, EventNameFilter, EventRelatedFilter

EXAMPLE = Path(__file__).parents[2] / "examples" / "jaffle_shop_duckdb"
NODES = 28  # 3 seeds, 6 models (the ephemeral one excluded), 1 snapshot, 17 data tests, 1 unit test


@pytest.fixture
def example(tmp_path: Path) -> Path:
    """A clean copy of the example project, as in a fresh clone."""
    dest = tmp_path / "jaffle_shop_duckdb"
    shutil.copytree(
        EXAMPLE, dest, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*")
    )
    return dest


def cli(*args: str, cwd: Path, api_url: str | None = None, home: Path | None = None):
    """Run ``dbt-orchestrator`` in a subprocess with output piped (so: not a terminal)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "PREFECT_"))}
    if api_url:
        env["PREFECT_API_URL"] = api_url
    if home:
        env["PREFECT_HOME"] = str(home)
    exe = Path(sys.executable).parent / "dbt-orchestrator"
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=900
    )


def test_readme_command_builds_the_example_with_a_local_prefect_server(
    example: Path, tmp_path: Path
) -> None:
    # No API URL and an empty Prefect home: what a fresh machine has.
    proc = cli(
        "build",
        "--project-dir",
        str(example),
        "--mode",
        "per-node",
        cwd=tmp_path,
        home=tmp_path / "prefect-home",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "starting a local Prefect server" in out
    lines = [line for line in out.splitlines() if line.startswith("[")]
    assert len(lines) == NODES and lines[-1].startswith(f"[{NODES}/{NODES}]")
    assert any(" PASS    unit_test test_lifetime_value_ignores_returns" in line for line in lines)
    assert "\x1b[" not in out  # plain lines when not a terminal
    assert f"{NODES} success, 0 cached, 0 error, 0 skipped" in out
    assert (example / "jaffle_shop.duckdb").is_file()  # inside the project, not the cwd
    run_results = json.loads((example / "target" / "run_results.json").read_text())
    assert len(run_results["results"]) == NODES
    # The server we started records task runs in batches; none is lost when it stops.
    with contextlib.closing(sqlite3.connect(tmp_path / "prefect-home" / "prefect.db")) as con:
        recorded = con.execute("select state_type, count(*) from task_run group by 1").fetchall()
    assert recorded == [("COMPLETED", NODES)]
    # ...and it is not stopped mid-batch (its recorder then printed a traceback, though the
    # batch was written on the way out).
    assert "Traceback" not in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def parsed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the example for the in-process tests (parsed once, by the first of them)."""
    dest = tmp_path_factory.mktemp("cli") / "jaffle_shop_duckdb"
    shutil.copytree(
        EXAMPLE, dest, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*")
    )
    return dest


def run_main(*args: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """``main()`` in this process (argparse errors exit; that is the code they exit with)."""
    from prefect_dbt_orchestrator._cli import main

    monkeypatch.delenv("DBT_PROJECT_DIR", raising=False)  # main() sets it for dbt
    try:
        return main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)


def test_plan_prints_the_build_plan(parsed_example: Path, monkeypatch, capsys) -> None:
    code = run_main(
        "plan",
        "--project-dir",
        str(parsed_example),
        "-s",
        "+customers",
        "--exclude",
        "fct_payments",
        "--test-strategy",
        "deferred",
        "--vars",
        "{note: plan}",
        monkeypatch=monkeypatch,
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("BuildPlan: ")
    assert "model.jaffle_shop.customers [model, table]" in out
    assert "fct_payments" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["plan", "--select", "nosuchmethod:x"], "nosuchmethod"),
        (["build", "--vars", "[1, 2]"], "--vars must be a mapping"),
        (["build", "--proj", "."], "unrecognized arguments: --proj"),  # no abbreviations
        (["build", "--mode", "per-task"], "invalid choice: 'per-task'"),
    ],
)
def test_unusable_invocations_exit_2_with_a_message(
    parsed_example: Path, args, message, monkeypatch, capsys
) -> None:
    code = run_main(*args, "--project-dir", str(parsed_example), monkeypatch=monkeypatch)
    assert code == 2
    assert message in capsys.readouterr().err


def test_a_failing_build_exits_1_with_a_summary_and_lineage(example: Path, prefect_server) -> None:
    from prefect.settings import PREFECT_API_URL

    edit(
        example / "models/marts/orders.sql",
        "from {{ ref('stg_orders') }} as o",
        "from {{ ref('stg_orders') }} as o join no_such_table as x using (order_id)",
    )
    proc = cli("build", "--project-dir", str(example), cwd=example, api_url=PREFECT_API_URL.value())
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    assert "ERROR   model orders" in out
    assert "\nFailed:\n  model orders: " in out and "no_such_table" in out
    assert "  model customers: upstream failure (model orders)" in out
    assert "1 error" in out

    # The run's asset events, found through the flow run id run_results.json carries.
    run_results = json.loads((example / "target" / "run_results.json").read_text())
    flow_run_id = run_results["metadata"]["invocation_id"]
    materialized = _materializations(flow_run_id, expected=8)
    db = "duckdb://jaffle_shop/main"
    assert f"{db}/orders" not in materialized  # it failed
    # Through the ephemeral int_order_payments; the source is the table the seed loaded.
    assert materialized[f"{db}/fct_payments"] == {f"{db}/stg_payments", f"{db}/stg_orders"}
    assert materialized[f"{db}/stg_orders"] == {f"{db}/raw_orders"}


def _materializations(flow_run_id: str, expected: int) -> dict[str, set[str]]:
    event_filter = EventFilter(
        event=EventNameFilter(name=["prefect.asset.materialization.succeeded"]),
        related=EventRelatedFilter(id=[f"prefect.flow-run.{flow_run_id}"]),
    )
    found: dict[str, set[str]] = {}
    deadline = time.monotonic() + 120  # the server records in the background: a slow CI lags
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline and len(found) < expected:
            events = client.read_events(filter=event_filter, limit=50).events
            found = {e.resource.id: {r.id for r in e.related if r.role == "asset"} for e in events}
            time.sleep(0.5)
    return found


@pytest.fixture
def chain_manifest():
    from dbt_graph.testing import ManifestBuilder

    return ManifestBuilder().seed("raw").model("stg", depends_on=["raw"]).model("other").build()


def test_progress_lines_count_each_node_once_across_retries(chain_manifest) -> None:
    import io

    from dbt_graph import Command, ExecutionRequest
    from dbt_graph.testing import FakeExecutor
    from prefect_dbt_orchestrator._progress import Progress, ProgressExecutor

    stream = io.StringIO()
    progress = Progress(total=2, stream=stream)  # a StringIO is not a terminal: plain lines
    fake = FakeExecutor(chain_manifest, fail_times={"model.p.stg": 1})
    executor = ProgressExecutor(fake, progress)
    raw, stg = chain_manifest.node("seed.p.raw"), chain_manifest.node("model.p.stg")
    with progress:
        executor.execute(ExecutionRequest(command=Command.SEED, nodes=(raw,)))
        for _ in range(2):  # fails, then the retry passes
            executor.execute(ExecutionRequest(command=Command.RUN, nodes=(stg,)))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[1/2] OK      seed raw")
    assert lines[1].startswith("[2/2] ERROR   model stg") and "scripted failure" in lines[1]
    assert lines[2].startswith("[2/2] OK      model stg")
    assert progress.failures == 0 and progress.running == {}


def test_live_progress_renders_on_a_terminal(chain_manifest) -> None:
    import io

    from prefect_dbt_orchestrator._progress import Progress
    from rich.console import Console

    stream = io.StringIO()
    progress = Progress(total=2, stream=stream, interactive=True)
    with progress:
        progress.started([chain_manifest.node("model.p.stg"), chain_manifest.node("model.p.other")])
        Console(file=io.StringIO(), force_terminal=True).print(progress._render())
        progress.finished("model.p.stg", "model stg", "fail", "Got 3 results")
    assert "FAIL" in stream.getvalue() and "model stg Got 3 results" in stream.getvalue()
