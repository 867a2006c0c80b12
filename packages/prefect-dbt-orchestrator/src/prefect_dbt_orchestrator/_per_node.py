"""PER_NODE: one Prefect task per node, submitted as soon as its own parents finish."""

from __future__ import annotations

import concurrent.futures
import copy
import inspect
import logging
import os
import queue
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from dbt_graph import Command, ErrorInfo, ExecutionRequest, Executor, Node
from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State, TaskRunResult
from prefect.futures import PrefectFuture
from prefect.results import ResultRecord
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from prefect_dbt_orchestrator import _assets, _logs
from prefect_dbt_orchestrator._results import (
    Result,
    from_node_result,
    infrastructure_error,
    root_failures,
    skipped_upstream,
    timing,
)
from prefect_dbt_orchestrator._server import needs_local_server, start_local_server

if TYPE_CHECKING:
    from prefect_dbt_orchestrator._orchestrator import PrefectDbtOrchestrator, RunContext


class NodeFailed(Exception):
    """Raised inside a node's task so Prefect retries it; carries the node's result dict."""

    def __init__(self, result: Result) -> None:
        self.result = result
        super().__init__(result.get("error", {}).get("message", "dbt node failed"))

    def __reduce__(self) -> tuple[Any, ...]:
        return (NodeFailed, (self.result,))


def run_node(
    executor: Executor,
    request: ExecutionRequest,
    cached: Result | None = None,
    concurrency_limit: str | None = None,
    log_level: int = logging.INFO,
) -> Result:
    """The body of every node's task: serve a cache hit, or run dbt for this one node.

    Module-level (not a closure) so process pools and Dask can pickle it.
    """
    started = datetime.now(UTC)
    if cached is not None:
        _assets.record_cache_hit()
        return {**cached, "status": "cached", "timing": timing(started, datetime.now(UTC))}
    (node,) = request.nodes
    if concurrency_limit is not None:
        from prefect.concurrency.sync import concurrency

        with concurrency(concurrency_limit, occupy=1):
            execution = executor.execute(request)
    else:
        execution = executor.execute(request)
    node_result = execution.results[node.unique_id]
    logger = _logs.run_logger()
    _logs.emit(node_result.logs, logger, min_level=log_level)
    result = from_node_result(node_result, execution, command=request.command.value)
    if result["status"] == "error":
        if execution.error is not None and "error" in result:
            result["error"].setdefault("invocation_error", execution.error.message)
        raise NodeFailed(result)
    _assets.record_materialization(node, node_result)
    return result


_node_task: Task[..., Result] = task(run_node, cache_policy=NO_CACHE, persist_result=False)


def run_per_node(orch: PrefectDbtOrchestrator, ctx: RunContext) -> dict[str, Result]:
    """Schedule every planned node eagerly, phase by phase, and collect the results."""
    plan = ctx.plan
    if isinstance(orch.concurrency, str):
        _check_concurrency_limit(orch.concurrency)
    runner = _make_runner(orch, plan.estimated_parallelism)
    task_for = _TaskFactory(orch, ctx)
    results: dict[str, Result] = {}
    roots: dict[str, frozenset[str]] = {}
    log_level = logging.getLevelName(orch.settings.log_level.upper())
    log_level = log_level if isinstance(log_level, int) else logging.INFO
    scope = getattr(orch.executor, "run_scope", None)
    with _quiet_outside_flows(), _shared_api(), scope() if scope else nullcontext(), runner:
        for phase in plan.phases:
            _run_phase(orch, ctx, runner, phase, results, roots, log_level, task_for)
    return results


