from __future__ import annotations

import json
import pickle
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dbt_graph import (
    DEFAULT_DURATIONS,
    DurationHistory,
    Durations,
    NodeResult,
    NodeStatus,
    ResourceType,
    ScheduleError,
    build_plan,
    load_manifest,
    node_result_timings,
    run_results_timings,
)
from dbt_graph.testing import ManifestBuilder


def row(uid: str, status: str, seconds: float, *, timing: bool = True) -> dict[str, Any]:
    """One entry of ``results`` as dbt 1.11 writes it to run_results.json."""
    start = datetime(2025, 3, 1, 12, 0, 0)
    entries = [
        {
            "name": "compile",
            "started_at": start.isoformat() + "Z",
            "completed_at": (start + timedelta(seconds=0.01)).isoformat() + "Z",
        },
        {
            "name": "execute",
            "started_at": (start + timedelta(seconds=0.01)).isoformat() + "Z",
            "completed_at": (start + timedelta(seconds=seconds)).isoformat() + "Z",
        },
    ]
    return {
        "status": status,
        "timing": entries if timing else [],
        "thread_id": "Thread-1 (worker)",
        "execution_time": seconds,
        "adapter_response": {"_message": "SELECT 20", "code": "SELECT", "rows_affected": 20},
        "message": "SELECT 20",
        "failures": None,
        "unique_id": uid,
        "compiled": True,
        "compiled_code": "select 1",
        "relation_name": None,
        "batch_results": None,
    }


def document(*rows: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": {
            "dbt_schema_version": "https://schemas.getdbt.com/dbt/run-results/v6.json",
            "dbt_version": "1.11.0",
            "generated_at": "2025-03-01T12:00:05.000000Z",
            "invocation_id": "0c2f1a3e-0000-4000-8000-000000000000",
            "env": {},
        },
        "results": list(rows),
        "elapsed_time": 5.0,
        "args": {"which": "build"},
    }


def test_run_results_keep_nodes_that_ran_to_completion() -> None:
    data = document(
        row("model.p.a", "success", 1.25),
        row("test.p.not_null_a", "pass", 0.2),
        row("test.p.unique_a", "fail", 0.3),
        row("test.p.warned", "warn", 0.4),
        row("model.p.broken", "error", 0.05),
        row("model.p.after_broken", "skipped", 0.0, timing=False),
        row("model.p.partial", "partial success", 9.0),
        row("model.p.nothing", "success", 0.0, timing=False),
    )
    assert run_results_timings(data) == {
        "model.p.a": 1.25,
        "test.p.not_null_a": 0.2,
        "test.p.unique_a": 0.3,
        "test.p.warned": 0.4,
    }


def test_run_results_without_execution_time_use_the_timing_span() -> None:
    entry = row("model.p.a", "success", 2.0)
    entry["execution_time"] = 0.0
    assert run_results_timings(document(entry)) == {"model.p.a": pytest.approx(2.0)}


@pytest.mark.parametrize(
    "data",
    [None, [], {"results": "x"}, {"results": [{"status": "success"}]}, {"metadata": {}}],
)
def test_malformed_run_results_say_so(data: Any) -> None:
    with pytest.raises(ScheduleError, match=r"run_results.json is malformed .* Pass the file"):
        run_results_timings(data)


def test_node_results_follow_the_same_rule() -> None:
    start = datetime(2025, 1, 1, tzinfo=UTC)
    results = [
        NodeResult(unique_id="model.p.a", status=NodeStatus.SUCCESS, execution_time=3.0),
        NodeResult(
            unique_id="model.p.b",
            status=NodeStatus.SUCCESS,
            started_at=start,
            completed_at=start + timedelta(seconds=1.5),
        ),
        NodeResult(unique_id="test.p.t", status=NodeStatus.FAIL, execution_time=0.5),
        NodeResult(unique_id="model.p.c", status=NodeStatus.ERROR, execution_time=0.1),
        NodeResult(unique_id="model.p.d", status=NodeStatus.SKIPPED),
    ]
    assert node_result_timings(results) == {"model.p.a": 3.0, "model.p.b": 1.5, "test.p.t": 0.5}


def test_one_run_of_history_is_that_run() -> None:
    history = DurationHistory().record({"model.p.a": 4.0, "test.p.t": 0.25})
    assert history.durations().known == {"model.p.a": 4.0, "test.p.t": 0.25}


def test_the_median_ignores_one_outlier_and_follows_a_lasting_change() -> None:
    history = DurationHistory()
    for seconds in (10.0, 10.0, 60.0, 10.0):  # one slow run among normal ones
        history = history.record({"model.p.a": seconds})
    assert history.durations().known["model.p.a"] == 10.0
    for seconds in (20.0, 20.0, 20.0):  # the model got slower for good
        history = history.record({"model.p.a": seconds})
    assert history.samples["model.p.a"] == (60.0, 10.0, 20.0, 20.0, 20.0)
    assert history.durations().known["model.p.a"] == 20.0


