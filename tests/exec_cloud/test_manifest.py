"""Manifest resolution: from the deferred-to job or an ephemeral compile, cached durably."""

from __future__ import annotations

import gc
import json
import re
import shlex
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from dbt_exec_cloud import ArtifactNotFoundError, ResponseError, RunFailedError, RunTimeoutError
from dbt_graph import load_manifest
from exec_cloud.fake_cloud import PRODUCTION_JOB, FakeDbtCloud

COMPILE = [
    "POST /jobs/",
    "POST /jobs/{id}/run/",
    "GET /runs/{id}/",
    "GET /runs/{id}/",
    "GET /runs/{id}/artifacts/manifest.json",
    "DELETE /jobs/{id}/",
]


def test_without_defer_an_ephemeral_compile_job_builds_it(
    make_executor, fake: FakeDbtCloud, tmp_path: Path
) -> None:
    executor = make_executor()
    path = executor.resolve_manifest()

    assert fake.routes() == COMPILE
    assert fake.steps() == ["dbt compile"]
    (create,) = (c for c in fake.calls if c.route == "POST /jobs/")
    assert re.fullmatch(
        r"prefect-orchestrator-[0-9a-f]{12}-compile-[0-9a-f]{12}", create.body["name"]
    )
    assert fake.active_jobs() == []
    assert path.is_relative_to(tmp_path / "manifests")
    assert path.read_bytes() == fake.manifest_bytes
    assert "model.shop.orders" in load_manifest(path).nodes


def test_with_defer_the_jobs_latest_manifest_is_fetched(make_executor, fake: FakeDbtCloud) -> None:
    fake.add_production_job()
    executor = make_executor(defer_to_job_id=PRODUCTION_JOB)

    path = executor.resolve_manifest(target="prod", vars={"x": 1})

    assert fake.routes() == ["GET /jobs/{id}/artifacts/manifest.json"]
    assert fake.calls[0].path == f"/jobs/{PRODUCTION_JOB}/artifacts/manifest.json"
    assert path.parent.name == f"job-{PRODUCTION_JOB}"
    assert path.parts[-5:-1] == ("account-1", "project-10", "environment-20", "job-777")
    assert path.read_bytes() == fake.manifest_bytes


def test_it_is_fetched_once_per_executor(make_executor, fake: FakeDbtCloud) -> None:
    executor = make_executor()
    first = executor.resolve_manifest()
    calls = len(fake.calls)
    assert executor.resolve_manifest() == first
    assert len(fake.calls) == calls


def test_concurrent_first_calls_fetch_once(make_executor, fake: FakeDbtCloud) -> None:
    executor = make_executor()
    with ThreadPoolExecutor(max_workers=4) as pool:
        paths = list(pool.map(lambda _: executor.resolve_manifest(), range(4)))
    assert len(set(paths)) == 1
    assert fake.steps() == ["dbt compile"]


def test_the_file_outlives_the_executor_and_a_new_one_refreshes_it(
    make_executor, fake: FakeDbtCloud
) -> None:
    executor = make_executor()
    path = executor.resolve_manifest()
    executor.close()
    del executor
    gc.collect()
    assert path.is_file()

    make_executor().resolve_manifest()
    assert fake.steps() == ["dbt compile", "dbt compile"]


def test_target_and_vars_shape_the_compile_and_get_their_own_file(
    make_executor, fake: FakeDbtCloud
) -> None:
    executor = make_executor(threads=2)
    plain = executor.resolve_manifest()
    tuned = executor.resolve_manifest(target="ci", vars={"day": "mon"})

    assert plain != tuned
    step = fake.steps()[1]
    tokens = shlex.split(step)
    assert tokens[:4] == ["dbt", "compile", "--threads", "2"]
    assert json.loads(tokens[tokens.index("--vars") + 1]) == {"day": "mon"}
    create = [c for c in fake.calls if c.route == "POST /jobs/"][1]
    assert create.body["settings"] == {"threads": 2, "target_name": "ci"}


def test_a_compile_that_fails_raises_and_deletes_its_job(make_executor, fake: FakeDbtCloud) -> None:
    fake.force_status, fake.omit_artifacts = 20, True
    fake.run_status_message = "Compilation Error in model orders"
    with pytest.raises(RunFailedError, match="Compilation Error in model orders") as caught:
        make_executor().resolve_manifest()
    assert "defer_to_job_id" in str(caught.value)
    assert caught.value.status == "error"
    assert fake.active_jobs() == []


def test_a_compile_that_times_out_is_cancelled_and_raises(
    make_executor, fake: FakeDbtCloud
) -> None:
    fake.never_finish = True
    with pytest.raises(RunTimeoutError, match="did not finish within 30 s") as caught:
        make_executor(timeout_seconds=30).resolve_manifest()
    assert isinstance(caught.value, TimeoutError)
    assert "POST /runs/{id}/cancel/" in fake.routes()
    assert fake.active_jobs() == []


def test_a_deferred_job_without_a_successful_run_says_so(make_executor, fake) -> None:
    with pytest.raises(ArtifactNotFoundError, match="at least one successful run"):
        make_executor(defer_to_job_id=4242).resolve_manifest()


def test_a_manifest_dbt_graph_cannot_read_is_a_response_error(make_executor, fake) -> None:
    fake.add_production_job(manifest=b'{"metadata": {"dbt_schema_version": "nope"}}')
    with pytest.raises(ResponseError, match="cannot be read"):
        make_executor(defer_to_job_id=PRODUCTION_JOB).resolve_manifest()


def test_execute_resolves_the_manifest_itself_when_needed(
    make_executor, fake: FakeDbtCloud
) -> None:
    from dbt_graph import Command, ExecutionRequest

    executor = make_executor()
    node = fake.manifest.node("model.shop.orders")
    result = executor.execute(ExecutionRequest(command=Command.RUN, nodes=(node,)))
    assert result.success
    assert fake.steps()[0] == "dbt compile"


def test_an_unwritable_manifest_dir_says_so(make_executor, tmp_path: Path) -> None:
    from dbt_exec_cloud import ConfigurationError

    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(ConfigurationError, match="writable manifest_dir"):
        make_executor(manifest_dir=blocker).resolve_manifest()
