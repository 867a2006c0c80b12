"""Memory across builds: a process that runs build after build keeps nothing of the earlier ones.

A Prefect worker serving flows runs many builds in one process, each with a new orchestrator.
Whatever a build keeps alive after it returned (in a module-level registry, a cache keyed by
the manifest, the executor's client side) adds up build after build. Counting live objects of
our own types is exact where the process's memory size is not.
"""

from __future__ import annotations

import gc
from collections import Counter

from dbt_graph import ExecutionPlan, Manifest
from integration.helpers import statuses
from prefect import flow
from prefect_dbt_orchestrator import PrefectDbtOrchestrator
from prefect_dbt_orchestrator._context import RunContext
from prefect_dbt_orchestrator._outcomes import NodeOutcome

OWN_TYPES = (Manifest, ExecutionPlan, RunContext, NodeOutcome)


def live_objects() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__name__ for o in gc.get_objects() if isinstance(o, OWN_TYPES))


def test_consecutive_per_node_builds_keep_nothing_of_earlier_builds(
    fresh_db, settings, prefect_server
) -> None:
    @flow
    def build() -> int:
        with PrefectDbtOrchestrator(
            settings=settings, execution_mode="per_node", concurrency=4
        ) as orch:
            results = orch.run_build()
        assert set(statuses(results)) == {"success"}
        return len(results)

    build()
    after_first = live_objects()
    for i in range(2):
        # A changed project, as between a developer's builds: a manifest kept alive by mistake
        # is then never the one the next build loads again, so it shows.
        with (fresh_db / "models" / "staging" / "stg_orders.sql").open("a") as sql:
            sql.write(f"\n-- edit {i}\n")
        build()
    assert live_objects() == after_first
