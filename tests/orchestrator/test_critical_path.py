"""Critical-path-first PER_NODE (issue 15): the submission order, plan()'s estimate, and the
duration history the orchestrator learns, with the fake executor and fake durations."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

import pytest
from dbt_graph import (
    ConcurrencyKey,
    DurationHistory,
    Manifest,
    NodeStatus,
    build_plan,
    critical_path,
    estimate_wall_time,
    keys_by_node,
)
from dbt_graph.testing import FakeExecutor, ManifestBuilder
from prefect_dbt_orchestrator import CacheConfig, PrefectDbtOrchestrator, PrefectDbtSettings
from prefect_dbt_orchestrator._outcomes import NodeOutcome, OutcomeStatus
from prefect_dbt_orchestrator._scheduling import Scheduler

#: Expected seconds: the chain c1 -> c2 -> (t_c2) -> c3 is the longest path, but its head comes
#: after the short models in plan order.
SECONDS = {"model.p.a1": 3.0, "model.p.c1": 1.0, "model.p.c2": 1.0, "model.p.c3": 2.0}
PLAN_ORDER = ["a1", "a2", "a3", "c1", "c2", "t_c2", "c3"]
#: Ready at the start: a1 (3 s), a2 and a3 (the models' median, 1.5 s), c1 (4.5 s to the end).
CRITICAL_PATH_ORDER = ["c1", "c2", "a1", "t_c2", "c3", "a2", "a3"]


def uid(name: str) -> str:
    return f"test.p.{name}" if name.startswith("t_") else f"model.p.{name}"


@pytest.fixture
def trap(tmp_path: Path) -> Manifest:
    return (
        ManifestBuilder()
        .model("a1")
        .model("a2")
        .model("a3")
        .model("c1")
        .model("c2", depends_on=["c1"])
        .test("t_c2", depends_on=["c2"])
        .model("c3", depends_on=["c2"])
        .build_file(tmp_path / "target")
    )


def history_file(settings: PrefectDbtSettings) -> Path:
    # The profile names no target, so dbt's (and the history's) target is "default".
    return settings.resolved_target_path() / "orchestrator-durations.default.json"


def seed_history(settings: PrefectDbtSettings, seconds: dict[str, float]) -> None:
    history_file(settings).write_text(json.dumps(DurationHistory().record(seconds).to_json()))


def read_history(path: Path) -> DurationHistory:
    return DurationHistory.from_json(json.loads(path.read_text()))


def per_node(project, executor, **kw) -> PrefectDbtOrchestrator:
    return PrefectDbtOrchestrator(
        settings=project, executor=executor, execution_mode="per_node", **kw
    )


def started_order(executor: FakeExecutor) -> list[str]:
    return [r.nodes[0].unique_id for r in executor.requests]


@pytest.mark.usefixtures("prefect_server")
def test_ready_nodes_start_longest_remaining_path_first(project, trap) -> None:
    seed_history(project, SECONDS)
    orders = []
    for _ in range(2):  # equal inputs, equal order
        executor = FakeExecutor(trap)
        per_node(project, executor, concurrency=1).run_build()
        orders.append(started_order(executor))
        seed_history(project, SECONDS)  # the build learned; put the same inputs back
    assert orders[0] == [uid(n) for n in CRITICAL_PATH_ORDER]
    assert orders[1] == orders[0]


@pytest.mark.usefixtures("prefect_server")
def test_plan_order_is_kept_as_an_option(project, trap) -> None:
    seed_history(project, SECONDS)
    executor = FakeExecutor(trap)
    per_node(project, executor, concurrency=1, scheduling="plan_order").run_build()
    assert started_order(executor) == [uid(n) for n in PLAN_ORDER]


@pytest.mark.usefixtures("prefect_server")
def test_without_history_the_longest_chain_of_nodes_starts_first(project, trap) -> None:
    executor = FakeExecutor(trap)
    per_node(project, executor, concurrency=1).run_build()
    assert started_order(executor)[:2] == [uid("c1"), uid("c2")]


def drive(scheduler: Scheduler, seconds: dict[str, float]) -> dict[str, float]:
    """Run ``scheduler`` on a fake clock: each submitted node takes its seconds."""
    clock, starts, running = 0.0, {}, []

    def submit(node: str) -> None:
        starts[node] = clock
        running.append((clock + seconds[node], node))

    scheduler._submit = submit
    scheduler.start()
    while running:
        running.sort()
        clock, node = running.pop(0)
        scheduler.node_done(node, NodeOutcome(status=OutcomeStatus.SUCCESS))
    return starts


def random_project(rng: random.Random) -> Manifest:
    builder = ManifestBuilder()
    names: list[str] = []
    for i in range(60):
        parents = rng.sample(names, min(len(names), rng.randint(0, 2)))
        builder.model(f"m{i}", depends_on=parents, tags=["heavy"] if i % 7 == 0 else [])
        if i % 4 == 0:
            builder.test(f"t{i}", depends_on=[f"m{i}"])
        names.append(f"m{i}")
    return builder.build()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_scheduler_starts_each_node_when_the_estimate_says(seed: int) -> None:
    """The estimate simulates the scheduler itself: same order, same keys, same starts."""
    rng = random.Random(seed)
    manifest = random_project(rng)
    plan = build_plan(manifest)
    seconds = {u: round(rng.uniform(0.1, 3.0), 6) for u in plan.nodes}  # ends never tie
    held = keys_by_node(manifest, [ConcurrencyKey(selector="tag:heavy", limit=1)], plan.nodes)
    rank = critical_path(plan, seconds).rank
    scheduler = Scheduler(
        plan, submit=lambda node: None, priority=rank.__getitem__, max_in_flight=3, keys=held
    )
    starts = drive(scheduler, seconds)
    estimate = estimate_wall_time(plan, seconds, concurrency=3, keys=held)
    assert starts == pytest.approx(dict(estimate.starts))
    assert max(starts[u] + seconds[u] for u in plan.nodes) == pytest.approx(estimate.wall_seconds)


def test_plan_shows_the_expected_wall_time_and_the_critical_path(project, trap) -> None:
    seed_history(project, SECONDS)
    plan = per_node(project, FakeExecutor(trap), concurrency=2).plan()
    expected = {**dict.fromkeys(map(uid, PLAN_ORDER), 1.5), uid("t_c2"): 0.5, **SECONDS}
    estimate = estimate_wall_time(build_plan(trap), expected, concurrency=2)
    assert plan.expected_wall_seconds == estimate.wall_seconds == 6.0
    assert [(s.unique_id, s.seconds) for s in plan.critical_path] == [
        (uid("c1"), 1.0),
        (uid("c2"), 1.0),
        (uid("t_c2"), 0.5),
        (uid("c3"), 2.0),
    ]
    assert plan.estimate.lower_bound_seconds == estimate.lower_bound_seconds
    assert plan.known_durations == 4
    text = str(plan)
    assert "  Expected wall time 6.0s at concurrency 2 (lower bound 5.2s" in text
    assert "  Critical path: 4 node(s), 4.5s\n    - model.p.c1 (1.0s)\n" in text
    assert "  Durations: 4 of 7 node(s) from earlier builds" in text


def test_plan_estimates_per_wave_wave_after_wave(project, trap) -> None:
    seed_history(project, SECONDS)
    plan = PrefectDbtOrchestrator(settings=project, executor=FakeExecutor(trap), threads=2).plan()
    expected = {**dict.fromkeys(map(uid, PLAN_ORDER), 1.5), uid("t_c2"): 0.5, **SECONDS}
    waves = estimate_wall_time(
        build_plan(trap),
        expected,
        concurrency=2,
        order=list(build_plan(trap).nodes),
        wave_barriers=True,
    )
    assert plan.expected_wall_seconds == waves.wall_seconds


@pytest.mark.usefixtures("prefect_server")
def test_a_build_learns_from_nodes_that_ran_to_completion(project, trap) -> None:
    executor = FakeExecutor(
        trap,
        outcomes={uid("c2"): NodeStatus.ERROR},  # t_c2 and c3 are skipped
        fail_times={uid("a1"): 1},  # a1 needs a retry: its last attempt counts
        delays={uid("a3"): 0.3},
    )
    orch = per_node(project, executor, retries=1, retry_delay_seconds=0, raise_on_failure=False)
    results = orch.run_build()
    learned = read_history(history_file(project)).durations().known
    assert set(learned) == {uid("a1"), uid("a2"), uid("a3"), uid("c1")}
    # dbt's time plus one per-node cost around it, the same for every node of the build.
    around = {u: learned[u] - results[u]["timing"]["execution_time"] for u in learned}
    assert min(around.values()) >= 0
    assert max(around.values()) == pytest.approx(min(around.values()), abs=1e-5)
    assert learned[uid("a3")] >= 0.3


class SlowStart(FakeExecutor):
    """Takes a second before its first node, outside dbt's time: an executor starting up."""

    def execute(self, request):
        if not self.requests:
            time.sleep(1.0)
        return super().execute(request)


