"""prefect-dbt-orchestrator: Prefect drives dbt node by node.

Example:
    >>> from prefect_dbt_orchestrator import PrefectDbtOrchestrator, ExecutionMode  # doctest: +SKIP
    >>> orchestrator = PrefectDbtOrchestrator(execution_mode="per_node")  # doctest: +SKIP
    >>> results = orchestrator.run_build(select="tag:daily")  # doctest: +SKIP
"""

from typing import TYPE_CHECKING, Any

from dbt_graph import ConcurrencyKey, TestStrategy

from prefect_dbt_orchestrator._build_plan import BuildPlan
from prefect_dbt_orchestrator._cloud import DbtCloudCredentials
from prefect_dbt_orchestrator._config import CacheConfig, ExecutionMode
from prefect_dbt_orchestrator._errors import DbtBuildFailed
from prefect_dbt_orchestrator._executors import EXECUTORS, executor_class
from prefect_dbt_orchestrator._orchestrator import PrefectDbtOrchestrator
from prefect_dbt_orchestrator._settings import PrefectDbtSettings

if TYPE_CHECKING:
    from dbt_exec_cloud import DbtCloudExecutor
    from dbt_exec_core import DbtCoreExecutor

__all__ = [
    "BuildPlan",
    "CacheConfig",
    "ConcurrencyKey",
    "DbtBuildFailed",
    "DbtCloudCredentials",
    "DbtCloudExecutor",
    "DbtCoreExecutor",
    "ExecutionMode",
    "PrefectDbtOrchestrator",
    "PrefectDbtSettings",
    "TestStrategy",
]


def __getattr__(name: str) -> Any:
    # The executors are optional extras ([core], [cloud]): imported on first use only.
    if name in EXECUTORS:
        return executor_class(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
