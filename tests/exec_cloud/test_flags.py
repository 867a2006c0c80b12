"""DbtCloudExecutor.validate_extra_args: which extra dbt flags a dbt Cloud job step accepts."""

from __future__ import annotations

import logging
import pickle

import pytest
from dbt_exec_cloud import (
    ConfigurationError,
    DbtCloudCredentials,
    DbtCloudExecutor,
    InvalidCliArgsError,
)
from dbt_graph import Command, ExecutionRequest, NodeStatus


@pytest.fixture
def executor() -> DbtCloudExecutor:
    return DbtCloudExecutor(
        DbtCloudCredentials(api_key="dbc_x", account_id=1), project_id=10, environment_id=20
    )


@pytest.mark.parametrize(
    ("args", "flag", "advice"),
    [
        (["--select", "orders"], "--select", "selects exactly the requested nodes"),
        (["-s", "orders"], "--select", "select/exclude"),
        (["-sorders"], "--select", "select/exclude"),
        (["--select=orders"], "--select", "select/exclude"),
        (["-xs", "orders"], "--select", "select/exclude"),
        (["-m", "orders"], "--models", "select/exclude"),
        (["--models", "a", "b"], "--models", "select/exclude"),
        (["--exclude", "orders"], "--exclude", "select/exclude"),
        (["--selector", "nightly"], "--selector", "select/exclude"),
        (["--indirect-selection", "eager"], "--indirect-selection", "schedules tests itself"),
        (["--project-dir", "/p"], "--project-dir", "project_id"),
        (["--profiles-dir", "/p"], "--profiles-dir", "environment_id"),
        (["--profile", "shop"], "--profile", "generates the profile"),
        (["--target-path", "t"], "--target-path", "run_results.json"),
        (["--log-path", "logs"], "--log-path", "run's page"),
        (["--log-level", "debug"], "--log-level", "debug logs included"),
        (["--threads", "8"], "--threads", "DbtCloudExecutor(threads=N)"),
        (["--threads=8"], "--threads", "DbtCloudExecutor(threads=N)"),
        (["--target", "prod"], "--target", 'run_build(target="...")'),
        (["-t", "prod"], "--target", "job settings"),
        (["--full-refresh"], "--full-refresh", "run_build(full_refresh=True)"),
        (["-f"], "--full-refresh", "full_refresh"),
        (["--state", "prod-artifacts"], "--state", "defer_to_job_id"),
        (["--defer-state", "prod-artifacts"], "--defer-state", "deferral settings"),
    ],
)
def test_flags_that_make_no_sense_in_a_job_step_are_refused_saying_what_to_use(
    executor: DbtCloudExecutor, args: list[str], flag: str, advice: str
) -> None:
    with pytest.raises(InvalidCliArgsError) as caught:
        executor.validate_extra_args(["--empty", *args])
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, ConfigurationError)
    assert caught.value.flag == flag
    assert str(caught.value).startswith(f"Cannot pass {flag!r} to a dbt Cloud job step")
    assert advice in str(caught.value)
    assert pickle.loads(pickle.dumps(caught.value)).flag == flag


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--vars", "{day: mon}"],
        ["--vars", "--select"],  # the value of --vars, whatever it looks like
        ["--empty", "--warn-error", "--no-partial-parse"],
        ["--defer", "--favor-state"],
        ["--sel", "orders"],  # dbt does not expand abbreviations: it is not --select
        ["--log-level-file", "debug", "--log-format", "json"],
        ["--", "--select"],
    ],
)
def test_other_flags_pass_unchanged_as_a_tuple(executor: DbtCloudExecutor, args: list[str]) -> None:
    assert executor.validate_extra_args(args) == tuple(args)


@pytest.mark.parametrize(
    ("args", "flag"),
    [
        (["--resource-type", "model"], "--resource-type"),
        (["--exclude-resource-types", "test"], "--exclude-resource-type"),
        (["-x"], "--fail-fast"),
    ],
)
def test_caveat_flags_pass_with_a_logged_warning(
    executor: DbtCloudExecutor, caplog: pytest.LogCaptureFixture, args: list[str], flag: str
) -> None:
    with caplog.at_level(logging.WARNING, logger="dbt_exec_cloud"):
        assert executor.validate_extra_args(args) == tuple(args)
    assert f"Passing {flag!r}" in caplog.text


def test_arguments_must_be_strings(executor: DbtCloudExecutor) -> None:
    with pytest.raises(TypeError, match="must be strings"):
        executor.validate_extra_args(["--threads", 4])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not one string"):
        executor.validate_extra_args("--empty")


def test_execute_refuses_such_a_flag_as_an_invocation_error_without_calling_dbt_cloud(
    make_executor, fake
) -> None:
    executor = make_executor()
    executor.resolve_manifest()
    fake.calls.clear()
    node = fake.manifest.node("model.shop.orders")

    result = executor.execute(
        ExecutionRequest(command=Command.RUN, nodes=(node,), extra_args=("--threads", "2"))
    )

    assert result.error is not None and result.error.type == "InvalidCliArgsError"
    assert "DbtCloudExecutor(threads=N)" in result.error.message
    assert result.results["model.shop.orders"].status is NodeStatus.ERROR
    assert fake.calls == []
