"""Reading dbt's run_results.json and sources.json, as a dbt Cloud run serves them.

Pydantic validates the artifact at this edge; what comes out are dbt-graph's frozen
:class:`~dbt_graph.NodeResult` and :class:`~dbt_graph.SourceFreshness` values.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from dbt_graph import (
    ErrorInfo,
    FreshnessStatus,
    FreshnessThreshold,
    NodeResult,
    NodeStatus,
    SourceFreshness,
)
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dbt_exec_cloud._errors import ResponseError

#: The message of a requested node that a run's run_results.json does not mention.
NOT_REPORTED = "dbt Cloud did not report a result for this node"
_PERIODS = frozenset({"minute", "hour", "day"})


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Timing(_Lenient):
    name: str = ""
    started_at: datetime | None = None
    completed_at: datetime | None = None


class _RawResult(_Lenient):
    unique_id: str
    status: str
    message: str | None = None
    execution_time: float | None = None
    timing: list[_Timing] = Field(default_factory=list)
    adapter_response: dict[str, Any] | None = None
    failures: int | None = None
    compiled_code: str | None = None
    relation_name: str | None = None


class _RunResults(_Lenient):
    results: list[_RawResult]


class _Threshold(_Lenient):
    count: int | None = None
    period: str | None = None


class _Criteria(_Lenient):
    warn_after: _Threshold | None = None
    error_after: _Threshold | None = None


class _RawFreshness(_Lenient):
    unique_id: str
    status: str
    max_loaded_at: datetime | None = None
    snapshotted_at: datetime | None = None
    max_loaded_at_time_ago_in_s: float | None = None
    criteria: _Criteria | None = None
    error: str | None = None


class _Sources(_Lenient):
    results: list[_RawFreshness]


def _load(content: bytes, model: type[_Lenient], name: str) -> Any:
    try:
        return model.model_validate(json.loads(content))
    except (ValueError, ValidationError) as exc:
        detail = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise ResponseError(
            f"dbt Cloud served a {name} that cannot be read ({detail}). The run may have been "
            "cut short; check it in dbt Cloud."
        ) from None


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_run_results(content: bytes) -> dict[str, NodeResult]:
    """Per-node results from the bytes of a run_results.json, by unique_id.

    Statuses are dbt's own; a status this package does not know becomes ``error`` with a
    message saying so. ``started_at``/``completed_at`` span the node's timing entries.

    Raises:
        ResponseError: The file is not a run_results.json.
    """
    parsed: _RunResults = _load(content, _RunResults, "run_results.json")
    results: dict[str, NodeResult] = {}
    for raw in parsed.results:
        try:
            status = NodeStatus(raw.status)
            message = raw.message
        except ValueError:
            status = NodeStatus.ERROR
            message = f"dbt reported the unknown status {raw.status!r}: {raw.message or ''}"
        starts = [s for t in raw.timing if (s := _utc(t.started_at)) is not None]
        ends = [e for t in raw.timing if (e := _utc(t.completed_at)) is not None]
        results[raw.unique_id] = NodeResult(
            unique_id=raw.unique_id,
            status=status,
            message=message,
            started_at=min(starts) if starts else None,
            completed_at=max(ends) if ends else None,
            execution_time=raw.execution_time or 0.0,
            adapter_response=raw.adapter_response or {},
            failures=raw.failures,
            compiled_code=raw.compiled_code,
            relation_name=raw.relation_name,
            error=(
                ErrorInfo(type="DbtRuntimeError", message=message or status.value)
                if status.is_failure
                else None
            ),
        )
    return results


def _threshold(raw: _Threshold | None) -> FreshnessThreshold | None:
    if raw is None or raw.count is None or raw.period not in _PERIODS:
        return None
    return FreshnessThreshold(count=raw.count, period=raw.period)


def parse_sources(content: bytes) -> dict[str, SourceFreshness]:
    """Source freshness from the bytes of a sources.json, by unique_id.

    A threshold with an unknown period is dropped rather than failing the whole file.

    Raises:
        ResponseError: The file is not a sources.json.
    """
    parsed: _Sources = _load(content, _Sources, "sources.json")
    out: dict[str, SourceFreshness] = {}
    for raw in parsed.results:
        try:
            status = FreshnessStatus(raw.status)
        except ValueError:
            status = FreshnessStatus.RUNTIME_ERROR
        criteria = raw.criteria or _Criteria()
        out[raw.unique_id] = SourceFreshness(
            unique_id=raw.unique_id,
            status=status,
            max_loaded_at=_utc(raw.max_loaded_at),
            snapshotted_at=_utc(raw.snapshotted_at),
            age_seconds=raw.max_loaded_at_time_ago_in_s,
            warn_after=_threshold(criteria.warn_after),
            error_after=_threshold(criteria.error_after),
            message=raw.error,
        )
    return out