@pytest.mark.usefixtures("prefect_server")
def test_the_executor_starting_up_is_not_charged_to_the_first_node(project, trap) -> None:
    executor = SlowStart(trap)
    per_node(project, executor, concurrency=1).run_build()
    first = executor.requests[0].nodes[0].unique_id
    learned = read_history(history_file(project)).durations().known
    # It held its slot for more than a second, but it is no slower than the others next time.
    assert learned[first] < 1.0


@pytest.mark.usefixtures("prefect_server")
def test_the_history_keeps_earlier_builds_and_forgets_removed_nodes(project, trap) -> None:
    seed_history(project, {uid("c1"): 100.0, "model.p.removed": 1.0})
    per_node(project, FakeExecutor(trap)).run_build()
    samples = read_history(history_file(project)).samples
    assert "model.p.removed" not in samples
    assert len(samples[uid("c1")]) == 2 and samples[uid("c1")][0] == 100.0


@pytest.mark.usefixtures("prefect_server")
def test_a_corrupt_history_is_ignored_and_replaced(project, trap, caplog) -> None:
    history_file(project).write_text("{not json")
    orch = per_node(project, FakeExecutor(trap))
    with caplog.at_level(logging.WARNING, logger="prefect_dbt_orchestrator.durations"):
        assert orch.plan().known_durations == 0
    assert "Ignoring the stored duration history orchestrator-durations.default" in caplog.text
    orch.run_build()
    assert len(read_history(history_file(project)).samples) == 7


