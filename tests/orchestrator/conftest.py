from __future__ import annotations

from pathlib import Path

import pytest
from dbt_graph import Manifest
from dbt_graph.testing import ManifestBuilder
from prefect_dbt_orchestrator import PrefectDbtSettings


@pytest.fixture
def project(tmp_path: Path) -> PrefectDbtSettings:
    """Settings for an (empty) dbt project directory; the fake executor never reads it."""
    (tmp_path / "dbt_project.yml").write_text("name: p\nprofile: p\n")
    (tmp_path / "profiles.yml").write_text("p: {}\n")
    return PrefectDbtSettings(project_dir=tmp_path, profiles_dir=tmp_path)


@pytest.fixture
def chain_manifest(tmp_path: Path) -> Manifest:
    """seed raw -> stg (tested) -> mart; and an independent branch other -> other_mart."""
    return (
        ManifestBuilder()
        .seed("raw")
        .model("stg", depends_on=["raw"])
        .test("not_null_stg_id", depends_on=["stg"])
        .model("mart", depends_on=["stg"], materialized="table")
        .model("other")
        .model("other_mart", depends_on=["other"], materialized="table")
        .test("warn_other", depends_on=["other"], severity="warn")
        .build_file(tmp_path / "target")
    )
