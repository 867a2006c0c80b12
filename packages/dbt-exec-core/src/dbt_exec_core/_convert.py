"""dbt's results and events, translated into dbt-graph's value types (worker side).

This is the one place that reads dbt's result objects (``RunResult``, freshness results) and
event messages. The parent process never imports dbt; it only sees the values built here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from dbt_graph import (
    ErrorInfo,
    FreshnessStatus,
    FreshnessThreshold,
    LogLine,
    NodeResult,
    NodeStatus,
    SourceFreshness,
)

_LEVELS = {"debug": 10, "test": 10, "info": 20, "warn": 30, "warning": 30, "error": 40}
_LEVEL_NAMES = {"debug": "debug", "test": "debug", "info": "info", "warn": "warning"}
_ERROR_TYPES = (
    ("Compilation Error", "CompilationError"),
    ("Database Error", "DbtDatabaseError"),
    ("Runtime Error", "DbtRuntimeError"),
)


def level_rank(level: str) -> int:
    """A numeric rank for a dbt or logging level name (``info`` < ``warn`` < ``error``)."""
    return _LEVELS.get(level.lower(), 20)


def log_line(event: Any, min_rank: int) -> LogLine | None:
    """A :class:`LogLine` for a dbt event at or above ``min_rank``, else ``None``."""
    info = event.info
    if level_rank(info.level) < min_rank:
        return None
    message = info.msg
    if not message or not message.strip():
        return None
    level = str(info.level)
    return LogLine(
        level=_LEVEL_NAMES.get(level, level),
        message=message,
        node_id=event_node_id(event),
        timestamp=info.ts.ToJsonString() if info.HasField("ts") else None,
    )


def event_node_id(event: Any) -> str | None:
    """The unique_id an event is about, or ``None`` for invocation-wide events."""
    node_info = getattr(event.data, "node_info", None)
    uid = getattr(node_info, "unique_id", "") if node_info is not None else ""
    return uid or None


def _status(raw: Any) -> tuple[NodeStatus, str | None]:
    value = getattr(raw, "value", raw)
    try:
        return NodeStatus(str(value)), None
    except ValueError:
        return NodeStatus.ERROR, f"dbt reported an unknown status {value!r}"


def _error(status: NodeStatus, message: str | None) -> ErrorInfo | None:
    if not status.is_failure:
        return None
    text = message or f"dbt reported status {status.value}"
    if status is NodeStatus.FAIL:
        return ErrorInfo(type="TestFailure", message=text)
    for prefix, name in _ERROR_TYPES:
        if text.startswith(prefix):
            return ErrorInfo(type=name, message=text)
    return ErrorInfo(type="DbtRuntimeError", message=text)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    # dbt's timing entries are naive UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _span(pairs: Sequence[tuple[datetime | None, datetime | None]]) -> tuple[Any, Any]:
    starts = [s for s, _ in pairs if s is not None]
    ends = [e for _, e in pairs if e is not None] if starts else []
    return (min(starts) if starts else None, max(ends) if ends else None)


def _is_test(unique_id: str) -> bool:
    return unique_id.startswith(("test.", "unit_test."))


def result_from_event(event: Any, node: Any, logs: Sequence[LogLine]) -> NodeResult:
    """A :class:`NodeResult` from a ``NodeFinished`` event (streamed before the run ends).

    Args:
        event: The ``NodeFinished`` event message.
        node: The manifest node (for compiled code and relation name), or ``None``.
        logs: The node's log lines so far.
    """
    from google.protobuf.json_format import MessageToDict

    rr = event.data.run_result
    uid = event.data.node_info.unique_id
    status, problem = _status(rr.status)
    message = problem or rr.message or None
    pairs = [
        (
            t.started_at.ToDatetime(tzinfo=UTC) if t.HasField("started_at") else None,
            t.completed_at.ToDatetime(tzinfo=UTC) if t.HasField("completed_at") else None,
        )
        for t in rr.timing_info
    ]
    started, completed = _span(pairs)
    return NodeResult(
        unique_id=uid,
        status=status,
        message=message,
        started_at=started,
        completed_at=completed,
        execution_time=float(rr.execution_time),
        adapter_response=MessageToDict(rr.adapter_response),
        failures=int(rr.num_failures)
        if _is_test(uid) and status is not NodeStatus.SKIPPED
        else None,
        compiled_code=getattr(node, "compiled_code", None),
        relation_name=getattr(node, "relation_name", None),
        error=_error(status, message),
        logs=tuple(logs),
    )


def result_from_run_result(result: Any, logs: Sequence[LogLine]) -> NodeResult:
    """A :class:`NodeResult` from dbt's in-memory ``RunResult``."""
    node = result.node
    uid = node.unique_id
    status, problem = _status(result.status)
    message = problem or result.message or None
    started, completed = _span([(_utc(t.started_at), _utc(t.completed_at)) for t in result.timing])
    failures = result.failures if _is_test(uid) else None
    return NodeResult(
        unique_id=uid,
        status=status,
        message=message,
        started_at=started,
        completed_at=completed,
        execution_time=float(result.execution_time or 0.0),
        adapter_response=dict(result.adapter_response or {}),
        failures=int(failures) if failures is not None else None,
        compiled_code=getattr(node, "compiled_code", None),
        relation_name=getattr(node, "relation_name", None),
        error=_error(status, message),
        logs=tuple(logs),
    )


def _threshold(raw: Any) -> FreshnessThreshold | None:
    count = getattr(raw, "count", None)
    period = getattr(raw, "period", None)
    if raw is None or count is None or period is None:
        return None
    return FreshnessThreshold(count=int(count), period=str(getattr(period, "value", period)))


def freshness_from_result(result: Any) -> SourceFreshness:
    """A :class:`SourceFreshness` from one of ``dbt source freshness``'s in-memory results."""
    node = result.node
    raw_status = str(getattr(result.status, "value", result.status))
    try:
        status = FreshnessStatus(raw_status)
    except ValueError:
        status = FreshnessStatus.RUNTIME_ERROR
    criteria = getattr(node, "freshness", None)
    max_loaded_at = _utc(getattr(result, "max_loaded_at", None))
    snapshotted_at = _utc(getattr(result, "snapshotted_at", None))
    age = getattr(result, "age", None)
    return SourceFreshness(
        unique_id=node.unique_id,
        status=status,
        max_loaded_at=max_loaded_at,
        snapshotted_at=snapshotted_at,
        age_seconds=float(age) if age is not None else None,
        warn_after=_threshold(getattr(criteria, "warn_after", None)),
        error_after=_threshold(getattr(criteria, "error_after", None)),
        message=(result.message or None) if status is FreshnessStatus.RUNTIME_ERROR else None,
    )
