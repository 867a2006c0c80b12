"""The typed outcome inside, the guide's dict outside: every shape, exactly, and back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from dbt_graph import ErrorInfo, ExecutionResult, NodeResult, NodeStatus
from prefect_dbt_orchestrator._outcomes import (
    CacheHit,
    NodeOutcome,
    OutcomeStatus,
    Timing,
    from_node_result,
    infrastructure_error,
    root_failures,
    skipped_upstream,
    stale_source_skip,
)

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = T0 + timedelta(seconds=1.5)


def execution(node: NodeResult, **kw) -> ExecutionResult:
    return ExecutionResult(
        results={node.unique_id: node},
        started_at=T0,
        completed_at=T1,
        invocation_args=("run", "--select", "x"),
        **kw,
    )


def ran(status: NodeStatus, **kw) -> NodeResult:
    return NodeResult(
        unique_id="model.p.x",
        status=status,
        started_at=T0,
        completed_at=T1,
        execution_time=1.25,
        **kw,
    )


TIMING = {
    "started_at": "2025-01-01T00:00:00+00:00",
    "completed_at": "2025-01-01T00:00:01.500000+00:00",
    "duration_seconds": 1.5,
    "execution_time": 1.25,
}
INVOCATION = {"command": "run", "args": ["run", "--select", "x"]}


def test_a_success_has_dbts_status_message_timing_and_invocation() -> None:
    node = ran(NodeStatus.SUCCESS, message="OK", adapter_response={"rows_affected": 3})
    assert from_node_result(node, execution(node), command="run").to_dict() == {
        "status": "success",
        "dbt_status": "success",
        "message": "OK",
        "timing": TIMING,
        "invocation": INVOCATION,
        "adapter_response": {"rows_affected": 3},
    }


def test_a_warning_is_a_success_and_a_message_dbt_left_out_is_none() -> None:
    node = ran(NodeStatus.WARN, failures=2)
    result = from_node_result(node, execution(node), command="test").to_dict()
    assert result["status"] == "success" and result["dbt_status"] == "warn"
    assert result["failures"] == 2
    assert "message" in result and result["message"] is None


def test_a_failure_carries_the_error() -> None:
    node = ran(
        NodeStatus.ERROR,
        message="Database Error",
        error=ErrorInfo(type="DbtDatabaseError", message="relation does not exist"),
    )
    result = from_node_result(node, execution(node), command="run").to_dict()
    assert result["status"] == "error"
    assert result["error"] == {"message": "relation does not exist", "type": "DbtDatabaseError"}


def test_a_node_dbt_skipped_keeps_dbts_word() -> None:
    node = NodeResult(unique_id="model.p.x", status=NodeStatus.SKIPPED, message="SKIP")
    assert from_node_result(node, execution(node), command="build").to_dict() == {
        "status": "skipped",
        "reason": "SKIP",
        "dbt_status": "skipped",
    }


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (
            skipped_upstream({"model.p.b", "model.p.a"}),
            {
                "status": "skipped",
                "reason": "upstream failure",
                "failed_upstream": ["model.p.a", "model.p.b"],
            },
        ),
        (
            stale_source_skip(["source.p.app.a", "source.p.app.b"]),
            {"status": "skipped", "reason": "stale source: source.p.app.a, source.p.app.b"},
        ),
        (
            infrastructure_error("TimeoutError", "timed out after 5s"),
            {"status": "error", "error": {"message": "timed out after 5s", "type": "TimeoutError"}},
        ),
        (
            infrastructure_error("CancelledError", ""),
            {"status": "error", "error": {"message": "unknown error", "type": "CancelledError"}},
        ),
    ],
    ids=["upstream", "stale", "infrastructure", "no-message"],
)
def test_the_other_shapes(outcome: NodeOutcome, expected: dict) -> None:
    assert outcome.to_dict() == expected


def test_a_cached_outcome_says_where_it_came_from() -> None:
    node = ran(NodeStatus.SUCCESS, message="OK")
    stored = from_node_result(node, execution(node), command="run")
    cached = replace(
        stored,
        status=OutcomeStatus.CACHED,
        timing=Timing.between(T1, T1 + timedelta(milliseconds=2)),
        invocation=None,
        cache=CacheHit(stored_at=T0.isoformat(), key="k" * 64),
    )
    result = cached.to_dict()
    assert result["status"] == "cached" and result["message"] == "OK"
    assert result["cache"] == {"stored_at": "2025-01-01T00:00:00+00:00", "key": "k" * 64}
    assert "invocation" not in result and "execution_time" not in result["timing"]


def test_every_dict_the_orchestrator_makes_reads_back_to_the_same_outcome() -> None:
    node = ran(NodeStatus.FAIL, message="Got 3 results", failures=3)
    failed = from_node_result(node, execution(node), command="test")
    with_invocation_error = replace(
        failed, error=replace(failed.error, invocation_error="dbt crashed")
    )
    for outcome in (
        failed,
        with_invocation_error,
        skipped_upstream(["model.p.a"]),
        stale_source_skip(["source.p.a.b"]),
        infrastructure_error("OSError", "gone"),
        replace(failed, status=OutcomeStatus.CACHED, cache=CacheHit(stored_at="t", key="k")),
    ):
        assert NodeOutcome.from_dict(outcome.to_dict()) == outcome
        assert NodeOutcome.from_dict(outcome.to_dict()).to_dict() == outcome.to_dict()


def test_root_failures_name_the_failed_not_the_skipped() -> None:
    deps = {"c": ("b",), "b": ("a",), "d": ("x",)}
    outcomes = {
        "a": infrastructure_error("E", "boom"),
        "b": skipped_upstream(["a"]),
        "x": NodeOutcome(status=OutcomeStatus.SUCCESS),
    }
    roots = {"b": frozenset({"a"})}
    assert root_failures("b", deps, outcomes, {}) == {"a"}
    assert root_failures("c", deps, outcomes, roots) == {"a"}
    assert root_failures("d", deps, outcomes, roots) == frozenset()
