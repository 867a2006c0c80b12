"""Each node's Prefect task: its body (:func:`run_node`), how it is built, how its outcome is
read back, and how a cache hit is recorded as a task run without running one
(:func:`record_cache_hit`).

The body is module-level (not a closure) so process pools and Dask can pickle it. A node that
failed raises :class:`NodeFailed` so that Prefect retries it; the exception carries the outcome.
"""

from __future__ import annotations

import concurrent.futures
import copy
import logging
import time
import uuid
from collections.abc import Set
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, TypeAlias

from dbt_graph import ErrorInfo, ExecutionRequest, Executor, Node
from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import (
    State,
    StateDetails,
    TaskRun,
    TaskRunPolicy,
    TaskRunResult,
)
from prefect.context import FlowRunContext, TagsContext
from prefect.futures import PrefectFuture
from prefect.states import Completed, Pending
from prefect.utilities.engine import emit_task_run_state_change_event

from prefect_dbt_orchestrator import _assets, _logs
from prefect_dbt_orchestrator._context import RunContext
from prefect_dbt_orchestrator._outcomes import (
    NodeOutcome,
    OutcomeStatus,
    Timing,
    from_node_result,
    infrastructure_error,
)

#: The message of a cache hit's ``Cached`` state.
CACHED_MESSAGE = "Served from the orchestrator's cache; dbt did not run it"


class NodeFailed(Exception):
    """Raised inside a node's task so Prefect retries it; carries the node's outcome."""

    def __init__(self, outcome: NodeOutcome) -> None:
        self.outcome = outcome
        super().__init__(outcome.error.message if outcome.error else "dbt node failed")

    def __reduce__(self) -> tuple[Any, ...]:
        return (NodeFailed, (self.outcome,))


def run_node(
    executor: Executor,
    request: ExecutionRequest,
    cached: NodeOutcome | None = None,
    concurrency_limits: tuple[str, ...] | None = None,
    log_level: int = logging.INFO,
) -> NodeOutcome | State[NodeOutcome]:
    """The body of every node's task: serve a cache hit, or run dbt for this one node.

    A cache hit ends in Prefect's own ``Cached`` state (a completed state of that name, as
    Prefect's task caching gives), so the UI shows and filters it as cached, and Prefect emits
    no asset materialization for it; the outcome is the state's result.

    ``concurrency_limits`` are the Prefect global concurrency limits the node must hold while
    dbt runs it (the named ``concurrency`` and its concurrency keys'): taken in one call, all at
    once, so two nodes can never each hold a limit the other waits for.
    """
    started = datetime.now(UTC)
    if cached is not None:
        served = replace(cached, timing=Timing.between(started, datetime.now(UTC)))
        return Completed(name="Cached", data=served, message=CACHED_MESSAGE)
    (node,) = request.nodes
    waited = 0.0
    if concurrency_limits:
        from prefect.concurrency.sync import concurrency

        asked = time.monotonic()
        with concurrency(list(concurrency_limits), occupy=1):
            waited = time.monotonic() - asked
            execution = executor.execute(request)
    else:
        execution = executor.execute(request)
    node_result = execution.results[node.unique_id]
    logger = _logs.run_logger()
    _logs.emit(node_result.logs, logger, min_level=log_level)
    outcome = from_node_result(node_result, execution, command=request.command.value)
    outcome = replace(outcome, limit_wait_seconds=waited)
    if outcome.status is OutcomeStatus.ERROR:
        if execution.error is not None and outcome.error is not None:
            failure = replace(outcome.error, invocation_error=execution.error.message)
            outcome = replace(outcome, error=failure)
        raise NodeFailed(outcome)
    _assets.record_materialization(node, node_result)
    return outcome


#: A node's task: it returns the outcome, or a cache hit's ``Cached`` state holding it.
NodeTask: TypeAlias = "Task[..., NodeOutcome | State[NodeOutcome]]"

node_task: NodeTask = Task(run_node, cache_policy=NO_CACHE, persist_result=False)


class TaskFactory:
    """Builds each node's task: named ``"<resource_type> <name>"``, materializing its asset.

    ``Task.with_options`` re-runs ``Task.__init__``, which reads and hashes the function's
    source every time (milliseconds per node, on the scheduling thread). So one prototype per
    kind (plain, materializing) is built that way, and each node's task is a copy of it with
    its own name and assets: the same attributes ``with_options`` would set.
    """

    _HOOKS = (
        "on_completion_hooks",
        "on_failure_hooks",
        "on_running_hooks",
        "on_rollback_hooks",
        "on_commit_hooks",
    )

    def __init__(self, ctx: RunContext) -> None:
        self._ctx = ctx
        self._plain = node_task.with_options(
            retries=ctx.options.retries, retry_delay_seconds=ctx.options.retry_delay_seconds
        )
        self._materializing: NodeTask | None = None

    def __call__(self, node: Node) -> NodeTask:
        name = f"{node.resource_type.value} {node.display_name}"
        assets = _assets.node_assets(self._ctx, node)
        if assets is None:
            return _variant(self._plain, name=name, task_run_name=name)
        asset, deps = assets
        if self._materializing is None:
            self._materializing = _assets.materializing(self._plain, self._ctx, asset, deps)
        return _variant(
            self._materializing, name=name, task_run_name=name, assets=[asset], asset_deps=deps
        )


