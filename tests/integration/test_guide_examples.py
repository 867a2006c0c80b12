"""Every code example of the user guide (orchestrator-guide.md), run with only its imports changed.

The examples run in order in one namespace, as a reader would paste them, against a copy of the
shop project laid out the way they name it (``./my_dbt_project``, ``./analytics``,
``~/.dbt/profiles.yml``, ``./prod_artifacts``). ``settings`` is the reader's own settings object.
"""

from __future__ import annotations

import asyncio
import shutil
import textwrap
from pathlib import Path
from typing import Any

import prefect_dbt_orchestrator
import pytest
import respx
from conftest import copy_shop_project, dbt_cli
from exec_cloud.fake_cloud import TOKEN, FakeDbtCloud

# The guide's examples, verbatim but for the import lines
# (`prefect_dbt`, `prefect_dbt.core._orchestrator`, `prefect_dbt.core._executor`,
# `prefect_dbt.cloud` -> `prefect_dbt_orchestrator`).
QUICK_START = """
from pathlib import Path
from prefect import flow
from prefect_dbt_orchestrator import PrefectDbtSettings
from prefect_dbt_orchestrator import PrefectDbtOrchestrator, ExecutionMode


@flow
def run_dbt_build():
    settings = PrefectDbtSettings(
        project_dir=Path("./my_dbt_project"),
        profiles_dir=Path.home() / ".dbt",
    )

    orchestrator = PrefectDbtOrchestrator(
        settings=settings,
        execution_mode=ExecutionMode.PER_NODE,
        concurrency=4,           # max 4 nodes running in parallel
        threads=2,               # dbt threads within each node
        retries=3,               # each node retries up to 3 times
        retry_delay_seconds=60,
    )

    # manifest.json is auto-generated if not found
    results = orchestrator.run_build(select="tag:daily")

    by_status = {}
    for r in results.values():
        by_status[r["status"]] = by_status.get(r["status"], 0) + 1
    print(f"Results: {by_status}")
"""

FRAGMENTS = [
    """
from prefect_dbt_orchestrator import DbtCoreExecutor

orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    executor=DbtCoreExecutor(settings, run_deps=False),
)
""",
    """
orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    execution_mode=ExecutionMode.PER_WAVE,
)
""",
    """
orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    execution_mode=ExecutionMode.PER_NODE,
    retries=2,
    concurrency=4,
)
""",
    """
from prefect_dbt_orchestrator import PrefectDbtOrchestrator, TestStrategy

orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    test_strategy=TestStrategy.IMMEDIATE,  # default
)
""",
    """
from datetime import timedelta
from prefect_dbt_orchestrator import (
    PrefectDbtOrchestrator,
    CacheConfig,
    ExecutionMode,
)

orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    execution_mode=ExecutionMode.PER_NODE,
    cache=CacheConfig(
        expiration=timedelta(hours=24),  # invalidate after 24h
    ),
)
""",
    """
from pathlib import Path

# Option 1: local path
orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    execution_mode=ExecutionMode.PER_NODE,
    cache=CacheConfig(
        result_storage=Path("/tmp/dbt-results"),
        key_storage=Path("/tmp/dbt-cache-keys"),
    ),
)

# Option 2: block slug (block must be saved in Prefect)
orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    execution_mode=ExecutionMode.PER_NODE,
    cache=CacheConfig(
        result_storage="s3-bucket/my-results-block",
        key_storage="s3-bucket/my-cache-keys-block",
    ),
)
""",
    """
orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    execution_mode=ExecutionMode.PER_NODE,
    cache=CacheConfig(
        use_source_freshness_expiration=True,  # overrides expiration per node
    ),
)
""",
    """
from prefect_dbt_orchestrator import (
    PrefectDbtOrchestrator,
    ExecutionMode,
    CacheConfig,
)

orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    execution_mode=ExecutionMode.PER_NODE,
    cache=CacheConfig(),
)

plan = orchestrator.plan(select="tag:daily")
print(plan)
""",
    """
orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    create_summary_artifact=True,   # default — set False to disable
    write_run_results=True,         # write run_results.json to target_path
)
""",
    """
orchestrator = PrefectDbtOrchestrator(
    settings=settings,
    execution_mode=ExecutionMode.PER_NODE,
    disable_assets=True,
)
""",
    """
results = orchestrator.run_build(
    select="tag:daily",
    target="prod",
)
""",
    """
results = orchestrator.run_build(
    select="tag:daily",
    extra_cli_args=["--vars", '{"run_date": "2024-01-15"}', "--no-partial-parse"],
)
""",
]

# Top-level `async with` runs inside a coroutine here (that part is the reader's harness).
READ_ARTIFACTS = """
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

async with get_client() as client:
    artifacts = await client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["dbt-orchestrator-summary"])),
    )
"""

STATE_BASED = """
@flow
def run_ci_incremental():
    orchestrator = PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(project_dir=Path("./analytics")),
        state_path=Path("./prod_artifacts"),
        defer=True,
        execution_mode=ExecutionMode.PER_WAVE,
    )
    return orchestrator.run_build(select="state:modified+")
"""