@pytest.mark.usefixtures("prefect_server")
def test_with_a_cache_the_history_lives_in_the_key_storage(project, trap, tmp_path) -> None:
    keys = tmp_path / "keys"
    cache = CacheConfig(result_storage=tmp_path / "results", key_storage=keys)
    per_node(project, FakeExecutor(trap), cache=cache).run_build()
    assert not history_file(project).exists()
    stored = read_history(keys / "p" / "orchestrator-durations.default.json")
    assert uid("c1") in stored.samples
    # A second build is all cache hits (but for the test): hits teach nothing.
    per_node(project, FakeExecutor(trap), cache=cache).run_build()
    again = read_history(keys / "p" / "orchestrator-durations.default.json").samples
    assert len(again[uid("c1")]) == 1 and len(again[uid("t_c2")]) == 2


@pytest.mark.usefixtures("prefect_server")
def test_plan_counts_predicted_cache_hits_as_free(project, trap, tmp_path) -> None:
    cache = CacheConfig(result_storage=tmp_path / "results", exclude_resource_types=frozenset())
    # With a cache, the history is kept with the key records.
    keys = tmp_path / "results" / "cache-keys" / "p"
    keys.mkdir(parents=True)
    history = DurationHistory().record(SECONDS).to_json()
    (keys / "orchestrator-durations.default.json").write_text(json.dumps(history))
    orch = per_node(project, FakeExecutor(trap), cache=cache, concurrency=2)
    assert orch.plan().expected_wall_seconds == 6.0
    orch.run_build()
    plan = orch.plan()
    assert set(plan.cache_predictions.values()) == {"hit"}
    assert plan.expected_wall_seconds == 0.0


def test_per_wave_learns_dbt_time(project, trap) -> None:
    executor = FakeExecutor(trap, delays={uid("a1"): 0.05})
    results = PrefectDbtOrchestrator(settings=project, executor=executor).run_build()
    learned = read_history(history_file(project)).durations().known
    assert uid("a1") in learned
    assert learned == {u: r["timing"]["execution_time"] for u, r in results.items() if u in learned}


def test_an_unknown_scheduling_is_refused(project, trap) -> None:
    message = r"Invalid scheduling 'fastest'\. Must be one of: critical_path, plan_order"
    with pytest.raises(ValueError, match=message):
        per_node(project, FakeExecutor(trap), scheduling="fastest")
