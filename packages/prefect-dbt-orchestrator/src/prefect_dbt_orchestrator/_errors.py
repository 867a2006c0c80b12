"""Errors the orchestrator raises.

The tree::

    ValueError
    └── (validation: bad mode/strategy, retries or cache with PER_WAVE, bad extra_cli_args,
         missing project/profile dirs, a named concurrency limit that does not exist)
    RuntimeError
    └── DbtBuildFailed      one or more nodes ended in "error" (raise_on_failure=True)

Errors from the packages below pass through unchanged: ``dbt_graph.SelectionError`` (a bad
selector), ``dbt_graph.CycleError``, ``dbt_graph.ManifestError``, and the executors' own errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prefect_dbt_orchestrator._outcomes import OutcomeStatus


class DbtBuildFailed(RuntimeError):
    """Raised by ``run_build()`` when any node ended with status ``"error"``.

    It is raised after the summary artifact and run_results.json are written.

    Attributes:
        results: The full results dict, as ``run_build()`` would have returned it.
        failed_node_ids: Nodes with status ``"error"``, in result order.
        skipped_node_ids: Nodes with status ``"skipped"``, in result order.
    """

    def __init__(self, results: Mapping[str, Mapping[str, Any]]) -> None:
        self.results = dict(results)
        self.failed_node_ids = [
            u for u, r in self.results.items() if r["status"] == OutcomeStatus.ERROR
        ]
        self.skipped_node_ids = [
            u for u, r in self.results.items() if r["status"] == OutcomeStatus.SKIPPED
        ]
        preview = ", ".join(self.failed_node_ids[:5])
        more = ", ..." if len(self.failed_node_ids) > 5 else ""
        super().__init__(
            f"dbt build failed for {len(self.failed_node_ids)} node(s): {preview}{more}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.results,))
