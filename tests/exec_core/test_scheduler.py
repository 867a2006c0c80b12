"""The scheduler with in-process fake workers: coalescing, sessions, lingering, timeouts, deaths.

No dbt runs here (see ``fake_workers``); each test takes well under a second.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from dbt_exec_core import WorkerError
from dbt_exec_core._invocation import RunArgs
from dbt_exec_core._jobs import Job, Lane
from dbt_exec_core._project import ProjectPaths
from dbt_exec_core._protocol import DEPS, FRESHNESS, RUN, Cancel, EndSession, ManifestRef
from dbt_exec_core._scheduler import Scheduler
from dbt_graph import ExecutionResult, NodeStatus
from exec_core.fake_workers import PATIENCE, FakeWorkers

LANE = Lane(
    manifest=ManifestRef(key="dev-0", digest="d1", pickle_path="/nowhere/manifest.pickle"),
    target=None,
    vars_json="{}",
    extra_args=(),
    env_digest="e1",
    duckdb_path=None,
    profile_threads=4,
)
DUCKDB = replace(LANE, duckdb_path="/nowhere/shop.duckdb")


def _run_args(threads: int | None = None) -> RunArgs:
    """The executor's own argument builder, for a project that is never opened."""
    project = Path("/nowhere/shop")
    paths = ProjectPaths(project_dir=project, profiles_dir=project, target_path=project / "target")
    return RunArgs(
        paths=paths,
        threads=threads,
        state_path=None,
        defer=False,
        defer_state_path=None,
        favor_state=False,
    )


def _job(
    *uids: str,
    lane: Lane = LANE,
    session: str | None = None,
    related: tuple[str, ...] = (),
    full_refresh: bool | None = None,
    timeout: float | None = None,
) -> Job:
    return Job(
        kind=RUN,
        node_ids=uids,
        lane=lane,
        command="build",
        selectors={uid: uid for uid in uids},
        related=frozenset(related),
        full_refresh=full_refresh,
        timeout=timeout,
        session=session,
    )


def _submit(scheduler: Scheduler, job: Job) -> Job:
    scheduler.submit(job)
    return job


def _answer(job: Job) -> ExecutionResult:
    return job.future.result(PATIENCE)


@pytest.fixture
def fakes() -> FakeWorkers:
    return FakeWorkers()


@pytest.fixture
def scheduler_for(fakes: FakeWorkers) -> Iterator:
    made: list[Scheduler] = []

    def make(max_workers: int = 4, run_args=None, linger: float = 0.0) -> Scheduler:
        scheduler = Scheduler(
            max_workers=max_workers,
            log_level="info",
            window_seconds=0.005,
            run_args=run_args or _run_args(),
            start_worker=fakes,
        )
        scheduler.linger = linger
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.close()


def _queue_behind_busy_worker(scheduler: Scheduler, fakes: FakeWorkers, *jobs: Job) -> None:
    """Submit ``jobs`` while the only worker is busy, so that all are pending together."""
    gate = fakes.hold(DEPS)
    busy = Job(kind=DEPS, args=("deps",))
    scheduler.submit(busy)
    fakes.wait_sent(1)
    for job in jobs:
        scheduler.submit(job)
    gate.set()
    busy.future.result(PATIENCE)


def test_independent_requests_waiting_together_share_one_invocation(scheduler_for, fakes):
    scheduler = scheduler_for(max_workers=1)
    first, second = _job("a1", "a2"), _job("b1")
    _queue_behind_busy_worker(scheduler, fakes, first, second)
    one, two = _answer(first), _answer(second)
    assert set(one.results) == {"a1", "a2"} and set(two.results) == {"b1"}
    assert one.success and two.success
    runs = [s.invoke for s in fakes.sent if s.invoke.kind == RUN]
    assert len(runs) == 1 and runs[0].requested == {"a1", "a2", "b1"}
    assert one.invocation_args == two.invocation_args


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (_job("a1"), _job("b1", related=("a1",))),  # b1 is downstream of a1
        (_job("a1", full_refresh=True), _job("b1", full_refresh=False)),
        (_job("a1"), _job("b1", lane=replace(LANE, vars_json='{"day": 1}'))),
    ],
    ids=["dependent", "full-refresh differs", "other vars"],
)
def test_requests_that_cannot_share_an_invocation_get_their_own(
    scheduler_for, fakes, first, second
):
    scheduler = scheduler_for(max_workers=1)
    _queue_behind_busy_worker(scheduler, fakes, first, second)
    assert _answer(first).success and _answer(second).success
    runs = [s.invoke.requested for s in fakes.sent if s.invoke.kind == RUN]
    assert runs == [{"a1"}, {"b1"}]


def test_single_node_requests_join_the_running_session_without_a_barrier(scheduler_for, fakes):
    scheduler = scheduler_for()
    slow_gate = fakes.hold("slow")
    slow, quick = _job("slow", session="s"), _job("quick", session="s")
    scheduler.submit(slow)
    fakes.wait_sent(1)
    scheduler.submit(quick)
    assert _answer(quick).success  # answered while "slow" still runs in the same session
    assert not slow.future.done()
    slow_gate.set()
    assert _answer(slow).success
    sent = fakes.wait_sent(2)
    assert [s.worker for s in sent] == [0, 0] and {s.invoke.session for s in sent} == {"s"}
    assert len(fakes.workers) == 1


