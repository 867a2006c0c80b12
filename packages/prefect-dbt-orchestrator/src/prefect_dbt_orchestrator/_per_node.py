"""PER_NODE: one Prefect task per node, submitted as soon as its own parents finish.

The :class:`~prefect_dbt_orchestrator._scheduling.Scheduler` decides what to start, in the
order of the call's :class:`~prefect_dbt_orchestrator._schedule.Schedule` (critical path first
by default) and within its concurrency keys; this module starts it on the task runner (a cache
hit is a task too, served without dbt), waits for tasks to finish and reports them back. After
the build, dbt's time for each node and the build's per-node cost around it (from the time
each node held its slot) go into the duration history.
"""

from __future__ import annotations

import queue
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from dbt_graph import Command, Executor
from prefect.client.schemas.objects import TaskRunResult
from prefect.futures import PrefectFuture

from prefect_dbt_orchestrator._context import RunContext
from prefect_dbt_orchestrator._history import dbt_seconds, with_overhead
from prefect_dbt_orchestrator._key_limits import ensure_key_limits
from prefect_dbt_orchestrator._node_tasks import TaskFactory, collect, record_cache_hit
from prefect_dbt_orchestrator._outcomes import NodeOutcome, Timing
from prefect_dbt_orchestrator._schedule import Schedule, schedule_for
from prefect_dbt_orchestrator._scheduling import Scheduler
from prefect_dbt_orchestrator._task_runner import (
    check_concurrency_limit,
    in_flight_cap,
    make_runner,
    one_client_outside_flows,
    opaque_for,
    quiet_outside_flows,
    shared_api,
)


def run_per_node(ctx: RunContext, executor: Executor) -> dict[str, NodeOutcome]:
    """Schedule every planned node eagerly, phase by phase, and collect the outcomes."""
    options = ctx.options
    schedule = schedule_for(ctx)
    widest = ctx.plan.estimated_parallelism
    runner = make_runner(options, widest)
    tasks = _NodeTasks(ctx, executor, runner, schedule)
    scheduler = Scheduler(
        ctx.plan,
        submit=tasks.submit,
        priority=schedule.priority,
        max_in_flight=in_flight_cap(options, widest),
        keys=schedule.held,
    )
    # The caller has entered the executor's run_scope (sized for `concurrency`) around the run.
    with quiet_outside_flows(), shared_api(), one_client_outside_flows():
        # Up front, against the API the tasks use (a local server we start has our settings).
        if isinstance(options.concurrency, str):
            check_concurrency_limit(options.concurrency)
        ensure_key_limits(options.concurrency_keys)
        with runner:
            _drive(scheduler, tasks, ctx)
    learned = with_overhead(tasks.dbt_seconds, tasks.slot_seconds)
    schedule.store.save(schedule.history, learned, nodes=ctx.manifest.nodes)
    return scheduler.outcomes


def _drive(scheduler: Scheduler, tasks: _NodeTasks, ctx: RunContext) -> None:
    """Start the first nodes, then hear back from each task and let the scheduler go on."""
    scheduler.start()
    while scheduler.in_flight:
        uid = tasks.finished.get()
        outcome = tasks.outcome(uid)
        if ctx.cache is not None:
            ctx.cache.record(uid, outcome)
        scheduler.node_done(uid, outcome)


class _NodeTasks:
    """Submits node tasks to the runner and hears back from them, in the scheduling thread."""

    def __init__(
        self, ctx: RunContext, executor: Executor, runner: Any, schedule: Schedule
    ) -> None:
        self.ctx, self.executor, self.runner = ctx, executor, runner
        self.finished: queue.Queue[str] = queue.Queue()
        #: For each node that ran to completion, dbt's seconds and those it held its slot.
        self.dbt_seconds: dict[str, float] = {}
        self.slot_seconds: dict[str, float] = {}
        self._futures: dict[str, PrefectFuture[NodeOutcome]] = {}
        #: Cache hits recorded without a task, until they are heard back.
        self._served: dict[str, NodeOutcome] = {}
        self._run_ids: dict[str, UUID] = {}
        self._submitted: dict[str, float] = {}
        self._task_for = TaskFactory(ctx)
        self._opaque = opaque_for(runner)
        self._schedule = schedule
        concurrency = ctx.options.concurrency
        self._limit = (concurrency,) if isinstance(concurrency, str) else ()

    def submit(self, uid: str) -> None:
        """Start ``uid``'s task, its parents recorded as its inputs so the UI draws the edges.

        A cache hit is recorded as a ``Cached`` task run straight away, without a task to run.
        """
        self._submitted[uid] = time.monotonic()
        started = datetime.now(UTC)
        ctx, opaque = self.ctx, self._opaque
        node = ctx.plan.nodes[uid]
        task = self._task_for(node)
        # Frozen pydantic models: hashable at run time, which pyright cannot see.
        parents = {
            TaskRunResult(id=self._run_ids[d])  # pyright: ignore[reportUnhashable]
            for d in ctx.plan.dependencies[uid]
            if d in self._run_ids
        }
        # Looked up now, when every parent has been recorded (run tokens).
        cached = ctx.cache.lookup(uid) if ctx.cache is not None else None
        if cached is not None:
            run_id = record_cache_hit(task, parents)
            if run_id is not None:
                self._run_ids[uid] = run_id
                timing = Timing.between(started, datetime.now(UTC))
                self._served[uid] = replace(cached, timing=timing)
                self.finished.put(uid)
                return
        limits = self._limit + self._schedule.limit_names(uid)
        future = self.runner.submit(
            task,
            parameters={
                "executor": opaque(self.executor),
                "request": opaque(ctx.request(Command.for_node(node), (node,))),
                "cached": opaque(cached),
                # None rather than the empty tuple: Prefect links a parameter to any task whose
                # result shares its id(), and the empty tuple is one object everywhere.
                "concurrency_limits": opaque(limits) if limits else None,
                "log_level": ctx.options.log_level,
            },
            # Its parents have finished: they are recorded as its inputs (the UI's edges), not
            # waited for, so Dask never reruns a finished parent whose worker was lost.
            dependencies={"request": parents},
        )
        self._futures[uid] = future
        self._run_ids[uid] = future.task_run_id
        future.add_done_callback(lambda _future: self.finished.put(uid))

    def outcome(self, uid: str) -> NodeOutcome:
        """The outcome of ``uid``'s finished task; notes how long it held its slot."""
        held = time.monotonic() - self._submitted.pop(uid)
        served = self._served.pop(uid, None)
        if served is not None:
            return served
        # Dropped once read: a distributed runner would otherwise keep its output, and
        # recompute it if the worker holding it were lost.
        outcome = collect(self._futures.pop(uid))
        seconds = dbt_seconds(outcome)
        if seconds is not None:
            self.dbt_seconds[uid] = seconds
            self.slot_seconds[uid] = held - outcome.limit_wait_seconds
        return outcome