def test_a_partial_run_keeps_the_other_nodes_history() -> None:
    history = DurationHistory(window=2).record({"model.p.a": 1.0, "model.p.b": 5.0})
    history = history.record({"model.p.a": 3.0}).record({"model.p.a": 7.0})
    assert history.samples == {"model.p.a": (3.0, 7.0), "model.p.b": (5.0,)}
    assert history.durations().known == {"model.p.a": 5.0, "model.p.b": 5.0}


def test_unknown_nodes_take_the_median_of_their_type_then_the_defaults() -> None:
    manifest = (
        ManifestBuilder()
        .seed("raw")
        .model("a", depends_on=["raw"])
        .model("b", depends_on=["raw"])
        .model("c", depends_on=["raw"])
        .model("new", depends_on=["raw"])
        .snapshot("snap", depends_on=["a"])
        .test("t_a", depends_on=["a"])
    ).build()
    history = DurationHistory().record(
        {"model.p.a": 2.0, "model.p.b": 8.0, "model.p.c": 30.0, "seed.p.raw": 1.5}
    )
    seconds = history.durations().for_plan(build_plan(manifest))
    assert seconds["model.p.new"] == 8.0  # the median model
    assert seconds["seed.p.raw"] == 1.5
    assert seconds["snapshot.p.snap"] == DEFAULT_DURATIONS[ResourceType.SNAPSHOT]
    assert seconds["test.p.t_a"] == DEFAULT_DURATIONS[ResourceType.TEST]


def test_explicit_defaults_replace_the_learned_ones() -> None:
    manifest = ManifestBuilder().model("a").model("new").test("t", depends_on=["a"]).build()
    durations = (
        DurationHistory().record({"model.p.a": 9.0}).durations(defaults={ResourceType.MODEL: 2.0})
    )
    seconds = durations.for_plan(build_plan(manifest))
    assert seconds == {"model.p.a": 9.0, "model.p.new": 2.0, "test.p.t": 0.5}


def test_no_history_at_all_uses_the_defaults() -> None:
    manifest = ManifestBuilder().seed("s").model("a", depends_on=["s"]).build()
    assert Durations().for_plan(build_plan(manifest)) == {"seed.p.s": 1.0, "model.p.a": 1.0}


def test_history_round_trips_through_json() -> None:
    history = DurationHistory(window=3).record({"model.p.a": 1.5}).record({"model.p.a": 2.5})
    text = json.dumps(history.to_json())
    assert DurationHistory.from_json(json.loads(text)) == history
    assert pickle.loads(pickle.dumps(history)) == history


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"version": 1, "window": 5}, "malformed .*samples"),
        ({"version": 1, "window": 5, "samples": {"a": ["x"]}}, "malformed"),
        ({"version": 2, "window": 5, "samples": {}}, "version 2; this dbt-graph reads version 1"),
        ({"version": 1, "window": 0, "samples": {}}, "window must be a positive int"),
        ({"version": 1, "window": 5, "samples": {"a": [-1.0]}}, "finite, non-negative"),
    ],
)
def test_a_bad_stored_history_says_what_to_do(data: Any, message: str) -> None:
    with pytest.raises(ScheduleError, match=message):
        DurationHistory.from_json(data)


@pytest.mark.parametrize("seconds", [-0.5, float("nan"), float("inf"), "3"])
def test_recording_an_invalid_duration_is_refused(seconds: Any) -> None:
    with pytest.raises(ScheduleError, match="finite, non-negative seconds"):
        DurationHistory().record({"model.p.a": seconds})


@pytest.mark.slow
def test_a_real_dbt_build_gives_durations_for_its_plan(
    parity_project: Path, parity_state: Path
) -> None:
    data = json.loads((parity_state / "run_results.json").read_text())
    timings = run_results_timings(data)
    completed = {
        r["unique_id"]
        for r in data["results"]
        if r["status"] in {"success", "pass", "warn", "fail"} and r["execution_time"] > 0
    }
    assert timings.keys() == completed
    assert any(r["status"] == "fail" for r in data["results"])  # the fixture's failing test
    assert {uid.split(".")[0] for uid in timings} >= {"model", "seed", "test"}

    manifest = load_manifest(parity_project / "target" / "manifest.json")
    plan = build_plan(manifest)
    seconds = DurationHistory().record(timings).durations().for_plan(plan)
    for uid in plan.nodes:
        assert seconds[uid] == timings.get(uid, seconds[uid])
        assert seconds[uid] > 0
