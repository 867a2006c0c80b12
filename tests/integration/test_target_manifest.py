"""``target/manifest.json`` after every build, with real dbt on DuckDB (issue 13, item 1).

Teams upload it from production and hand it to CI as ``--state``: the guide's "State-based
execution (CI/CD)" example, run against a copy of what a production build left, must build
exactly ``state:modified+`` (checked against ``dbt ls`` on the same state). Production runs the
profile's default target here, as the example's CI run does: this project's sources read
``target.schema``, so against another target's manifest dbt finds every node modified.
"""

from __future__ import annotations

import json
import shutil
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import prefect_dbt_orchestrator
import pytest
from conftest import copy_shop_project, dbt_cli
from integration.helpers import edit
from integration.test_guide_examples import STATE_BASED
from prefect_dbt_orchestrator import ExecutionMode, PrefectDbtOrchestrator, PrefectDbtSettings
from prefect_dbt_orchestrator._cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]


@pytest.fixture
def workdir(tmp_path: Path) -> Iterator[Path]:
    """A working directory with the shop project as ``./analytics`` (the guide's layout)."""
    project = copy_shop_project(tmp_path).rename(tmp_path / "analytics")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(tmp_path)
        mp.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
        mp.delenv("DBT_PROJECT_DIR", raising=False)
        yield tmp_path


def _build(project: Path, mode: ExecutionMode, **kw: Any) -> dict[str, dict[str, Any]]:
    orch = PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(project_dir=project),
        execution_mode=mode,
        create_summary_artifact=False,
        disable_assets=True,
    )
    with orch:
        return orch.run_build(**kw)


def _schemas(manifest: Path) -> set[str]:
    nodes = json.loads(manifest.read_text())["nodes"].values()
    return {n["schema"] for n in nodes if n["resource_type"] == "model"}


@pytest.mark.parametrize("mode", [ExecutionMode.PER_WAVE, ExecutionMode.PER_NODE])
def test_each_build_leaves_the_manifest_of_its_own_target(workdir: Path, mode) -> None:
    project = workdir / "analytics"
    manifest = project / "target" / "manifest.json"
    _build(project, mode, target="prod")
    assert _schemas(manifest) == {"prod"}
    _build(project, mode, select="raw_customers")
    assert _schemas(manifest) == {"main"}  # the dev target's, the profile's default


def test_the_cli_build_leaves_the_manifest(workdir: Path, monkeypatch) -> None:
    project = workdir / "analytics"
    monkeypatch.setenv("DBT_PROJECT_DIR", str(project))  # the CLI sets it; restored after
    code = main(["build", "--project-dir", str(project), "--select", "raw_customers"])
    assert code == 0
    assert _schemas(project / "target" / "manifest.json") == {"main"}


def test_the_guides_ci_example_builds_what_production_left_modified(workdir: Path) -> None:
    project = workdir / "analytics"
    prod = _build(project, ExecutionMode.PER_WAVE)
    assert {r["status"] for r in prod.values()} == {"success"}
    # What a team uploads from production and downloads in CI.
    (workdir / "prod_artifacts").mkdir()
    shutil.copy(project / "target" / "manifest.json", workdir / "prod_artifacts")
    edit(
        project / "models" / "staging" / "stg_customers.sql", "country", "upper(country) as country"
    )

    expected = _dbt_ls_modified(project, workdir / "prod_artifacts")
    assert "model.shop.stg_customers" in expected and len(expected) > 1  # + its descendants

    ns: dict[str, Any] = {n: getattr(prefect_dbt_orchestrator, n) for n in ["ExecutionMode"]}
    ns.update(PrefectDbtOrchestrator=PrefectDbtOrchestrator, PrefectDbtSettings=PrefectDbtSettings)
    exec(compile("from pathlib import Path\nfrom prefect import flow\n", "<imports>", "exec"), ns)
    exec(compile(textwrap.dedent(STATE_BASED), "<guide example>", "exec"), ns)
    results = ns["run_ci_incremental"]()
    assert set(results) == expected
    assert {r["status"] for r in results.values()} == {"success"}


def _dbt_ls_modified(project: Path, state: Path) -> set[str]:
    """What dbt itself selects for ``state:modified+``: models, seeds, snapshots and tests."""
    out = dbt_cli(
        "ls",
        "--select",
        "state:modified+",
        "--state",
        str(state),
        "--resource-type",
        "model",
        "seed",
        "snapshot",
        "test",
        "unit_test",
        "--output",
        "json",
        "--output-keys",
        "unique_id",
        "config",
        "--quiet",
        project=project,
    )
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    # Ephemeral models are never run on their own: dbt compiles them into their children.
    return {r["unique_id"] for r in rows if r.get("config", {}).get("materialized") != "ephemeral"}
