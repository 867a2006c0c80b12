from __future__ import annotations

import math
import sys

import pytest
from dbt_graph import (
    CriticalPath,
    CycleError,
    Durations,
    ExecutionPlan,
    Node,
    ResourceType,
    ScheduleError,
    TestStrategy,
    Wave,
    build_plan,
    critical_path,
    estimate_wall_time,
)
from dbt_graph.testing import ManifestBuilder


def m(name: str) -> str:
    return f"model.p.{name}"


def steps(cp: CriticalPath) -> list[tuple[str, float]]:
    return [(s.unique_id, s.seconds) for s in cp.steps]


def chain_plan(length: int, *, reverse_phase: bool = False) -> ExecutionPlan:
    """A plan of one chain n0 -> n1 -> ..., built directly (ManifestBuilder is quadratic)."""
    ids = [m(f"n{i}") for i in range(length)]
    nodes = {
        uid: Node(unique_id=uid, name=uid[8:], resource_type=ResourceType.MODEL, package_name="p")
        for uid in ids
    }
    return ExecutionPlan(
        nodes=nodes,
        dependencies={uid: (ids[i - 1],) if i else () for i, uid in enumerate(ids)},
        phases=(tuple(reversed(ids)) if reverse_phase else tuple(ids),),
        waves=tuple(Wave(number=i, nodes=(nodes[uid],)) for i, uid in enumerate(ids)),
        test_strategy=TestStrategy.IMMEDIATE,
    )


def test_empty_plan_has_an_empty_critical_path() -> None:
    cp = critical_path(build_plan(ManifestBuilder().build()), {})
    assert cp.steps == ()
    assert cp.seconds == 0.0
    assert cp.order == ()
    assert cp.rank == {}


def test_single_node_is_its_own_critical_path() -> None:
    cp = critical_path(build_plan(ManifestBuilder().model("a").build()), {m("a"): 2.5})
    assert steps(cp) == [(m("a"), 2.5)]
    assert cp.seconds == 2.5
    assert cp.remaining == {m("a"): 2.5}


def test_chain_remaining_path_adds_up_from_the_end() -> None:
    manifest = (
        ManifestBuilder().model("a").model("b", depends_on=["a"]).model("c", depends_on=["b"])
    ).build()
    cp = critical_path(build_plan(manifest), {m("a"): 1, m("b"): 2, m("c"): 4})
    assert cp.remaining == {m("a"): 7.0, m("b"): 6.0, m("c"): 4.0}
    assert steps(cp) == [(m("a"), 1.0), (m("b"), 2.0), (m("c"), 4.0)]
    assert cp.order == (m("a"), m("b"), m("c"))


def test_diamond_follows_the_heavier_branch() -> None:
    manifest = (
        ManifestBuilder()
        .model("a")
        .model("b", depends_on=["a"])
        .model("c", depends_on=["a"])
        .model("d", depends_on=["b", "c"])
    ).build()
    cp = critical_path(build_plan(manifest), {m("a"): 1, m("b"): 1, m("c"): 5, m("d"): 1})
    assert steps(cp) == [(m("a"), 1.0), (m("c"), 5.0), (m("d"), 1.0)]
    assert cp.remaining[m("b")] == 2.0
    assert cp.remaining[m("c")] == 6.0
    assert cp.order == (m("a"), m("c"), m("b"), m("d"))


def test_disconnected_components_interleave_by_remaining_path() -> None:
    manifest = (
        ManifestBuilder()
        .model("short")
        .model("short_child", depends_on=["short"])
        .model("long")
        .model("long_child", depends_on=["long"])
        .model("alone")
    ).build()
    seconds = {m("short"): 1, m("short_child"): 1, m("long"): 3, m("long_child"): 3, m("alone"): 4}
    cp = critical_path(build_plan(manifest), seconds)
    assert steps(cp) == [(m("long"), 3.0), (m("long_child"), 3.0)]
    assert cp.order == (m("long"), m("alone"), m("long_child"), m("short"), m("short_child"))


