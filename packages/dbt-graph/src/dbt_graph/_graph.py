"""The executable DAG, test placement and execution waves.

Only models, seeds and snapshots execute (ephemeral models are inlined into their children, so
the graph looks through them); sources, exposures and the like never execute. Data tests and unit
tests are placed as dbt build places them, or deferred, or skipped (:class:`TestStrategy`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

from dbt_graph._manifest import Manifest
from dbt_graph._nodes import Node, ResourceType
from dbt_graph._walks import nearest_ancestors, topological_generations, topological_order


class TestStrategy(StrEnum):
    """When tests run relative to the nodes they test."""

    __test__ = False  # not a pytest test class

    #: As ``dbt build``: a test runs after its parents and before their children; a unit test
    #: runs before the model it tests.
    IMMEDIATE = "immediate"
    #: Every model, seed and snapshot first; then every test in one final phase.
    DEFERRED = "deferred"
    #: No tests at all.
    SKIP = "skip"


@dataclass(frozen=True, kw_only=True)
class Wave:
    """A set of nodes that can run at once: all their dependencies are in earlier waves.

    Attributes:
        number: 0 for the first wave.
        nodes: The wave's nodes, in manifest order.
    """

    number: int
    nodes: tuple[Node, ...]

    @property
    def node_ids(self) -> tuple[str, ...]:
        """The unique_ids of :attr:`nodes`."""
        return tuple(n.unique_id for n in self.nodes)


@dataclass(frozen=True, kw_only=True, eq=False)
class ExecutionPlan:
    """What to run, in which order.

    Attributes:
        nodes: Every node to execute (executables and tests) by unique_id, in wave order.
        dependencies: For each planned node, the planned nodes it must wait for (test placement
            included; out-of-plan nodes are looked through, so order is kept across them).
        phases: The node ids of each phase, run one after the other (DEFERRED has two: nodes,
            then tests, whose ``dependencies`` are empty because the phase barrier orders them;
            the others have one).
        waves: The waves, numbered across phases.
        test_strategy: The strategy the plan was built with.
    """

    nodes: Mapping[str, Node]
    dependencies: Mapping[str, tuple[str, ...]]
    phases: tuple[tuple[str, ...], ...]
    waves: tuple[Wave, ...]
    test_strategy: TestStrategy

    @cached_property
    def dependents(self) -> Mapping[str, tuple[str, ...]]:
        """For each planned node, the planned nodes that wait for it."""
        out: dict[str, list[str]] = {uid: [] for uid in self.nodes}
        for uid, deps in self.dependencies.items():
            for dep in deps:
                out[dep].append(uid)
        return {uid: tuple(v) for uid, v in out.items()}

    @property
    def node_count(self) -> int:
        """How many nodes the plan executes."""
        return len(self.nodes)

    @property
    def estimated_parallelism(self) -> int:
        """The width of the widest wave (0 for an empty plan)."""
        return max((len(w.nodes) for w in self.waves), default=0)


def executable_parents(manifest: Manifest) -> Mapping[str, tuple[str, ...]]:
    """For every node, the nearest executable nodes it depends on, looking through ephemerals.

    Sources, exposures and other non-executable parents are dropped; an ephemeral parent is
    replaced by its own executable parents, recursively.

    >>> from dbt_graph.testing import ManifestBuilder
    >>> m = (ManifestBuilder().model("a").model("e", materialized="ephemeral", depends_on=["a"])
    ...      .model("b", depends_on=["e"]).build())
    >>> executable_parents(m)["model.p.b"]
    ('model.p.a',)
    """
    nodes = manifest.nodes
    return nearest_ancestors(
        manifest.parent_map,
        nodes,
        keep=lambda uid: nodes[uid].is_executable,
        through=lambda uid: nodes[uid].is_ephemeral,
    )


def build_plan(
    manifest: Manifest,
    selected: Iterable[str] | None = None,
    *,
    test_strategy: TestStrategy | str = TestStrategy.IMMEDIATE,
) -> ExecutionPlan:
    """Plan the execution of the selected nodes.

    Args:
        manifest: The parsed manifest.
        selected: unique_ids chosen by :func:`dbt_graph.select` (other resource types in it are
            ignored); ``None`` plans every executable node and every test.
        test_strategy: Where tests go (:class:`TestStrategy` or its value).

    Returns:
        The plan: nodes, dependencies, phases and waves, deterministic for a given manifest.

    Raises:
        CycleError: The graph has a cycle; the error lists it.

    Example:
        >>> from dbt_graph.testing import ManifestBuilder
        >>> m = (ManifestBuilder().seed("raw").model("stg", depends_on=["raw"])
        ...      .test("not_null_stg", depends_on=["stg"]).model("mart", depends_on=["stg"])
        ...      .build())
        >>> [w.node_ids for w in build_plan(m).waves]  # doctest: +NORMALIZE_WHITESPACE
        [('seed.p.raw',), ('model.p.stg',), ('test.p.not_null_stg',), ('model.p.mart',)]
    """
    strategy = TestStrategy(test_strategy)
    nodes = manifest.nodes
    wanted = set(nodes) if selected is None else {uid for uid in selected if uid in nodes}
    order = {uid: i for i, uid in enumerate(nodes)}
    parents = executable_parents(manifest)

    executables = [uid for uid, n in nodes.items() if n.is_executable]
    tests = (
        [uid for uid, n in nodes.items() if n.is_test] if strategy is not TestStrategy.SKIP else []
    )
    in_plan = {uid for uid in executables if uid in wanted}
    planned_tests = {uid for uid in tests if uid in wanted}

    # The scheduling graph: each node with the nodes it waits for (test placement included).
    graph: dict[str, dict[str, None]] = {uid: dict.fromkeys(parents[uid]) for uid in executables}
    if strategy is TestStrategy.IMMEDIATE:
        _add_immediate_tests(graph, manifest, parents, tests)
    topological_generations(graph)  # raises CycleError, naming a cycle

    if strategy is TestStrategy.DEFERRED:
        model_deps = _plan_dependencies(graph, in_plan)
        test_deps = {uid: () for uid in planned_tests}
        phase_deps = [model_deps, test_deps]
    else:
        phase_deps = [_plan_dependencies(graph, in_plan | planned_tests)]

    dependencies: dict[str, tuple[str, ...]] = {}
    waves: list[Wave] = []
    phases: list[tuple[str, ...]] = []
    for deps in phase_deps:
        phase_waves = topological_generations(deps, key=order.__getitem__)
        for ids in phase_waves:
            waves.append(Wave(number=len(waves), nodes=tuple(nodes[u] for u in ids)))
        phases.append(tuple(u for ids in phase_waves for u in ids))
        dependencies.update(deps)
    ordered = {u: nodes[u] for w in waves for u in w.node_ids}
    return ExecutionPlan(
        nodes=ordered,
        dependencies={u: dependencies[u] for u in ordered},
        phases=tuple(p for p in phases if p),
        waves=tuple(waves),
        test_strategy=strategy,
    )


def _add_immediate_tests(
    graph: dict[str, dict[str, None]],
    manifest: Manifest,
    parents: Mapping[str, tuple[str, ...]],
    tests: list[str],
) -> None:
    """Insert tests as dbt build does, never creating a cycle.

    A data test T runs after its parents P(T); a non-test node D waits for T when every node of
    P(T) is an ancestor of D (so the edge adds no new ancestor but T itself, and cannot close a
    cycle). Only the first such descendants get the edge; later ones wait transitively.
    A unit test runs after the tested model's parents and before the model.
    """
    nodes = manifest.nodes
    below = _Descent(parents, list(graph))
    children: dict[str, list[str]] = {}
    for uid in graph:
        for p in parents[uid]:
            children.setdefault(p, []).append(uid)

    for test in tests:
        node = nodes[test]
        graph.setdefault(test, {})
        if node.resource_type is ResourceType.UNIT_TEST:
            tested = [p for p in node.depends_on if p in parents and nodes[p].is_executable]
            for model in tested:
                graph[test].update(dict.fromkeys(parents[model]))
                graph[model][test] = None
            continue
        test_parents = frozenset(parents[test])
        graph[test].update(dict.fromkeys(parents[test]))
        if not test_parents:
            continue
        # Walk descendants; stop below the first nodes that satisfy the rule.
        frontier = [c for p in test_parents for c in children.get(p, ())]
        seen: set[str] = set()
        while frontier:
            uid = frontier.pop()
            if uid in seen:
                continue
            seen.add(uid)
            if uid not in test_parents and below(uid, test_parents):
                graph[uid][test] = None
            else:
                frontier.extend(children.get(uid, ()))


class _Descent:
    """Whether a node descends from every node of a set, in the executable graph.

    Each node's ancestors are kept as the bits of one int, folded parents first, and built on
    the first question: linear in memory even for a long chain, where sets of ids would be
    quadratic, and one ``&`` per question.
    """

    def __init__(self, parents: Mapping[str, tuple[str, ...]], executables: list[str]) -> None:
        self._parents = {uid: parents[uid] for uid in executables}
        self._bit: dict[str, int] = {}
        self._ancestors: dict[str, int] = {}

    def __call__(self, uid: str, upstream: frozenset[str]) -> bool:
        # Every node on the caller's walk descends from a node of ``upstream``: with one, it holds.
        if len(upstream) == 1:
            return True
        if not self._ancestors:
            self._fold()
        mask = 0
        for p in upstream:
            mask |= self._bit[p]
        return self._ancestors[uid] & mask == mask

    def _fold(self) -> None:
        for i, uid in enumerate(topological_order(self._parents)):
            self._bit[uid] = 1 << i
            bits = 0
            for p in self._parents[uid]:
                bits |= self._ancestors[p] | self._bit[p]
            self._ancestors[uid] = bits


def _plan_dependencies(
    graph: Mapping[str, Mapping[str, None]], planned: set[str]
) -> dict[str, tuple[str, ...]]:
    """Dependencies among planned nodes, looking through unplanned ones (as dbt's subgraphs do)."""
    nearest = nearest_ancestors(
        graph, planned, keep=planned.__contains__, through=lambda uid: uid not in planned
    )
    return {uid: tuple(sorted(deps)) for uid, deps in nearest.items()}
