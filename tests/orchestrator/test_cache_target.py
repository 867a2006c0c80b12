"""Cache keys use the target dbt would run against: the profile's, rendered, when none is given."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_graph import ProfileError
from dbt_graph.testing import FakeExecutor
from prefect_dbt_orchestrator import CacheConfig, PrefectDbtOrchestrator, PrefectDbtSettings

pytestmark = pytest.mark.usefixtures("prefect_server")

PROFILES = """\
p:
  target: "{{ env_var('DBT_TARGET') }}"
  outputs:
    dev: {type: duckdb}
    prod: {type: duckdb}
"""


@pytest.fixture
def templated(project: PrefectDbtSettings) -> PrefectDbtSettings:
    (project.project_dir / "profiles.yml").write_text(PROFILES)
    (project.project_dir / "seeds").mkdir()
    (project.project_dir / "seeds" / "raw.csv").write_text("id\n1\n")  # the seed's key reads it
    return project


def orchestrator(settings, manifest, tmp_path: Path) -> PrefectDbtOrchestrator:
    return PrefectDbtOrchestrator(
        settings=settings,
        executor=FakeExecutor(manifest),
        execution_mode="per_node",
        cache=CacheConfig(result_storage=tmp_path / "results", key_storage=tmp_path / "keys"),
    )


def predictions(orch: PrefectDbtOrchestrator, **kw) -> dict[str, str]:
    plan = orch.plan(**kw)
    assert plan.cache_predictions is not None
    return {uid: p for uid, p in plan.cache_predictions.items() if p != "excluded"}


def test_the_key_uses_the_rendered_target_of_the_profile(
    templated, chain_manifest, tmp_path, monkeypatch
) -> None:
    orch = orchestrator(templated, chain_manifest, tmp_path)
    monkeypatch.setenv("DBT_TARGET", "dev")
    orch.run_build()
    assert set(predictions(orch).values()) == {"hit"}
    # The same target named explicitly shares the keys.
    assert set(predictions(orch, target="dev").values()) == {"hit"}
    # Another value of the variable is another target: nothing built for dev is served.
    monkeypatch.setenv("DBT_TARGET", "prod")
    plan = orch.plan()
    assert set(predictions(orch).values()) == {"miss"}
    assert all("target" in " ".join(plan.cache_reasons[u]) for u in predictions(orch))


def test_an_unrenderable_target_is_a_clear_error_not_a_literal_key(
    templated, chain_manifest, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("DBT_TARGET", raising=False)
    orch = orchestrator(templated, chain_manifest, tmp_path)
    with pytest.raises(ProfileError, match="'DBT_TARGET', which is not set"):
        orch.plan()
    # Naming the target is the way out.
    assert orch.plan(target="dev").cache_predictions
