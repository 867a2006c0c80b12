from __future__ import annotations

import doctest
import importlib
import pickle

import dbt_graph
import pytest
from dbt_graph import (
    ConcurrencyKey,
    Durations,
    ExecutionPlan,
    ScheduleError,
    build_plan,
    estimate_wall_time,
    keys_by_node,
)
from dbt_graph.testing import ManifestBuilder


def m(name: str) -> str:
    return f"model.p.{name}"


@pytest.fixture
def hidden_chain() -> tuple[ExecutionPlan, dict[str, float]]:
    """Four short roots listed before a chain c1 -> c2 -> c3 that decides the wall time."""
    builder = ManifestBuilder()
    for name in ("s1", "s2", "s3", "s4", "c1"):
        builder.model(name)
    builder.model("c2", depends_on=["c1"]).model("c3", depends_on=["c2"])
    seconds = {m("s1"): 1, m("s2"): 1, m("s3"): 1, m("s4"): 1, m("c1"): 1, m("c2"): 2, m("c3"): 2}
    return build_plan(builder.build()), seconds


def test_critical_path_first_starts_the_chain_first_and_reaches_the_lower_bound(
    hidden_chain: tuple[ExecutionPlan, dict[str, float]],
) -> None:
    plan, seconds = hidden_chain
    estimate = estimate_wall_time(plan, seconds, concurrency=2)
    # c1 0-1, c2 1-3, c3 3-5 beside s1 0-1, s2 1-2, s3 2-3, s4 3-4.
    assert estimate.wall_seconds == 5.0
    assert estimate.lower_bound_seconds == 5.0  # max(critical path 5, work 9 / 2)
    assert estimate.starts == {
        m("c1"): 0.0,
        m("s1"): 0.0,
        m("c2"): 1.0,
        m("s2"): 1.0,
        m("s3"): 2.0,
        m("c3"): 3.0,
        m("s4"): 3.0,
    }
    assert list(estimate.starts) == [m(n) for n in ("c1", "s1", "c2", "s2", "s3", "c3", "s4")]
    assert [s.unique_id for s in estimate.critical_path] == [m("c1"), m("c2"), m("c3")]
    assert estimate.critical_path_seconds == 5.0
    assert estimate.total_seconds == 9.0


def test_plan_order_leaves_the_chain_behind_the_short_roots(
    hidden_chain: tuple[ExecutionPlan, dict[str, float]],
) -> None:
    plan, seconds = hidden_chain
    estimate = estimate_wall_time(plan, seconds, concurrency=2, order=list(plan.nodes))
    # s1 s2 0-1, s3 s4 1-2, c1 2-3, c2 3-5, c3 5-7.
    assert estimate.wall_seconds == 7.0
    assert estimate.lower_bound_seconds == 5.0
    assert list(estimate.starts)[:4] == [m("s1"), m("s2"), m("s3"), m("s4")]


def test_one_slot_runs_everything_in_sequence_and_wide_enough_is_the_critical_path(
    hidden_chain: tuple[ExecutionPlan, dict[str, float]],
) -> None:
    plan, seconds = hidden_chain
    assert estimate_wall_time(plan, seconds, concurrency=1).wall_seconds == 9.0
    wide = estimate_wall_time(plan, seconds, concurrency=100)
    assert wide.wall_seconds == wide.critical_path_seconds == 5.0
    assert wide.lower_bound_seconds == 5.0


def test_the_estimate_is_deterministic(
    hidden_chain: tuple[ExecutionPlan, dict[str, float]],
) -> None:
    plan, seconds = hidden_chain
    first = estimate_wall_time(plan, seconds, concurrency=3)
    again = estimate_wall_time(plan, dict(reversed(list(seconds.items()))), concurrency=3)
    assert list(first.starts.items()) == list(again.starts.items())
    assert first.wall_seconds == again.wall_seconds


