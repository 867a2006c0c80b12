"""``manifest_path`` means no parse: the default executor runs from the pre-built manifest."""

from __future__ import annotations

import logging
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest
from conftest import dbt_cli
from integration.helpers import query, statuses
from prefect_dbt_orchestrator import ExecutionMode, PrefectDbtOrchestrator

pytestmark = pytest.mark.slow

EXECUTED = 34  # as test_duckdb_build: the default selector's executable nodes and tests
_INVOCATION = re.compile(r"invocation \d+ on worker \d+: (\w+),")


@pytest.fixture(scope="module")
def prebuilt(shop: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop project's manifest from the dbt CLI (a CI artifact); then the project gets a
    model dbt cannot parse, so any `dbt parse` of it would fail."""
    dbt_cli("deps", project=shop)
    dbt_cli("parse", project=shop)
    artifact = tmp_path_factory.mktemp("ci") / "manifest.json"
    shutil.move(shop / "target" / "manifest.json", artifact)
    shutil.rmtree(shop / "target")
    (shop / "models" / "unparsable.sql").write_text("select {{ ref( }}\n")
    return artifact


@pytest.mark.parametrize("mode", [ExecutionMode.PER_NODE, ExecutionMode.PER_WAVE])
def test_manifest_path_builds_without_parsing(
    fresh_db: Path, settings, prebuilt: Path, orchestrators, caplog, mode
) -> None:
    caplog.set_level(logging.DEBUG, logger="dbt_exec_core")
    orch = PrefectDbtOrchestrator(settings=settings, manifest_path=prebuilt, execution_mode=mode)
    orchestrators.append(orch)
    results = orch.run_build()
    assert statuses(results)["success"] == EXECUTED, results
    found = (_INVOCATION.match(r.getMessage()) for r in caplog.records)
    invocations = Counter(m.group(1) for m in found if m)
    assert invocations["parse"] == 0 and invocations["deps"] == 0, invocations
    assert invocations["load"] <= 1  # once per module: later runs reuse the object it built
    orch.executor.close()
    assert query(fresh_db, "select count(*) from orders") == [(7,)]