def _variant(prototype: NodeTask, **attributes: Any) -> NodeTask:
    """A copy of ``prototype`` with ``attributes`` replaced (hook lists are not shared)."""
    task = copy.copy(prototype)
    for hooks in TaskFactory._HOOKS:
        if hasattr(prototype, hooks):
            setattr(task, hooks, list(getattr(prototype, hooks)))
    for attribute, value in attributes.items():
        setattr(task, attribute, value)
    return task


def record_cache_hit(task: NodeTask, parents: Set[TaskRunResult]) -> uuid.UUID | None:
    """Record a cache hit as a task run that went ``Pending`` -> ``Cached``; its id.

    This is what Prefect's own task caching leaves on a hit (no ``Running`` state, no result
    in the API), reported the way the task engine reports it, by a state event for each
    transition, the second following the first. Nothing runs: a hit costs a tenth of a task
    run through the engine in the flow's process (``benchmarks/README.md``). ``parents`` are
    the task runs it reads (the UI's edges). ``None`` when no events can be sent (no Prefect
    API in reach): the caller then runs the task, which serves the hit itself.
    """
    flow_run_ctx = FlowRunContext.get()
    flow_run = flow_run_ctx.flow_run if flow_run_ctx is not None else None
    flow_run_id = flow_run.id if flow_run is not None else None
    run_id = uuid.uuid4()
    pending = Pending(state_details=StateDetails(task_run_id=run_id, flow_run_id=flow_run_id))
    name = task.task_run_name if isinstance(task.task_run_name, str) else task.name
    inputs: list[Any] = sorted(parents, key=lambda parent: str(parent.id))
    now: Any = pending.timestamp  # a datetime; the schema's annotation names Prefect's alias
    task_run = TaskRun(
        id=run_id,
        name=name,
        flow_run_id=flow_run_id,
        task_key=task.task_key,
        dynamic_key=str(uuid.uuid4()),
        task_version=task.version,
        empirical_policy=TaskRunPolicy(
            retries=task.retries,
            retry_delay=task.retry_delay_seconds,  # pyright: ignore[reportArgumentType]
        ),
        tags=sorted(set(task.tags) | set(TagsContext.get().current_tags or ())),
        task_inputs={"request": inputs},
        expected_start_time=now,
        state_id=pending.id,
        state_type=pending.type,
        state_name=pending.name,
        state=pending,
        created=now,
        updated=now,
    )
    first = emit_task_run_state_change_event(task_run, None, pending)
    if first is None:
        return None
    cached = Completed(
        name="Cached",
        message=CACHED_MESSAGE,
        state_details=StateDetails(task_run_id=run_id, flow_run_id=flow_run_id),
    )
    task_run.state, task_run.state_id = cached, cached.id
    task_run.state_type, task_run.state_name = cached.type, cached.name
    emit_task_run_state_change_event(task_run, pending, cached, follows=first)
    return run_id


def collect(future: PrefectFuture[NodeOutcome]) -> NodeOutcome:
    """A finished node task's outcome: its return value, the outcome its ``NodeFailed``
    carries, or an infrastructure error when the task run itself crashed or was cancelled."""
    completed = _completed_value(future)
    if isinstance(completed, NodeOutcome):
        return completed
    try:
        outcome = future.result(raise_on_failure=False)
    except BaseException as exc:  # a crashed or cancelled task run
        info = ErrorInfo.from_exception(exc)
        return infrastructure_error(info.type, info.message)
    if isinstance(outcome, NodeFailed):
        return outcome.outcome
    if isinstance(outcome, BaseException):
        info = ErrorInfo.from_exception(outcome)
        return infrastructure_error(info.type, info.message)
    if isinstance(outcome, NodeOutcome):
        return outcome
    return infrastructure_error("RuntimeError", f"unexpected task result {outcome!r}")


def _completed_value(future: PrefectFuture[NodeOutcome]) -> Any:
    """A completed task's return value, read from its final state in memory, else ``None``.

    ``future.result()`` reaches the same value through Prefect's async result machinery (a
    round trip to its event loop thread per call); for the futures of local task runners the
    final state is right there. Anything else (failures, Dask futures) takes the long way.
    """
    wrapped = getattr(future, "wrapped_future", None)
    if not isinstance(wrapped, concurrent.futures.Future) or not wrapped.done():
        return None
    try:
        state = wrapped.result()
    except BaseException:
        return None
    if not isinstance(state, State) or not state.is_completed():
        return None
    # A ResultRecord in memory holds the value; one read back from storage (metadata) does not.
    return getattr(state.data, "result", None)
