"""The per-node result dicts ``run_build()`` returns (the guide's "Result format")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from dbt_graph import ExecutionResult, NodeResult, NodeStatus

Result = dict[str, Any]


def iso(moment: datetime) -> str:
    """ISO-8601 in UTC with ``+00:00``."""
    return moment.isoformat()


def timing(started: datetime, completed: datetime, execution_time: float | None = None) -> Result:
    out: Result = {
        "started_at": iso(started),
        "completed_at": iso(completed),
        "duration_seconds": round((completed - started).total_seconds(), 6),
    }
    if execution_time is not None:
        out["execution_time"] = execution_time
    return out


def from_node_result(node: NodeResult, execution: ExecutionResult, *, command: str) -> Result:
    """The result dict of a node dbt ran (or skipped) in ``execution``."""
    if node.status is NodeStatus.SKIPPED:
        # dbt skipped it inside the invocation (e.g. downstream of a failure in the same build).
        return {
            "status": "skipped",
            "reason": node.message or "skipped by dbt",
            "dbt_status": node.status.value,
        }
    started = node.started_at or execution.started_at
    completed = node.completed_at or execution.completed_at
    out: Result = {
        "status": "error" if node.is_failure else "success",
        "dbt_status": node.status.value,
        "message": node.message,
        "timing": timing(started, completed, node.execution_time),
        "invocation": {"command": command, "args": list(execution.invocation_args)},
    }
    if node.adapter_response:
        out["adapter_response"] = dict(node.adapter_response)
    if node.failures is not None:
        out["failures"] = node.failures
    if node.is_failure:
        error = node.error
        out["error"] = {
            "message": (error.message if error else None) or node.message or "unknown error",
            "type": error.type if error else "DbtError",
        }
    return out


def skipped_upstream(failed_upstream: Iterable[str]) -> Result:
    return {
        "status": "skipped",
        "reason": "upstream failure",
        "failed_upstream": sorted(failed_upstream),
    }


def infrastructure_error(exc_type: str, message: str) -> Result:
    return {"status": "error", "error": {"message": message or "unknown error", "type": exc_type}}


def root_failures(
    uid: str,
    dependencies: Mapping[str, tuple[str, ...]],
    results: Mapping[str, Result],
    roots: Mapping[str, frozenset[str]],
) -> frozenset[str]:
    """The failed nodes (not the skipped ones) upstream of ``uid``, given its parents' roots."""
    found: set[str] = set()
    for parent in dependencies.get(uid, ()):
        status = results.get(parent, {}).get("status")
        if status == "error":
            found.add(parent)
        found |= roots.get(parent, frozenset())
    return frozenset(found)