@contextmanager
def _shared_api() -> Iterator[None]:
    """Make every task, in any thread or worker process, use one Prefect API.

    With no API URL configured, Prefect runs a temporary local server; started lazily from
    several threads, or from process-pool and Dask workers that do not know its address, each
    would start one of its own. So it is started once here, up front, and its address is put in
    the environment that worker processes inherit.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if not needs_local_server():
        yield
        return
    server = start_local_server(min_timeout=120)
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def _quiet_outside_flows() -> Any:
    """Outside a flow run, task logs stay local instead of warning that they cannot be sent."""
    from contextlib import nullcontext

    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

    if FlowRunContext.get() is not None:
        return nullcontext()
    return temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"})


def _run_phase(
    orch: PrefectDbtOrchestrator,
    ctx: RunContext,
    runner: Any,
    phase: tuple[str, ...],
    results: dict[str, Result],
    roots: dict[str, frozenset[str]],
    log_level: int,
    task_for: _TaskFactory,
) -> None:
    plan = ctx.plan
    in_phase = set(phase)
    deps = {uid: [d for d in plan.dependencies[uid] if d in in_phase] for uid in phase}
    waiting = {uid: len(d) for uid, d in deps.items()}
    dependents: dict[str, list[str]] = {uid: [] for uid in phase}
    for uid, d in deps.items():
        for parent in d:
            dependents[parent].append(uid)
    futures: dict[str, PrefectFuture[Result]] = {}
    run_ids: dict[str, Any] = {}
    done: queue.Queue[str] = queue.Queue()
    opaque = _opaque_for(runner)
    outstanding = 0

    def submit(uid: str) -> None:
        nonlocal outstanding
        node = plan.nodes[uid]
        cached = ctx.cache.lookup(uid) if ctx.cache is not None else None
        request = ExecutionRequest(
            command=Command.for_node(node),
            nodes=(node,),
            full_refresh=ctx.full_refresh,
            target=ctx.target,
            vars=ctx.vars,
            extra_args=ctx.extra_args,
            timeout_seconds=orch.node_timeout_seconds,
        )
        node_task = task_for(node)
        future = runner.submit(
            node_task,
            parameters={
                "executor": opaque(orch.executor),
                "request": opaque(request),
                "cached": opaque(cached),
                "concurrency_limit": orch.concurrency
                if isinstance(orch.concurrency, str)
                else None,
                "log_level": log_level,
            },
            # Its parents have finished: they are recorded as its inputs (the UI's edges), not
            # waited for, so Dask never reruns a finished parent whose worker was lost.
            dependencies={
                "request": {TaskRunResult(id=run_ids[d]) for d in deps[uid] if d in run_ids}
            },
        )
        futures[uid] = future
        run_ids[uid] = future.task_run_id
        outstanding += 1
        future.add_done_callback(lambda _f, uid=uid: done.put(uid))

    def settle(uid: str) -> None:
        # A node finished (or was skipped): release or skip its dependents.
        for child in dependents[uid]:
            waiting[child] -= 1
            if waiting[child] == 0:
                upstream = root_failures(child, plan.dependencies, results, roots)
                if upstream:
                    roots[child] = upstream
                    results[child] = skipped_upstream(upstream)
                    settle(child)
                else:
                    submit(child)

    for uid in phase:
        if waiting[uid] == 0:
            upstream = root_failures(uid, plan.dependencies, results, roots)
            if upstream:
                roots[uid] = upstream
                results[uid] = skipped_upstream(upstream)
                settle(uid)
            else:
                submit(uid)
    while outstanding:
        uid = done.get()
        outstanding -= 1
        # Dropped once read: a distributed runner would otherwise keep its output, and
        # recompute it if the worker holding it were lost.
        results[uid] = _collect(futures.pop(uid))
        if ctx.cache is not None:
            ctx.cache.record(uid, results[uid])
        settle(uid)
    unfinished = [uid for uid in phase if uid not in results]
    if unfinished:
        raise RuntimeError(
            f"The scheduler could not place {len(unfinished)} node(s): {unfinished[:5]}. "
            "This is a bug in prefect-dbt-orchestrator; please report it with your manifest."
        )


def _collect(future: PrefectFuture[Result]) -> Result:
    completed = _completed_value(future)
    if isinstance(completed, Mapping):
        return dict(completed)
    try:
        outcome = future.result(raise_on_failure=False)
    except BaseException as exc:  # a crashed or cancelled task run
        info = ErrorInfo.from_exception(exc)
        return infrastructure_error(info.type, info.message)
    if isinstance(outcome, NodeFailed):
        return outcome.result
    if isinstance(outcome, BaseException):
        info = ErrorInfo.from_exception(outcome)
        return infrastructure_error(info.type, info.message)
    if isinstance(outcome, Mapping):
        return dict(outcome)
    return infrastructure_error("RuntimeError", f"unexpected task result {outcome!r}")


def _opaque_for(runner: Any) -> Any:
    """``quote`` for Prefect's own task runners: they would otherwise walk every field of a
    parameter looking for futures. Dask takes a quote (a tuple) apart, so it gets values as
    they are."""
    if isinstance(runner, (ThreadPoolTaskRunner, ProcessPoolTaskRunner)):
        return quote
    return lambda value: value


def _completed_value(future: PrefectFuture[Result]) -> Any:
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
    return state.data.result if isinstance(state.data, ResultRecord) else None


class _TaskFactory:
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

    def __init__(self, orch: PrefectDbtOrchestrator, ctx: RunContext) -> None:
        self._orch, self._ctx = orch, ctx
        self._plain = _node_task.with_options(
            retries=orch.retries, retry_delay_seconds=orch.retry_delay_seconds
        )
        self._materializing: Task[..., Result] | None = None

    def __call__(self, node: Node) -> Task[..., Result]:
        name = f"{node.resource_type.value} {node.display_name}"
        assets = _assets.node_assets(self._orch, self._ctx, node)
        if assets is None:
            return _variant(self._plain, name=name, task_run_name=name)
        asset, deps = assets
        if self._materializing is None:
            self._materializing = _assets.materializing(self._plain, self._orch, asset, deps)
        return _variant(
            self._materializing, name=name, task_run_name=name, assets=[asset], asset_deps=deps
        )


def _variant(prototype: Task[..., Result], **attributes: Any) -> Task[..., Result]:
    """A copy of ``prototype`` with ``attributes`` replaced (hook lists are not shared)."""
    task = copy.copy(prototype)
    for hooks in _TaskFactory._HOOKS:
        if hasattr(prototype, hooks):
            setattr(task, hooks, list(getattr(prototype, hooks)))
    for attribute, value in attributes.items():
        setattr(task, attribute, value)
    return task


def _make_runner(orch: PrefectDbtOrchestrator, widest_wave: int) -> Any:
    cls = orch.task_runner_type or ThreadPoolTaskRunner
    if not isinstance(cls, type):
        return cls.duplicate()  # a configured instance: a fresh copy, so it never holds a client
    if isinstance(orch.concurrency, int):
        workers = max(1, orch.concurrency)
    elif isinstance(orch.concurrency, str):
        workers = max(1, min(widest_wave, os.cpu_count() or 4))
    else:
        workers = max(1, widest_wave)
    params = inspect.signature(cls).parameters
    if "max_workers" in params:
        return cls(max_workers=workers)
    if "cluster_kwargs" in params:  # prefect-dask's DaskTaskRunner
        return cls(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1})
    return cls()


def _check_concurrency_limit(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            raise ValueError(
                f"The Prefect global concurrency limit {name!r} does not exist. Create it first "
                f"(`prefect gcl create {name} --limit 4`), or pass concurrency as an int."
            ) from None