def test_a_session_request_waits_for_its_parent_in_flight(scheduler_for, fakes):
    scheduler = scheduler_for()
    gate = fakes.hold("parent")
    parent, child = _job("parent", session="s"), _job("child", session="s", related=("parent",))
    scheduler.submit(parent)
    first = fakes.wait_sent(1)[0].invoke
    scheduler.submit(child)
    gate.set()
    assert _answer(parent).success and _answer(child).success
    second = fakes.wait_sent(2)[1].invoke
    assert fakes.events.index(("sent", second.batch_id)) > fakes.events.index(
        ("done", first.batch_id)
    )


def test_a_lingering_session_takes_the_next_request_and_ends_when_asked(scheduler_for, fakes):
    scheduler = scheduler_for(linger=60.0)
    for uid in ("a", "b", "c"):  # each sent only once the previous one was answered
        assert _answer(_submit(scheduler, _job(uid, session="s"))).success
    sent = fakes.wait_sent(3)
    assert {s.worker for s in sent} == {0} and all(s.invoke.linger == 60.0 for s in sent)
    worker = fakes.workers[0]
    assert not any(isinstance(m, EndSession) for m in worker.messages)
    scheduler.end_sessions(timeout=PATIENCE)
    # Ended at once, or (answered before its invocation was over) as soon as it is.
    fakes.wait_for(lambda: any(isinstance(m, EndSession) for m in worker.messages))


@pytest.mark.parametrize(
    ("kind", "lane"), [(FRESHNESS, DUCKDB), (DEPS, LANE)], ids=["freshness", "deps"]
)
def test_other_work_for_a_worker_holding_a_lingering_session_runs(scheduler_for, fakes, kind, lane):
    # Two builds sharing one executor: a per-node run leaves its session lingering, and the
    # other build's freshness check (or a deps/parse) needs the same worker.
    scheduler = scheduler_for(max_workers=1, linger=60.0)
    assert _answer(_submit(scheduler, _job("a", lane=lane, session="s"))).success
    other = Job(kind=kind, args=(kind,), duckdb_path=lane.duckdb_path)
    scheduler.submit(other)
    assert other.future.result(PATIENCE).success
    assert _answer(_submit(scheduler, _job("b", lane=lane, session="s"))).success


def test_a_timed_out_request_stops_its_worker_and_the_others_run_again(scheduler_for, fakes):
    scheduler = scheduler_for()
    fakes.hold("stuck")
    other_gate = fakes.hold("other")
    stuck = _job("stuck", session="s", timeout=0.2)
    other = _job("other", session="s")
    scheduler.submit(stuck)
    scheduler.submit(other)
    fakes.wait_sent(2)
    timed_out = _answer(stuck)
    assert timed_out.error is not None and timed_out.error.type == "TimeoutError"
    assert timed_out.results["stuck"].status is NodeStatus.ERROR
    assert "Timed out after 0.2s" in (timed_out.results["stuck"].message or "")
    assert any(isinstance(m, Cancel) for m in fakes.workers[0].messages)
    assert fakes.workers[0].dead
    resent = fakes.wait_sent(3)[2]
    assert resent.worker == 1 and resent.invoke.requested == {"other"}
    other_gate.set()
    assert _answer(other).success


def test_a_worker_that_dies_fails_its_requests_naming_it_and_is_replaced(scheduler_for, fakes):
    scheduler = scheduler_for()
    fakes.crash_on("victim")
    lost = _answer(_submit(scheduler, _job("victim", session="s")))
    assert lost.error is not None and lost.error.type == "WorkerError"
    message = lost.results["victim"].message or ""
    assert "dbt worker 0 (pid 40000) exited unexpectedly" in message
    assert lost.results["victim"].status is NodeStatus.ERROR
    after = _answer(_submit(scheduler, _job("next", session="s")))
    assert after.success and fakes.sent[-1].worker == 1


def test_an_internal_error_fails_every_waiting_request_instead_of_hanging(scheduler_for, fakes):
    def broken(*args: object, **kwargs: object) -> tuple[str, ...]:
        raise RuntimeError("boom")

    scheduler = scheduler_for(max_workers=1, run_args=broken)
    first, second = _job("a"), _job("b", related=("a",))
    _queue_behind_busy_worker(scheduler, fakes, first, second)
    for job in (first, second):
        with pytest.raises(WorkerError, match="RuntimeError: boom"):
            job.future.result(PATIENCE)
    assert scheduler.failed
    with pytest.raises(WorkerError, match="boom"):
        scheduler.submit(_job("c"))


def _threads(args: tuple[str, ...]) -> int:
    return int(args[args.index("--threads") + 1])


@pytest.mark.parametrize(("in_flight", "expected"), [(4, 4), (16, 16), (None, 8)])
def test_threads_never_cap_how_many_requests_a_session_runs_at_once(
    scheduler_for, fakes, in_flight, expected
):
    # PrefectDbtOrchestrator(concurrency=4, threads=2): 4 nodes at once, on every adapter.
    scheduler = scheduler_for(run_args=_run_args(threads=2))
    scheduler.in_flight = in_flight
    assert _answer(_submit(scheduler, _job("a", lane=DUCKDB, session="s"))).success
    assert _threads(fakes.sent[0].invoke.args) == expected


def test_threads_is_dbts_own_for_a_multi_node_request(scheduler_for, fakes):
    scheduler = scheduler_for(run_args=_run_args(threads=2))
    scheduler.in_flight = 4
    assert _answer(_submit(scheduler, _job("a", "b", "c", lane=DUCKDB))).success
    assert _threads(fakes.sent[0].invoke.args) == 2
