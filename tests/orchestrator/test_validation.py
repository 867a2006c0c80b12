from __future__ import annotations

from pathlib import Path

import pytest
from dbt_graph import ExtraArgsError, Manifest, TestStrategy
from dbt_graph.testing import FakeExecutor
from prefect_dbt_orchestrator import (
    CacheConfig,
    ExecutionMode,
    PrefectDbtOrchestrator,
    PrefectDbtSettings,
)


def make(project: PrefectDbtSettings, manifest: Manifest, **kw) -> PrefectDbtOrchestrator:
    return PrefectDbtOrchestrator(settings=project, executor=FakeExecutor(manifest), **kw)


def test_defaults_match_the_guide(project, chain_manifest) -> None:
    orch = make(project, chain_manifest)
    assert orch.execution_mode is ExecutionMode.PER_WAVE
    assert orch.test_strategy is TestStrategy.IMMEDIATE
    assert orch.cache is None and orch.retries == 0 and orch.retry_delay_seconds == 30
    assert orch.create_summary_artifact and orch.raise_on_failure
    assert not orch.write_run_results and not orch.disable_assets


@pytest.mark.parametrize("mode", ["per_node", ExecutionMode.PER_NODE])
def test_mode_accepts_member_or_value(project, chain_manifest, mode) -> None:
    assert (
        make(project, chain_manifest, execution_mode=mode).execution_mode is ExecutionMode.PER_NODE
    )


def test_bad_mode_lists_valid_values(project, chain_manifest) -> None:
    with pytest.raises(ValueError, match="Must be one of: per_node, per_wave"):
        make(project, chain_manifest, execution_mode="sometimes")


def test_bad_strategy_lists_valid_values(project, chain_manifest) -> None:
    with pytest.raises(ValueError, match="Must be one of: immediate, deferred, skip"):
        make(project, chain_manifest, test_strategy="later")


def test_retries_need_per_node(project, chain_manifest) -> None:
    with pytest.raises(ValueError, match="Retries are only supported in PER_NODE"):
        make(project, chain_manifest, retries=2)
    assert make(project, chain_manifest, retries=0).retries == 0


def test_cache_needs_per_node(project, chain_manifest) -> None:
    with pytest.raises(ValueError, match="Caching is only supported in PER_NODE"):
        make(project, chain_manifest, cache=CacheConfig())


def test_cache_config_is_frozen() -> None:
    config = CacheConfig()
    with pytest.raises(AttributeError):
        config.expiration = None  # type: ignore[misc]


def test_callers_settings_are_never_mutated(project, chain_manifest, tmp_path: Path) -> None:
    before = project.model_dump()
    orch = make(project, chain_manifest, manifest_path="elsewhere/manifest.json")
    assert project.model_dump() == before
    assert orch.manifest_path == (project.project_dir / "elsewhere/manifest.json").absolute()
    assert orch.settings.target_path == orch.manifest_path.parent


def test_missing_explicit_manifest_is_file_not_found(project, chain_manifest) -> None:
    orch = make(project, chain_manifest, manifest_path="nope/manifest.json")
    with pytest.raises(FileNotFoundError, match="dbt parse"):
        orch.run_build()


def test_settings_default_profiles_dir_is_the_project_when_it_has_profiles(tmp_path: Path) -> None:
    (tmp_path / "profiles.yml").write_text("p: {}\n")
    assert PrefectDbtSettings(project_dir=tmp_path).profiles_dir == tmp_path


def test_settings_default_profiles_dir_falls_back_to_home_dbt(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert PrefectDbtSettings(project_dir=tmp_path).profiles_dir == Path.home() / ".dbt"


def test_settings_read_dbt_prefixed_environment(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("DBT_PROJECT_DIR", str(tmp_path))
    monkeypatch.setenv("DBT_TARGET_PATH", "out")
    settings = PrefectDbtSettings()
    assert settings.project_dir == tmp_path
    assert settings.resolved_target_path() == tmp_path / "out"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--select", "x"], "--select"),
        (["-s", "x"], "--select"),
        (["--models=x"], "--models"),
        (["--profiles-dir", "/tmp"], "--profiles-dir"),
        (["--full-refresh"], "full_refresh"),
        (["--target", "prod"], "target"),
        (["--threads", "8"], "threads"),
    ],
)
def test_blocked_and_first_class_flags_raise_before_anything_runs(
    project, chain_manifest, args, message
) -> None:
    executor = FakeExecutor(chain_manifest)
    orch = PrefectDbtOrchestrator(settings=project, executor=executor)
    with pytest.raises(ValueError, match=message):
        orch.run_build(extra_cli_args=args)
    assert executor.requests == []


class OwnFlagsExecutor(FakeExecutor):
    """An executor with flag rules of its own: it takes --threads and spells --empty its way."""

    def __init__(self, manifest: Manifest) -> None:
        super().__init__(manifest)
        self.checked: list[tuple[str, ...]] = []

    def validate_extra_args(self, args):
        self.checked.append(tuple(args))
        if "--store-failures" in args:
            raise ValueError("--store-failures: this executor stores failures itself")
        return tuple("--empty" if a == "--no-data" else a for a in args)


def test_an_executor_checks_its_own_flags_and_its_answer_is_passed_on(
    project, chain_manifest
) -> None:
    executor = OwnFlagsExecutor(chain_manifest)
    orch = PrefectDbtOrchestrator(settings=project, executor=executor)
    # --threads has a parameter in the guide's table, but this executor accepts it.
    orch.run_build(select="other", extra_cli_args=["--threads", "2", "--no-data"])
    assert executor.checked == [("--threads", "2", "--no-data")]
    assert {r.extra_args for r in executor.requests} == {("--threads", "2", "--empty")}
    ran = len(executor.requests)
    with pytest.raises(ValueError, match="stores failures itself"):
        orch.run_build(extra_cli_args=["--store-failures"])
    assert len(executor.requests) == ran  # refused before anything ran


def test_without_its_own_check_the_guides_table_applies(project, chain_manifest) -> None:
    executor = FakeExecutor(chain_manifest)
    assert not hasattr(executor, "validate_extra_args")
    with pytest.raises(ExtraArgsError) as info:
        PrefectDbtOrchestrator(settings=project, executor=executor).plan(extra_cli_args=["-sx"])
    assert info.value.flag == "--select"


class ClosingCounter(FakeExecutor):
    """A fake that counts how often it was closed."""

    closes = 0

    def close(self) -> None:
        self.closes += 1


class CountingWrapper:
    """Wraps the default executor as the CLI's progress display does, counting closes."""

    def __init__(self, inner) -> None:
        self.inner, self.closes = inner, 0

    def close(self) -> None:
        self.closes += 1
        self.inner.close()


def test_an_executor_passed_in_is_left_open(project, chain_manifest) -> None:
    executor = ClosingCounter(chain_manifest)
    with PrefectDbtOrchestrator(settings=project, executor=executor) as orch:
        orch.run_build(select="other")
    orch.close()
    assert not orch.owns_executor and executor.closes == 0


def test_the_executor_it_made_is_closed_on_close_and_on_leaving_with(project) -> None:
    from dbt_exec_core import DbtCoreExecutor

    orch = PrefectDbtOrchestrator(settings=project)
    assert orch.owns_executor and isinstance(orch.executor, DbtCoreExecutor)
    counter = CountingWrapper(orch.executor)
    orch.executor = counter
    with orch as entered:
        assert entered is orch
    assert counter.closes == 1
    orch.close()  # again: harmless, and the orchestrator stays usable
    assert counter.closes == 2
