"""PER_NODE scheduling: which nodes to start, as others finish.

:class:`Scheduler` knows nothing of Prefect. It is told when a node finishes and answers by
calling ``submit`` for the nodes that may start. It keeps the ready queue (nodes whose parents
have all finished, waiting for a free slot or for room in their concurrency keys), the in-flight
set and the outcomes, phase by phase. The queue is :class:`dbt_graph.ReadyQueue`, the one
:func:`dbt_graph.estimate_wall_time` simulates, so ``plan()``'s estimate follows this order.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dbt_graph import ConcurrencyKey, ExecutionPlan, ReadyQueue

from prefect_dbt_orchestrator._outcomes import NodeOutcome, root_failures, skipped_upstream

#: A sort key for ready nodes: the smallest is submitted first.
Priority = Callable[[str], Any]


class Scheduler:
    """Eager scheduling of an :class:`~dbt_graph.ExecutionPlan`, one phase after the other.

    A node is ready when every node it depends on in its phase has finished. A ready node
    downstream of a failure is skipped at once (its outcome names the failed nodes, not the
    skipped ones between); any other ready node joins the ready queue, from which nodes are
    submitted in ``priority`` order while fewer than ``max_in_flight`` run. A node whose
    concurrency key is full (as many of the key's nodes in flight as its limit) is passed over
    until one of them is done.

    Args:
        plan: The plan to run.
        submit: Starts a node; the caller reports its end with :meth:`node_done`.
        priority: The order in which ready nodes are submitted (default: plan order).
        max_in_flight: At most this many nodes submitted and not yet done (default: no limit).
        keys: The concurrency keys each node holds while in flight
            (:func:`dbt_graph.keys_by_node`).

    Example:
        >>> from dbt_graph import build_plan
        >>> from dbt_graph.testing import ManifestBuilder
        >>> from prefect_dbt_orchestrator._outcomes import NodeOutcome, OutcomeStatus
        >>> plan = build_plan(ManifestBuilder().model("a").model("b", depends_on=["a"]).build())
        >>> started = []
        >>> scheduler = Scheduler(plan, submit=started.append)
        >>> scheduler.start()
        >>> started
        ['model.p.a']
        >>> scheduler.node_done("model.p.a", NodeOutcome(status=OutcomeStatus.SUCCESS))
        >>> started
        ['model.p.a', 'model.p.b']
    """

    def __init__(
        self,
        plan: ExecutionPlan,
        *,
        submit: Callable[[str], None],
        priority: Priority | None = None,
        max_in_flight: int | None = None,
        keys: Mapping[str, Sequence[ConcurrencyKey]] | None = None,
    ) -> None:
        self.plan = plan
        self.outcomes: dict[str, NodeOutcome] = {}
        self.in_flight: set[str] = set()
        self._submit = submit
        self._position = {uid: i for i, uid in enumerate(plan.nodes)}
        priority = priority or self._position.__getitem__
        self._max_in_flight = max_in_flight
        self._ready = ReadyQueue(lambda uid: (priority(uid), self._position[uid]), keys)
        self._roots: dict[str, frozenset[str]] = {}
        self._waiting: dict[str, int] = {}
        self._dependents: dict[str, list[str]] = {}
        self._phases = list(reversed(plan.phases))
        self._unfinished = 0

    def start(self) -> None:
        """Start the first phase (and the next ones, while a phase has nothing to run)."""
        self._advance()

    def node_done(self, uid: str, outcome: NodeOutcome) -> None:
        """A submitted node finished: record it, release its dependents, fill free slots."""
        self.in_flight.discard(uid)
        self._ready.release(uid)
        self._settle([(uid, outcome)])
        self._advance()

    def _advance(self) -> None:
        self._fill()
        while not self.in_flight and not self._ready and self._unfinished == 0 and self._phases:
            self._begin(self._phases.pop())
            self._fill()
        if not self.in_flight and not self._ready and self._unfinished:
            stuck = [uid for uid in self._waiting if uid not in self.outcomes]
            raise RuntimeError(
                f"The scheduler could not place {len(stuck)} node(s): {stuck[:5]}. This is a "
                "bug in prefect-dbt-orchestrator; please report it with your manifest."
            )

    def _begin(self, phase: tuple[str, ...]) -> None:
        members = set(phase)
        deps = self.plan.dependencies
        self._waiting = {uid: sum(1 for d in deps[uid] if d in members) for uid in phase}
        self._dependents = {uid: [] for uid in phase}
        for uid in phase:
            for parent in deps[uid]:
                if parent in members:
                    self._dependents[parent].append(uid)
        self._unfinished = len(phase)
        skipped = []
        for uid in phase:
            if self._waiting[uid] == 0:
                skip = self._node_ready(uid)
                if skip is not None:
                    skipped.append((uid, skip))
        self._settle(skipped)

    def _node_ready(self, uid: str) -> NodeOutcome | None:
        """All of ``uid``'s parents finished: queue it, or return its skip below a failure."""
        upstream = root_failures(uid, self.plan.dependencies, self.outcomes, self._roots)
        if upstream:
            self._roots[uid] = upstream
            return skipped_upstream(upstream)
        self._ready.push(uid)
        return None

    def _settle(self, finished: list[tuple[str, NodeOutcome]]) -> None:
        """Record outcomes and release dependents (a worklist: skips cascade without recursion)."""
        while finished:
            uid, outcome = finished.pop()
            self.outcomes[uid] = outcome
            self._unfinished -= 1
            for child in self._dependents.get(uid, ()):
                self._waiting[child] -= 1
                if self._waiting[child] == 0:
                    skip = self._node_ready(child)
                    if skip is not None:
                        finished.append((child, skip))

    def _fill(self) -> None:
        """Submit ready nodes, best first, while slots are free (and their keys have room)."""
        limit = self._max_in_flight
        while limit is None or len(self.in_flight) < limit:
            uid = self._ready.pop()
            if uid is None:
                return
            self.in_flight.add(uid)
            self._submit(uid)
