"""Reading run_results.json and sources.json as dbt Cloud serves them."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from dbt_exec_cloud import ResponseError
from dbt_exec_cloud._artifacts import parse_run_results, parse_sources
from dbt_graph import FreshnessStatus, NodeStatus


def _results(*entries: dict) -> bytes:
    return json.dumps({"metadata": {}, "results": list(entries)}).encode()


def test_timing_spans_compile_and_execute_and_naive_times_are_utc() -> None:
    (result,) = parse_run_results(
        _results(
            {
                "unique_id": "model.p.m",
                "status": "success",
                "timing": [
                    {
                        "name": "compile",
                        "started_at": "2024-05-01T10:00:00",
                        "completed_at": "2024-05-01T10:00:01",
                    },
                    {
                        "name": "execute",
                        "started_at": "2024-05-01T10:00:01Z",
                        "completed_at": "2024-05-01T10:00:05.5Z",
                    },
                ],
            }
        )
    ).values()
    assert result.started_at == datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)
    assert result.completed_at == datetime(2024, 5, 1, 10, 0, 5, 500000, tzinfo=UTC)
    assert result.error is None


def test_an_unknown_status_is_an_error_never_success() -> None:
    (result,) = parse_run_results(
        _results({"unique_id": "model.p.m", "status": "reused", "message": "m"})
    ).values()
    assert result.status is NodeStatus.ERROR
    assert "unknown status 'reused'" in result.message


@pytest.mark.parametrize("status", ["error", "fail", "runtime error", "partial success"])
def test_failed_statuses_carry_a_structured_error(status: str) -> None:
    (result,) = parse_run_results(
        _results({"unique_id": "model.p.m", "status": status, "message": "boom"})
    ).values()
    assert result.error is not None and result.error.message == "boom"


@pytest.mark.parametrize("content", [b"not json", b'{"results": [{"status": "success"}]}'])
def test_unreadable_run_results_raise_response_error(content: bytes) -> None:
    with pytest.raises(ResponseError, match=r"run_results\.json"):
        parse_run_results(content)


def test_sources_json_with_runtime_error_and_unknown_period() -> None:
    content = json.dumps(
        {
            "results": [
                {"unique_id": "source.p.s.a", "status": "runtime error", "error": "no table"},
                {
                    "unique_id": "source.p.s.b",
                    "status": "warn",
                    "max_loaded_at": "2024-05-01T00:00:00+00:00",
                    "snapshotted_at": "2024-05-01T06:00:00+00:00",
                    "max_loaded_at_time_ago_in_s": 21600,
                    "criteria": {
                        "warn_after": {"count": 1, "period": "fortnight"},
                        "error_after": {"count": 1, "period": "day"},
                    },
                },
            ]
        }
    ).encode()
    report = parse_sources(content)
    assert report["source.p.s.a"].status is FreshnessStatus.RUNTIME_ERROR
    assert report["source.p.s.a"].message == "no table"
    fresh = report["source.p.s.b"]
    assert fresh.status is FreshnessStatus.WARN and not fresh.status.is_stale
    assert fresh.warn_after is None  # unknown period dropped, not the whole file
    assert fresh.error_after is not None and fresh.error_after.period == "day"
    assert fresh.age_seconds == 21600
