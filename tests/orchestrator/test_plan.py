from __future__ import annotations

from dbt_graph import Wave
from dbt_graph.testing import FakeExecutor
from prefect_dbt_orchestrator import BuildPlan, PrefectDbtOrchestrator


def test_plan_runs_nothing_and_counts_waves(project, chain_manifest) -> None:
    executor = FakeExecutor(chain_manifest)
    orch = PrefectDbtOrchestrator(settings=project, executor=executor)
    plan = orch.plan()
    assert executor.requests == []
    assert plan.node_count == 7
    assert plan.cache_predictions is None and plan.skipped_nodes == {}
    assert plan.estimated_parallelism == max(len(w.nodes) for w in plan.waves)
    assert [w.number for w in plan.waves] == list(range(len(plan.waves)))


def test_plan_str_layout_matches_the_guide(chain_manifest) -> None:
    nodes = chain_manifest.nodes
    plan = BuildPlan(
        waves=(
            Wave(number=0, nodes=(nodes["seed.p.raw"], nodes["model.p.other"])),
            Wave(number=1, nodes=(nodes["test.p.not_null_stg_id"],)),
        ),
        node_count=3,
        cache_predictions={
            "seed.p.raw": "hit",
            "model.p.other": "miss",
            "test.p.not_null_stg_id": "excluded",
        },
        skipped_nodes={"model.p.x": {"status": "skipped", "reason": "stale source: source.p.a.b"}},
        estimated_parallelism=2,
        cache_reasons={"model.p.other": ("SQL changed",)},
    )
    assert str(plan) == "\n".join(
        [
            "BuildPlan: 3 node(s) in 2 wave(s)  |  max parallelism = 2",
            "",
            "  Wave 0 (2 node(s)):",
            "    - seed.p.raw [seed, seed] (cache: hit)",
            "    - model.p.other [model, view] (cache: miss: SQL changed)",
            "  Wave 1 (1 node(s)):",
            "    - test.p.not_null_stg_id [test, test] (cache: excluded)",
            "",
            "  Cache: 1 hit(s), 1 miss(es), 1 excluded",
            "",
            "  Skipped (1):",
            "    - model.p.x: stale source: source.p.a.b",
        ]
    )
