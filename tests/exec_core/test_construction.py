"""Constructing, describing and pickling a DbtCoreExecutor (no dbt is run here)."""

from __future__ import annotations

import pickle
from pathlib import Path

import dbt_exec_core
import pytest
from dbt_exec_core import (
    DbtCoreExecutor,
    DbtExecCoreError,
    InvalidCliArgsError,
    ProjectConfigError,
)
from dbt_graph import Command, ExecutionRequest, Executor
from exec_core.projects import Settings, make_project


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path, extra=False)


def test_all_lists_exactly_the_public_names():
    public = {n for n in vars(dbt_exec_core) if not n.startswith("_")}
    assert set(dbt_exec_core.__all__) == public - {"annotations"}
    assert list(dbt_exec_core.__all__) == sorted(dbt_exec_core.__all__)


@pytest.mark.parametrize(
    ("change", "missing"),
    [
        (lambda p: Settings(project_dir=p / "nope", profiles_dir=p), "nope"),
        (lambda p: Settings(project_dir=p / "models", profiles_dir=p), "dbt_project.yml"),
        (lambda p: Settings(project_dir=p, profiles_dir=p / "nope"), "nope"),
        (lambda p: Settings(project_dir=p, profiles_dir=p / "models"), "profiles.yml"),
    ],
    ids=["no project dir", "no dbt_project.yml", "no profiles dir", "no profiles.yml"],
)
def test_an_unusable_directory_is_a_clear_value_error(project, change, missing):
    with pytest.raises(ProjectConfigError) as info:
        DbtCoreExecutor(change(project))
    assert isinstance(info.value, ValueError) and isinstance(info.value, DbtExecCoreError)
    assert missing in str(info.value) and info.value.path.endswith(missing)
    assert "Pass settings" in str(info.value)


def test_target_path_is_relative_to_the_project(project):
    executor = DbtCoreExecutor(Settings(project_dir=project, profiles_dir=project))
    assert executor.paths.target_path == project / "target"
    absolute = DbtCoreExecutor(
        Settings(project_dir=project, profiles_dir=project, target_path=str(project / "out"))
    )
    assert absolute.paths.target_path == project / "out"


@pytest.mark.parametrize("kw", [{"threads": 0}, {"workers": -1}, {"node_timeout_seconds": 0}])
def test_non_positive_numbers_are_rejected(project, kw):
    with pytest.raises(ValueError, match=next(iter(kw))):
        DbtCoreExecutor(Settings(project_dir=project, profiles_dir=project), **kw)


def test_it_pickles_as_configuration_without_starting_anything(project):
    executor = DbtCoreExecutor(
        Settings(project_dir=project, profiles_dir=project),
        threads=2,
        target="prod",
        vars={"day": 1},
        state_path=project / "state",
    )
    clone = pickle.loads(pickle.dumps(executor))
    assert isinstance(clone, Executor)
    assert repr(clone) == repr(executor)
    assert clone._scheduler is None and executor._scheduler is None
    state = clone.__getstate__()
    assert state["_threads"] == 2 and state["_vars"] == {"day": 1}
    clone.close()
    clone.close()


def test_blocked_extra_args_are_refused_before_dbt_runs(project):
    executor = DbtCoreExecutor(Settings(project_dir=project, profiles_dir=project))
    request = ExecutionRequest(command=Command.RUN, nodes=(), extra_args=("--select", "x"))
    with pytest.raises(ValueError, match="--select"):
        executor.execute(request)
    assert executor._scheduler is None


def test_validate_extra_args_is_the_executors_flag_table(project):
    executor = DbtCoreExecutor(Settings(project_dir=project, profiles_dir=project))
    assert executor.validate_extra_args(["--vars", "{day: 1}"]) == ("--vars", "{day: 1}")
    with pytest.raises(InvalidCliArgsError, match="threads=N") as info:
        executor.validate_extra_args(["--threads", "8"])
    assert isinstance(info.value, ValueError) and info.value.flag == "--threads"
    assert executor._scheduler is None
