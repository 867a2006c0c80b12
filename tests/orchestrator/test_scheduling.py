"""The PER_NODE scheduler alone: ready queue order, the in-flight limit, skips and phases.

No Prefect here: "submitting" appends to a list, and the tests (or a loop running the
FakeExecutor) say when a node is done.
"""

from __future__ import annotations

from collections import deque

import pytest
from dbt_graph import Command, ConcurrencyKey, ExecutionRequest, NodeStatus, build_plan
from dbt_graph.testing import FakeExecutor, ManifestBuilder
from prefect_dbt_orchestrator._outcomes import (
    NodeOutcome,
    OutcomeStatus,
    from_node_result,
)
from prefect_dbt_orchestrator._scheduling import Scheduler

OK = NodeOutcome(status=OutcomeStatus.SUCCESS)
FAILED = NodeOutcome(status=OutcomeStatus.ERROR)


def fan():
    """raw -> a, b, c, d (independent) -> mart."""
    builder = ManifestBuilder().seed("raw")
    for name in "abcd":
        builder.model(name, depends_on=["raw"])
    return builder.model("mart", depends_on=list("abcd")).build()


def ids(*names: str) -> list[str]:
    return [f"model.p.{n}" if n != "raw" else "seed.p.raw" for n in names]


def test_ready_nodes_go_out_in_plan_order_by_default() -> None:
    started: list[str] = []
    scheduler = Scheduler(build_plan(fan()), submit=started.append)
    scheduler.start()
    assert started == ids("raw")
    scheduler.node_done("seed.p.raw", OK)
    assert started == ids("raw", "a", "b", "c", "d")


def test_the_submission_order_can_be_plugged_in() -> None:
    started: list[str] = []
    # Say d's path is the longest: it goes first, then the rest by the same key.
    rank = {"model.p.d": 0, "model.p.b": 1}
    scheduler = Scheduler(
        build_plan(fan()), submit=started.append, priority=lambda uid: rank.get(uid, 9)
    )
    scheduler.start()
    scheduler.node_done("seed.p.raw", OK)
    assert started == ids("raw", "d", "b", "a", "c")


def test_at_most_max_in_flight_run_and_the_rest_wait_in_the_queue() -> None:
    started: list[str] = []
    scheduler = Scheduler(build_plan(fan()), submit=started.append, max_in_flight=2)
    scheduler.start()
    scheduler.node_done("seed.p.raw", OK)
    assert started == ids("raw", "a", "b")
    assert scheduler.in_flight == set(ids("a", "b"))
    scheduler.node_done("model.p.b", OK)
    assert started[-1] == "model.p.c" and len(scheduler.in_flight) == 2
    for uid in ids("a", "c", "d"):
        scheduler.node_done(uid, OK)
        assert len(scheduler.in_flight) <= 2
    assert started[-1] == "model.p.mart"
    scheduler.node_done("model.p.mart", OK)
    assert not scheduler.in_flight and len(scheduler.outcomes) == 6


def test_a_node_whose_key_is_full_is_passed_over_until_the_key_has_room() -> None:
    started: list[str] = []
    heavy = ConcurrencyKey(selector="tag:heavy", limit=1)
    held = {uid: (heavy,) for uid in ids("a", "b")}
    scheduler = Scheduler(build_plan(fan()), submit=started.append, max_in_flight=3, keys=held)
    scheduler.start()
    scheduler.node_done("seed.p.raw", OK)
    # a and b share the key: b waits, and c and d take the free slots in its place.
    assert started == ids("raw", "a", "c", "d")
    scheduler.node_done("model.p.c", OK)
    assert started[-1] == "model.p.d"  # a still holds the key: nothing new starts
    scheduler.node_done("model.p.a", OK)
    assert started[-1] == "model.p.b"


def test_a_failure_skips_what_is_below_it_naming_the_root() -> None:
    started: list[str] = []
    scheduler = Scheduler(build_plan(fan()), submit=started.append)
    scheduler.start()
    scheduler.node_done("seed.p.raw", FAILED)
    assert started == ids("raw")  # nothing else may start
    assert not scheduler.in_flight
    for uid in ids("a", "b", "c", "d", "mart"):
        assert scheduler.outcomes[uid].status is OutcomeStatus.SKIPPED
        assert scheduler.outcomes[uid].failed_upstream == ("seed.p.raw",)


def test_a_long_chain_of_skips_needs_no_recursion() -> None:
    builder = ManifestBuilder().model("m0")
    for i in range(1, 3000):
        builder.model(f"m{i}", depends_on=[f"m{i - 1}"])
    scheduler = Scheduler(build_plan(builder.build()), submit=lambda uid: None)
    scheduler.start()
    scheduler.node_done("model.p.m0", FAILED)
    assert len(scheduler.outcomes) == 3000
    assert scheduler.outcomes["model.p.m2999"].failed_upstream == ("model.p.m0",)


def test_deferred_tests_wait_for_the_whole_first_phase() -> None:
    m = ManifestBuilder().model("a").model("slow").test("t_a", depends_on=["a"]).build()
    started: list[str] = []
    scheduler = Scheduler(build_plan(m, test_strategy="deferred"), submit=started.append)
    scheduler.start()
    scheduler.node_done("model.p.a", OK)
    assert "test.p.t_a" not in started  # slow is still running
    scheduler.node_done("model.p.slow", OK)
    assert started[-1] == "test.p.t_a"


def test_an_empty_plan_starts_nothing() -> None:
    scheduler = Scheduler(build_plan(ManifestBuilder().build()), submit=pytest.fail)
    scheduler.start()
    assert scheduler.outcomes == {} and not scheduler.in_flight


def test_it_drives_the_fake_executor_through_a_plan_with_a_limit() -> None:
    """A synchronous driver: what the task runner does, one node at a time, with a limit."""
    m = (
        ManifestBuilder()
        .seed("raw")
        .model("stg", depends_on=["raw"])
        .test("t_stg", depends_on=["stg"])
        .model("mart", depends_on=["stg"])
        .model("other")
        .build()
    )
    executor = FakeExecutor(m, outcomes={"test.p.t_stg": NodeStatus.FAIL})
    pending: deque[str] = deque()
    peak = 0

    def submit(uid: str) -> None:
        nonlocal peak
        pending.append(uid)
        peak = max(peak, len(pending))

    plan = build_plan(m)
    scheduler = Scheduler(plan, submit=submit, max_in_flight=2)
    scheduler.start()
    while scheduler.in_flight:
        uid = pending.popleft()
        node = plan.nodes[uid]
        request = ExecutionRequest(command=Command.for_node(node), nodes=(node,))
        execution = executor.execute(request)
        outcome = from_node_result(execution.results[uid], execution, command="x")
        scheduler.node_done(uid, outcome)
    statuses = {uid: o.status.value for uid, o in scheduler.outcomes.items()}
    assert statuses == {
        "seed.p.raw": "success",
        "model.p.other": "success",
        "model.p.stg": "success",
        "test.p.t_stg": "error",
        "model.p.mart": "skipped",
    }
    assert peak <= 2
    assert "model.p.mart" not in {r.nodes[0].unique_id for r in executor.requests}