def test_an_empty_plan_takes_no_time() -> None:
    estimate = estimate_wall_time(build_plan(ManifestBuilder().build()), {}, concurrency=4)
    assert estimate.wall_seconds == estimate.lower_bound_seconds == 0.0
    assert estimate.critical_path == ()
    assert estimate.starts == {}


def test_wave_barriers_wait_for_the_slowest_node_of_each_wave() -> None:
    manifest = ManifestBuilder().model("a").model("b", depends_on=["a"]).model("c").build()
    plan = build_plan(manifest)
    seconds = {m("a"): 1, m("b"): 1, m("c"): 3}
    assert estimate_wall_time(plan, seconds, concurrency=2).wall_seconds == 3.0
    per_wave = estimate_wall_time(plan, seconds, concurrency=2, wave_barriers=True)
    assert per_wave.wall_seconds == 4.0  # wave 0 (a, c) ends at 3, then b
    assert per_wave.starts[m("b")] == 3.0
    assert per_wave.lower_bound_seconds == 4.0


def test_deferred_tests_start_after_every_model() -> None:
    manifest = (
        ManifestBuilder()
        .model("a")
        .model("b", depends_on=["a"])
        .model("c")
        .test("t_a", depends_on=["a"])
    ).build()
    plan = build_plan(manifest, test_strategy="deferred")
    seconds = {m("a"): 1, m("b"): 1, m("c"): 5, "test.p.t_a": 1}
    estimate = estimate_wall_time(plan, seconds, concurrency=4)
    assert estimate.starts["test.p.t_a"] == 5.0
    assert estimate.wall_seconds == 6.0
    assert estimate.lower_bound_seconds == 6.0


def test_a_concurrency_key_serialises_its_nodes_and_the_others_fill_the_slots() -> None:
    manifest = (
        ManifestBuilder()
        .model("h1", tags=["heavy"])
        .model("h2", tags=["heavy"])
        .model("h3", tags=["heavy"])
        .model("l1")
        .model("l2")
    ).build()
    plan = build_plan(manifest)
    seconds = {m("h1"): 2, m("h2"): 2, m("h3"): 2, m("l1"): 1, m("l2"): 1}
    keys = keys_by_node(manifest, [ConcurrencyKey(selector="tag:heavy", limit=1)])
    estimate = estimate_wall_time(plan, seconds, concurrency=3, keys=keys)
    assert estimate.starts == {m("h1"): 0.0, m("l1"): 0.0, m("l2"): 0.0, m("h2"): 2.0, m("h3"): 4.0}
    assert estimate.wall_seconds == 6.0
    assert estimate.lower_bound_seconds == 6.0  # the key's work over its limit
    assert estimate_wall_time(plan, seconds, concurrency=3).wall_seconds == 3.0


def test_a_node_woken_by_one_key_but_blocked_by_another_lets_the_next_one_run() -> None:
    manifest = (
        ManifestBuilder()
        .model("p", tags=["y"])
        .model("q", tags=["x"])
        .model("r", tags=["x", "y"])
        .model("s", tags=["x"])
    ).build()
    plan = build_plan(manifest)
    seconds = {m("p"): 4, m("q"): 1, m("r"): 1, m("s"): 1}
    keys = keys_by_node(
        manifest,
        [ConcurrencyKey(selector="tag:x", limit=1), ConcurrencyKey(selector="tag:y", limit=1)],
    )
    estimate = estimate_wall_time(plan, seconds, concurrency=3, keys=keys)
    # q frees x at 1: r (more urgent by plan order) still waits for y, so s takes x.
    assert estimate.starts == {m("p"): 0.0, m("q"): 0.0, m("s"): 1.0, m("r"): 4.0}
    assert estimate.wall_seconds == 5.0