CREDENTIALS = """
from prefect_dbt_orchestrator import DbtCloudCredentials

# Option 1: create inline
credentials = DbtCloudCredentials(
    api_key="dbc_your_api_key_here",
    account_id=12345,
)

# Option 2: load a saved block
credentials = DbtCloudCredentials.load("my-dbt-cloud-creds")
"""

CLOUD_QUICK_START = """
from pathlib import Path
from prefect import flow
from prefect_dbt_orchestrator import PrefectDbtSettings
from prefect_dbt_orchestrator import DbtCloudCredentials, DbtCloudExecutor
from prefect_dbt_orchestrator import PrefectDbtOrchestrator, ExecutionMode


@flow
def run_dbt_cloud_build():
    credentials = DbtCloudCredentials.load("my-dbt-cloud-creds")

    executor = DbtCloudExecutor(
        credentials=credentials,
        project_id=123456,
        environment_id=654321,
        defer_to_job_id=789012,  # fetch manifest from this job's last run
    )

    orchestrator = PrefectDbtOrchestrator(
        executor=executor,
        settings=PrefectDbtSettings(
            project_dir=Path("./my_dbt_project"),
            profiles_dir=Path.home() / ".dbt",
        ),
        execution_mode=ExecutionMode.PER_NODE,
        concurrency=4,
        retries=2,
        retry_delay_seconds=30,
    )

    return orchestrator.run_build(select="tag:daily")
"""


@pytest.fixture(scope="module")
def reader_dir(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A working directory laid out as the guide assumes, with both targets seeded."""
    base = tmp_path_factory.mktemp("guide")
    project = copy_shop_project(base)
    project = project.rename(base / "my_dbt_project")
    home = base / "home"
    (home / ".dbt").mkdir(parents=True)
    shutil.copy(project / "profiles.yml", home / ".dbt" / "profiles.yml")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
        mp.chdir(base)
        dbt_cli("deps", project=project)
        dbt_cli("seed", project=project)
        dbt_cli("seed", "--target", "prod", project=project)
        (base / "analytics").symlink_to(project)
        dbt_cli("parse", "--target-path", str(base / "prod_artifacts"), project=project)
        yield base


def _namespace(base: Path) -> dict[str, Any]:
    ns: dict[str, Any] = {
        name: getattr(prefect_dbt_orchestrator, name) for name in prefect_dbt_orchestrator.__all__
    }
    ns["settings"] = prefect_dbt_orchestrator.PrefectDbtSettings(
        project_dir=base / "my_dbt_project"
    )
    return ns


def _run(code: str, ns: dict[str, Any]) -> None:
    exec(compile(textwrap.dedent(code), "<guide example>", "exec"), ns)


@pytest.mark.usefixtures("prefect_server")
def test_every_guide_example_runs(reader_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ns = _namespace(reader_dir)
    made: list[Any] = []
    try:
        _run(QUICK_START, ns)
        ns["run_dbt_build"]()
        assert "Results: {'success':" in capsys.readouterr().out
        for fragment in FRAGMENTS:
            _run(fragment, ns)
            made.append(ns["orchestrator"])
            if "print(plan)" in fragment:
                assert str(ns["plan"]).startswith("BuildPlan: ")
                assert "(cache: " in capsys.readouterr().out
        assert {r["status"] for r in ns["results"].values()} == {"success"}

        ns_async: dict[str, Any] = dict(ns)
        body = textwrap.indent(textwrap.dedent(READ_ARTIFACTS), "    ")
        _run(f"async def _read():\n{body}\n    return artifacts\n", ns_async)
        assert isinstance(asyncio.run(ns_async["_read"]()), list)

        _run(STATE_BASED, ns)
        assert ns["run_ci_incremental"]() == {}  # nothing modified since prod_artifacts
    finally:
        for orch in made:
            orch.executor.close()


@pytest.mark.usefixtures("prefect_server")
def test_dbt_cloud_guide_examples_run_against_a_fake_dbt_cloud(reader_dir: Path) -> None:
    ns = _namespace(reader_dir)
    prefect_dbt_orchestrator.DbtCloudCredentials(api_key=TOKEN, account_id=1).save(
        "my-dbt-cloud-creds", overwrite=True
    )
    manifest = reader_dir / "prod_artifacts" / "manifest.json"
    fake = FakeDbtCloud(manifest, polls_until_done=-1, project_id=123456, environment_id=654321)
    fake.add_production_job(789012)
    with respx.mock(assert_all_called=False, assert_all_mocked=False) as router:
        router.route(host="cloud.getdbt.com").mock(side_effect=fake.router.handler)
        router.route().pass_through()
        _run(CREDENTIALS, ns)
        assert ns["credentials"].account_id == 1
        _run(CLOUD_QUICK_START, ns)
        results = ns["run_dbt_cloud_build"]()
    assert results and {r["status"] for r in results.values()} == {"success"}
    assert fake.active_jobs() == []  # every ephemeral job was deleted