def test_ties_go_to_plan_order_whatever_the_order_of_the_durations() -> None:
    manifest = (
        ManifestBuilder()
        .model("z")
        .model("y")
        .model("x", depends_on=["z"])
        .model("w", depends_on=["y"])
    ).build()
    plan = build_plan(manifest)
    forward = {uid: 1.0 for uid in plan.nodes}
    backward = dict(reversed(list(forward.items())))
    first, second = critical_path(plan, forward), critical_path(plan, backward)
    assert first.order == second.order == (m("z"), m("y"), m("x"), m("w"))
    assert steps(first) == steps(second) == [(m("z"), 1.0), (m("x"), 1.0)]
    assert first.rank == {m("z"): 0, m("y"): 1, m("x"): 2, m("w"): 3}


def test_default_durations_make_the_longest_chain_by_count_critical() -> None:
    manifest = (
        ManifestBuilder()
        .model("wide_1")
        .model("wide_2")
        .model("deep_1")
        .model("deep_2", depends_on=["deep_1"])
        .model("deep_3", depends_on=["deep_2"])
    ).build()
    plan = build_plan(manifest)
    cp = critical_path(plan, Durations().for_plan(plan))
    assert [s.unique_id for s in cp.steps] == [m("deep_1"), m("deep_2"), m("deep_3")]
    assert cp.order[0] == m("deep_1")


def test_immediate_tests_are_on_the_path_they_gate() -> None:
    manifest = (
        ManifestBuilder()
        .model("a")
        .test("not_null_a", depends_on=["a"])
        .model("b", depends_on=["a"])
        .model("side")
    ).build()
    test = "test.p.not_null_a"
    cp = critical_path(build_plan(manifest), {m("a"): 1, test: 2, m("b"): 1, m("side"): 3.5})
    assert steps(cp) == [(m("a"), 1.0), (test, 2.0), (m("b"), 1.0)]
    assert cp.order == (m("a"), m("side"), test, m("b"))


def test_deferred_tests_continue_the_path_after_the_phase_barrier() -> None:
    manifest = (
        ManifestBuilder()
        .model("a")
        .model("b", depends_on=["a"])
        .test("t_a", depends_on=["a"])
        .test("t_b", depends_on=["b"])
    ).build()
    plan = build_plan(manifest, test_strategy="deferred")
    seconds = {m("a"): 1, m("b"): 2, "test.p.t_a": 5, "test.p.t_b": 1}
    cp = critical_path(plan, seconds)
    assert steps(cp) == [(m("a"), 1.0), (m("b"), 2.0), ("test.p.t_a", 5.0)]
    assert cp.seconds == 8.0
    # Every node of the first phase carries the second phase's critical path.
    assert cp.remaining[m("b")] == 7.0
    assert cp.remaining["test.p.t_b"] == 1.0


def test_a_chain_of_ten_thousand_needs_no_recursion() -> None:
    plan = chain_plan(10_000, reverse_phase=True)  # a phase not in topological order, too
    assert sys.getrecursionlimit() < 10_000
    cp = critical_path(plan, {uid: 0.5 for uid in plan.nodes})
    assert len(cp.steps) == 10_000
    assert cp.seconds == 5_000.0
    assert cp.order == tuple(plan.nodes)
    estimate = estimate_wall_time(plan, dict.fromkeys(plan.nodes, 0.5), concurrency=4)
    assert estimate.wall_seconds == estimate.lower_bound_seconds == 5_000.0


def test_a_cycle_in_a_hand_made_plan_is_reported() -> None:
    plan = chain_plan(3)
    looped = ExecutionPlan(
        nodes=plan.nodes,
        dependencies={**plan.dependencies, m("n0"): (m("n2"),)},
        phases=plan.phases,
        waves=plan.waves,
        test_strategy=plan.test_strategy,
    )
    with pytest.raises(CycleError) as caught:
        critical_path(looped, {uid: 1.0 for uid in plan.nodes})
    assert set(caught.value.cycle) == {m("n0"), m("n1"), m("n2")}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "No duration for 1 planned node"),
        (-1.0, "finite, non-negative"),
        (math.nan, "finite, non-negative"),
        (math.inf, "finite, non-negative"),
        ("2", "pass seconds as a number"),
        (True, "pass seconds as a number"),
    ],
)
def test_bad_durations_are_rejected(value: object, message: str) -> None:
    plan = build_plan(ManifestBuilder().model("a").model("b").build())
    durations = {m("a"): 1.0} if value is None else {m("a"): 1.0, m("b"): value}
    with pytest.raises(ScheduleError, match=message):
        critical_path(plan, durations)  # type: ignore[arg-type]
