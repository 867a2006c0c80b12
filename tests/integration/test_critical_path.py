"""Critical path first and concurrency keys with real dbt on PostgreSQL (issue 15).

A small warehouse-bound project: a chain of three slow models (``pg_sleep``) beside quick
independent models that come first in plan order. The first build, in plan order, learns how
long each node takes; the second, one node at a time, starts the chain first.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from dbt_graph import ConcurrencyKey
from prefect_dbt_orchestrator import PrefectDbtOrchestrator, PrefectDbtSettings

pytestmark = [pytest.mark.postgres, pytest.mark.slow, pytest.mark.usefixtures("prefect_server")]

QUICK = [f"a_quick_{i}" for i in range(4)]
CHAIN = ["z_chain_0", "z_chain_1", "z_chain_2"]
SLOW = "select 1 as id from pg_sleep(0.8)"


def _project(root: Path, server: Any) -> Path:
    project = root / "warehouse"
    (project / "models").mkdir(parents=True)
    (project / "dbt_project.yml").write_text(
        "name: warehouse\nversion: '1.0.0'\nconfig-version: 2\nprofile: warehouse\n"
        "models:\n  warehouse:\n    +materialized: table\n"
    )
    (project / "profiles.yml").write_text(
        "warehouse:\n  target: pg\n  outputs:\n    pg:\n      type: postgres\n"
        f"      host: {server.host}\n      port: {server.port}\n      user: {server.user}\n"
        f"      password: ''\n      dbname: {server.dbname}\n"
        f"      schema: cp_{uuid.uuid4().hex[:8]}\n      threads: 4\n"
    )
    models = project / "models"
    for name in QUICK:
        (models / f"{name}.sql").write_text("{{ config(tags=['quick']) }}\nselect 1 as id\n")
    (models / "z_chain_0.sql").write_text(SLOW + "\n")
    for parent, child in pairwise(CHAIN):
        (models / f"{child}.sql").write_text(
            f"select id from {{{{ ref('{parent}') }}}} cross join pg_sleep(0.8)\n"
        )
    return project


def _orchestrator(project: Path, **kw: Any) -> PrefectDbtOrchestrator:
    return PrefectDbtOrchestrator(
        settings=PrefectDbtSettings(project_dir=project, profiles_dir=project),
        execution_mode="per_node",
        create_summary_artifact=False,
        disable_assets=True,
        **kw,
    )


def _build(project: Path, **kw: Any) -> dict[str, dict[str, Any]]:
    with _orchestrator(project, **kw) as orch:
        return orch.run_build()


def _started(results: dict[str, dict[str, Any]]) -> list[str]:
    order = sorted(results, key=lambda u: results[u]["timing"]["started_at"])
    return [uid.rsplit(".", 1)[-1] for uid in order]


def test_the_second_build_starts_the_slow_chain_first(tmp_path: Path, postgres_server) -> None:
    project = _project(tmp_path, postgres_server)
    first = _build(project, concurrency=1, scheduling="plan_order")
    with _orchestrator(project) as orch:
        plan_order = [n.name for wave in orch.plan().waves for n in wave.nodes]
    assert plan_order[0] != CHAIN[0]  # else this test would show nothing
    assert _started(first) == plan_order
    history = json.loads((project / "target" / "orchestrator-durations.pg.json").read_text())
    learned = {uid.rsplit(".", 1)[-1]: s[-1] for uid, s in history["samples"].items()}
    assert learned.keys() == {*QUICK, *CHAIN}
    assert min(learned[name] for name in CHAIN) >= 0.8  # the sleep, and the cost around it
    second = _build(project, concurrency=1)
    assert _started(second)[0] == CHAIN[0]


def test_a_key_keeps_tagged_models_apart_with_real_dbt(tmp_path: Path, postgres_server) -> None:
    project = _project(tmp_path, postgres_server)
    key = ConcurrencyKey(selector="tag:quick", limit=1, name=f"quick-{uuid.uuid4().hex[:8]}")
    results = _build(project, concurrency=4, concurrency_keys=[key])
    assert {r["status"] for r in results.values()} == {"success"}
    spans = sorted(
        (
            datetime.fromisoformat(results[f"model.warehouse.{n}"]["timing"]["started_at"]),
            datetime.fromisoformat(results[f"model.warehouse.{n}"]["timing"]["completed_at"]),
        )
        for n in QUICK
    )
    for (_, end), (start, _) in pairwise(spans):
        assert end <= start
