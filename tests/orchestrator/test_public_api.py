from __future__ import annotations

import pickle

import prefect_dbt_orchestrator
from prefect_dbt_orchestrator import DbtBuildFailed

GUIDE_NAMES = {
    "PrefectDbtOrchestrator",
    "ExecutionMode",
    "TestStrategy",
    "CacheConfig",
    "BuildPlan",
    "DbtBuildFailed",
    "PrefectDbtSettings",
    "DbtCoreExecutor",
    "DbtCloudExecutor",
    "DbtCloudCredentials",
}
#: Ours, beside the guide's: per-node limits (issue 15).
EXTRA_NAMES = {"ConcurrencyKey"}


def test_all_lists_exactly_the_public_names() -> None:
    assert set(prefect_dbt_orchestrator.__all__) == GUIDE_NAMES | EXTRA_NAMES
    for name in prefect_dbt_orchestrator.__all__:
        assert getattr(prefect_dbt_orchestrator, name).__module__.split(".")[0] in {
            "prefect_dbt_orchestrator",
            "dbt_graph",
            "dbt_exec_core",
            "dbt_exec_cloud",
        }


def test_build_failed_pickles_with_its_results() -> None:
    results = {f"model.p.m{i}": {"status": "error"} for i in range(7)}
    results["model.p.s"] = {"status": "skipped", "reason": "upstream failure"}
    err = pickle.loads(pickle.dumps(DbtBuildFailed(results)))
    assert err.failed_node_ids == [f"model.p.m{i}" for i in range(7)]
    assert err.skipped_node_ids == ["model.p.s"]
    assert str(err).endswith("model.p.m4, ...")
    assert isinstance(err, RuntimeError)


def test_cloud_credentials_block_hides_the_key() -> None:
    creds = prefect_dbt_orchestrator.DbtCloudCredentials(api_key="not-a-real-key", account_id=7)
    assert "not-a-real-key" not in repr(creds) and "not-a-real-key" not in str(creds)
    assert creds.domain == "cloud.getdbt.com"