def test_keys_on_nodes_outside_the_plan_are_ignored() -> None:
    manifest = ManifestBuilder().model("a", tags=["heavy"]).model("b", tags=["heavy"]).build()
    plan = build_plan(manifest, [m("a")])
    keys = keys_by_node(manifest, [ConcurrencyKey(selector="tag:heavy", limit=1)])
    estimate = estimate_wall_time(plan, {m("a"): 2.0}, concurrency=2, keys=keys)
    assert estimate.wall_seconds == estimate.lower_bound_seconds == 2.0


def test_default_durations_feed_the_estimate() -> None:
    manifest = ManifestBuilder().seed("raw").model("a", depends_on=["raw"]).build()
    plan = build_plan(manifest)
    durations = Durations(known={"seed.p.raw": 3.0})
    estimate = estimate_wall_time(plan, durations.for_plan(plan), concurrency=4)
    assert estimate.wall_seconds == 4.0  # the seed's 3 s, then a model's default 1 s


def test_str_names_wall_time_bound_and_critical_path(
    hidden_chain: tuple[ExecutionPlan, dict[str, float]],
) -> None:
    plan, seconds = hidden_chain
    slow = {uid: value * 30 for uid, value in seconds.items()}
    text = str(estimate_wall_time(plan, slow, concurrency=2))
    assert text.splitlines() == [
        "Expected wall time 2m30s at concurrency 2 (lower bound 2m30s; total work 4m30s)",
        "Critical path: 3 node(s), 2m30s",
        "  - model.p.c1 (30.0s)",
        "  - model.p.c2 (1m00s)",
        "  - model.p.c3 (1m00s)",
    ]


@pytest.mark.parametrize("concurrency", [0, -1, True, 2.5, "4"])
def test_concurrency_must_be_a_positive_int(
    hidden_chain: tuple[ExecutionPlan, dict[str, float]], concurrency: object
) -> None:
    plan, seconds = hidden_chain
    with pytest.raises(ScheduleError, match="concurrency must be a positive int"):
        estimate_wall_time(plan, seconds, concurrency=concurrency)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "detail"),
    [
        (lambda order: order[1:], "missing model.p.s1"),
        (lambda order: [*order, "model.p.other"], "model.p.other is not planned"),
        (lambda order: [*order, order[0]], "listed twice"),
    ],
)
def test_an_order_must_list_every_planned_node_once(
    hidden_chain: tuple[ExecutionPlan, dict[str, float]], change: object, detail: str
) -> None:
    plan, seconds = hidden_chain
    order = change(list(plan.nodes))  # type: ignore[operator]
    with pytest.raises(ScheduleError, match=detail):
        estimate_wall_time(plan, seconds, concurrency=2, order=order)


def test_estimates_pickle(hidden_chain: tuple[ExecutionPlan, dict[str, float]]) -> None:
    plan, seconds = hidden_chain
    estimate = estimate_wall_time(plan, seconds, concurrency=2)
    copy = pickle.loads(pickle.dumps(estimate))
    assert copy.starts == estimate.starts
    assert copy.critical_path == estimate.critical_path


SCHEDULING_NAMES = [
    "DEFAULT_DURATIONS",
    "ConcurrencyKey",
    "ConcurrencyKeyError",
    "CriticalPath",
    "DurationHistory",
    "Durations",
    "Estimate",
    "PathStep",
    "ScheduleError",
    "critical_path",
    "estimate_wall_time",
    "keys_by_node",
    "node_result_timings",
    "run_results_timings",
]


@pytest.mark.parametrize("name", SCHEDULING_NAMES)
def test_scheduling_api_is_public_and_documented(name: str) -> None:
    assert name in dbt_graph.__all__
    value = getattr(dbt_graph, name)
    assert isinstance(value, dict) or value.__doc__


@pytest.mark.parametrize(
    "module",
    [
        "dbt_graph._durations",
        "dbt_graph._critical_path",
        "dbt_graph._estimate",
        "dbt_graph._concurrency_keys",
    ],
)
def test_docstring_examples_run(module: str) -> None:
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0
    assert result.failed == 0
