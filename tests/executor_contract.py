"""The executor contract suite: every executor, the fake included, must pass it.

Call :func:`check_executor_contract` from a test with a :class:`ContractCase` describing nodes of
the executor's project whose outcome is known. Each check is also exposed alone, so a failure
names the rule that broke.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime

from dbt_graph import (
    Command,
    ExecutionRequest,
    ExecutionResult,
    Executor,
    Manifest,
    Node,
    NodeStatus,
    load_manifest,
)


@dataclass
class ContractCase:
    """What the suite needs to know about the executor's project.

    Attributes:
        executor: The executor under test.
        manifest: The manifest of the project it runs.
        passing: A model (or seed) that builds successfully when its parents exist.
        failing: A model that fails with a database error.
        warn_test: A data test with ``severity: warn`` that returns rows.
        skipped_downstream: A model downstream of ``failing`` (dbt build skips it).
        prepare: Nodes that must be built first so ``passing`` has its parents.
        source_ids: Sources whose freshness the executor can check (may be empty).
    """

    executor: Executor
    manifest: Manifest
    passing: Node
    failing: Node
    warn_test: Node | None = None
    skipped_downstream: Node | None = None
    prepare: tuple[Node, ...] = ()
    source_ids: tuple[str, ...] = ()
    extra_checks: list[Callable[[ContractCase], None]] = field(default_factory=list)


def _run(case: ContractCase, command: Command, *nodes: Node) -> ExecutionResult:
    return case.executor.execute(ExecutionRequest(command=command, nodes=tuple(nodes)))


def check_is_an_executor(case: ContractCase) -> None:
    assert isinstance(case.executor, Executor)


def check_resolves_a_manifest_with_the_nodes(case: ContractCase) -> None:
    path = case.executor.resolve_manifest()
    manifest = load_manifest(path)
    assert case.passing.unique_id in manifest.nodes
    assert case.failing.unique_id in manifest.nodes


def check_prepares(case: ContractCase) -> None:
    if case.prepare:
        result = _run(case, Command.BUILD, *case.prepare)
        assert set(result.results) == {n.unique_id for n in case.prepare}
        assert result.success, {u: (r.status, r.message) for u, r in result.results.items()}


def check_passing_node_succeeds_with_timing(case: ContractCase) -> None:
    result = _run(case, Command.for_node(case.passing), case.passing)
    assert list(result.results) == [case.passing.unique_id]
    node = result.results[case.passing.unique_id]
    assert node.status is NodeStatus.SUCCESS, (node.status, node.message)
    assert node.error is None
    assert isinstance(node.started_at, datetime) and isinstance(node.completed_at, datetime)
    assert node.started_at <= node.completed_at
    assert node.started_at.tzinfo is not None
    assert result.success
    assert result.started_at <= result.completed_at


def check_failing_node_is_data_not_an_exception(case: ContractCase) -> None:
    result = _run(case, Command.for_node(case.failing), case.failing)
    node = result.results[case.failing.unique_id]
    assert node.status is NodeStatus.ERROR
    assert node.is_failure
    assert node.error is not None and node.error.message
    assert node.message
    assert not result.success


def check_build_reports_every_requested_node_and_no_other(case: ContractCase) -> None:
    nodes = [case.passing, case.failing]
    result = _run(case, Command.BUILD, *nodes)
    assert set(result.results) == {n.unique_id for n in nodes}
    assert result.results[case.passing.unique_id].status is NodeStatus.SUCCESS
    assert result.results[case.failing.unique_id].status is NodeStatus.ERROR


def check_downstream_of_a_failure_is_skipped_not_error(case: ContractCase) -> None:
    if case.skipped_downstream is None:
        return
    result = _run(case, Command.BUILD, case.failing, case.skipped_downstream)
    assert result.results[case.failing.unique_id].status is NodeStatus.ERROR
    downstream = result.results[case.skipped_downstream.unique_id]
    assert downstream.status is NodeStatus.SKIPPED
    assert not downstream.is_failure


def check_warn_test_is_a_warning(case: ContractCase) -> None:
    if case.warn_test is None:
        return
    result = _run(case, Command.TEST, case.warn_test)
    node = result.results[case.warn_test.unique_id]
    assert node.status is NodeStatus.WARN
    assert not node.is_failure
    assert result.success


def check_results_pickle(case: ContractCase) -> None:
    result = _run(case, Command.for_node(case.passing), case.passing)
    again = pickle.loads(pickle.dumps(result))
    assert again.results[case.passing.unique_id].status is NodeStatus.SUCCESS
    assert again.results == result.results


def check_executor_pickles(case: ContractCase) -> None:
    clone = pickle.loads(pickle.dumps(case.executor))
    assert isinstance(clone, Executor)
    clone.close()


def check_concurrent_calls_each_get_their_own_results(case: ContractCase) -> None:
    requests = [case.passing, case.failing, case.passing, case.failing]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda n: _run(case, Command.for_node(n), n), requests))
    for node, result in zip(requests, results, strict=True):
        assert list(result.results) == [node.unique_id]
        expected = NodeStatus.SUCCESS if node is case.passing else NodeStatus.ERROR
        assert result.results[node.unique_id].status is expected


def check_source_freshness(case: ContractCase) -> None:
    if not case.source_ids:
        return
    report = case.executor.source_freshness(list(case.source_ids))
    assert set(report) == set(case.source_ids)
    for uid, freshness in report.items():
        assert freshness.unique_id == uid


def check_close_is_idempotent_and_executor_reusable(case: ContractCase) -> None:
    case.executor.close()
    case.executor.close()
    result = _run(case, Command.for_node(case.passing), case.passing)
    assert result.results[case.passing.unique_id].status is NodeStatus.SUCCESS


CHECKS: tuple[Callable[[ContractCase], None], ...] = (
    check_is_an_executor,
    check_resolves_a_manifest_with_the_nodes,
    check_prepares,
    check_passing_node_succeeds_with_timing,
    check_failing_node_is_data_not_an_exception,
    check_build_reports_every_requested_node_and_no_other,
    check_downstream_of_a_failure_is_skipped_not_error,
    check_warn_test_is_a_warning,
    check_results_pickle,
    check_executor_pickles,
    check_concurrent_calls_each_get_their_own_results,
    check_source_freshness,
    check_close_is_idempotent_and_executor_reusable,
)


def check_executor_contract(case: ContractCase) -> None:
    """Run every check, in order, against ``case``."""
    for check in (*CHECKS, *case.extra_checks):
        check(case)
