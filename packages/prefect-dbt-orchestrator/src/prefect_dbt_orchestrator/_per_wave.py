"""PER_WAVE: one dbt invocation per wave, waves one after the other."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from dbt_graph import Command, ErrorInfo, Executor, Node, ResourceType

from prefect_dbt_orchestrator import _assets, _logs
from prefect_dbt_orchestrator._context import RunContext
from prefect_dbt_orchestrator._history import HistoryStore, dbt_times
from prefect_dbt_orchestrator._outcomes import (
    NodeOutcome,
    OutcomeStatus,
    from_node_result,
    infrastructure_error,
    root_failures,
    skipped_upstream,
)


def run_per_wave(ctx: RunContext, executor: Executor) -> dict[str, NodeOutcome]:
    """Run each wave as one ``dbt build``; skip what is downstream of a failure.

    A node is skipped only when something it depends on failed (or was skipped for that
    reason); independent branches keep running, as in ``dbt build``, and ``failed_upstream``
    names the root failures, not the skipped nodes between. dbt's own time for each node goes
    into the duration history.
    """
    logger = _logs.run_logger()
    outcomes: dict[str, NodeOutcome] = {}
    roots: dict[str, frozenset[str]] = {}
    deps = ctx.plan.dependencies
    for wave in ctx.plan.waves:
        runnable = []
        for node in wave.nodes:
            upstream = root_failures(node.unique_id, deps, outcomes, roots)
            if upstream:
                roots[node.unique_id] = upstream
                outcomes[node.unique_id] = skipped_upstream(upstream)
            else:
                runnable.append(node)
        if not runnable:
            continue
        logger.info(
            "Wave %d: building %d node(s) in one dbt invocation", wave.number, len(runnable)
        )
        # `dbt build` runs a unit test only together with the model it tests, so unit tests
        # selected on their own go through `dbt test`.
        unit_tests = tuple(n for n in runnable if n.resource_type is ResourceType.UNIT_TEST)
        others = tuple(n for n in runnable if n.resource_type is not ResourceType.UNIT_TEST)
        for command, nodes in ((Command.BUILD, others), (Command.TEST, unit_tests)):
            if nodes:
                _run_wave_part(ctx, executor, command, nodes, outcomes, roots, logger)
    store = HistoryStore.for_run(ctx)
    store.save(store.load(), dbt_times(outcomes), nodes=ctx.manifest.nodes)
    return outcomes


def _run_wave_part(
    ctx: RunContext,
    executor: Executor,
    command: Command,
    nodes: tuple[Node, ...],
    outcomes: dict[str, NodeOutcome],
    roots: dict[str, frozenset[str]],
    logger: Any,
) -> None:
    try:
        execution = executor.execute(ctx.request(command, nodes))
    except Exception as exc:  # the executor could not run dbt at all
        info = ErrorInfo.from_exception(exc)
        for node in nodes:
            outcomes[node.unique_id] = infrastructure_error(info.type, info.message)
        return
    level = ctx.options.log_level
    _logs.emit(execution.logs, logger, min_level=level)
    deps = ctx.plan.dependencies
    for node in nodes:
        node_result = execution.results[node.unique_id]
        _logs.emit(node_result.logs, logger, min_level=level)
        outcome = from_node_result(node_result, execution, command=command.value)
        if outcome.status is OutcomeStatus.SKIPPED:
            # dbt skipped it inside the wave; name the failed nodes above it if any.
            upstream = root_failures(node.unique_id, deps, outcomes, roots)
            if upstream:
                outcome = replace(outcome, failed_upstream=tuple(sorted(upstream)))
                roots[node.unique_id] = upstream
        outcomes[node.unique_id] = outcome
    _assets.record_wave(ctx, execution)
