"""The critical path of a plan, and the critical-path-first submission order.

A node's *remaining path* is its own expected duration plus the heaviest chain of planned nodes
that wait for it (tests included, as the plan places them) and, behind a phase barrier, the
critical path of every later phase. Among ready nodes, starting the one with the longest
remaining path first is the classic list-scheduling rule for a DAG (highest level first): the
long chain starts as early as possible instead of waiting behind short branches, which is what
decides a build's wall time once it has more ready nodes than threads.

Everything here is iterative (a 10,000-node chain needs no recursion) and deterministic: equal
inputs give equal orders, ties going to plan order.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from dbt_graph._errors import CycleError, ScheduleError
from dbt_graph._graph import ExecutionPlan


@dataclass(frozen=True, kw_only=True)
class PathStep:
    """One node on a critical path.

    Attributes:
        unique_id: The node.
        seconds: Its expected duration.
    """

    unique_id: str
    seconds: float


@dataclass(frozen=True, kw_only=True, eq=False)
class CriticalPath:
    """A plan's critical path and its critical-path-first order.

    Attributes:
        steps: The heaviest chain through the plan, first node first; across a phase barrier
            the chain continues with the next phase's heaviest chain.
        remaining: For every planned node, its own seconds plus the heaviest chain that waits
            for it (later phases included).
        order: Every planned node, most urgent first: longest remaining path, then plan order.
    """

    steps: tuple[PathStep, ...]
    remaining: Mapping[str, float] = field(repr=False)
    order: tuple[str, ...] = field(repr=False)

    @property
    def seconds(self) -> float:
        """The critical path's length: no schedule can finish sooner (0.0 for an empty plan)."""
        return self.remaining[self.steps[0].unique_id] if self.steps else 0.0

    @cached_property
    def rank(self) -> Mapping[str, int]:
        """Each node's position in :attr:`order` (0 = submit first among ready nodes)."""
        return {uid: i for i, uid in enumerate(self.order)}


def critical_path(plan: ExecutionPlan, durations: Mapping[str, float]) -> CriticalPath:
    """Compute every node's remaining path, the critical path and the submission order.

    Args:
        plan: The plan (:func:`dbt_graph.build_plan`).
        durations: Expected seconds for every planned node
            (:meth:`dbt_graph.Durations.for_plan`).

    Returns:
        The critical path; its :attr:`~CriticalPath.rank` orders a ready queue.

    Raises:
        ScheduleError: A planned node has no duration, or a negative or non-finite one.
        CycleError: The plan's dependencies have a cycle.

    Example:
        >>> from dbt_graph import build_plan
        >>> from dbt_graph.testing import ManifestBuilder
        >>> m = (ManifestBuilder().model("a").model("b", depends_on=["a"])
        ...      .model("c").model("d", depends_on=["c"]).build())
        >>> cp = critical_path(build_plan(m), {"model.p.a": 1, "model.p.b": 1,
        ...                                    "model.p.c": 1, "model.p.d": 5})
        >>> [(s.unique_id, s.seconds) for s in cp.steps], cp.seconds
        ([('model.p.c', 1.0), ('model.p.d', 5.0)], 6.0)
        >>> cp.order
        ('model.p.c', 'model.p.d', 'model.p.a', 'model.p.b')
    """
    seconds = checked_durations(plan, durations)
    index = {uid: i for i, uid in enumerate(plan.nodes)}
    remaining: dict[str, float] = {}
    successor: dict[str, str | None] = {}
    tail, tail_head = 0.0, None
    for phase in reversed(plan.phases):
        if not phase:
            continue
        members = set(phase)
        for uid in reversed(topological_order(phase, plan.dependencies)):
            best = None
            for child in plan.dependents.get(uid, ()):
                if child in members and (
                    best is None
                    or _urgency(child, remaining, index) < _urgency(best, remaining, index)
                ):
                    best = child
            remaining[uid] = seconds[uid] + (remaining[best] if best is not None else tail)
            successor[uid] = best if best is not None else tail_head
        tail_head = min(phase, key=lambda u: _urgency(u, remaining, index))
        tail = remaining[tail_head]
    steps: list[PathStep] = []
    step = tail_head
    while step is not None:
        steps.append(PathStep(unique_id=step, seconds=seconds[step]))
        step = successor[step]
    order = tuple(sorted(plan.nodes, key=lambda u: _urgency(u, remaining, index)))
    return CriticalPath(steps=tuple(steps), remaining=remaining, order=order)


def checked_durations(plan: ExecutionPlan, durations: Mapping[str, float]) -> dict[str, float]:
    """``durations`` for the planned nodes, as floats, after checking each one."""
    out: dict[str, float] = {}
    missing = [uid for uid in plan.nodes if uid not in durations]
    if missing:
        raise ScheduleError(
            f"No duration for {len(missing)} planned node(s), e.g. {missing[0]}. Pass one for "
            "every node, e.g. Durations.for_plan(plan)."
        )
    for uid in plan.nodes:
        value = durations[uid]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ScheduleError(f"The duration of {uid} is {value!r}; pass seconds as a number.")
        if not math.isfinite(value) or value < 0:
            raise ScheduleError(
                f"The duration of {uid} is {value!r}; durations are finite, non-negative seconds."
            )
        out[uid] = float(value)
    return out


def topological_order(group: Sequence[str], dependencies: Mapping[str, Iterable[str]]) -> list[str]:
    """``group`` in an order where every node follows its dependencies inside the group.

    Kahn's algorithm, starting from and breaking ties by the group's own order, so the result is
    deterministic; dependencies outside the group are ignored (a barrier orders them).

    Raises:
        CycleError: The dependencies inside the group have a cycle.
    """
    members = set(group)
    waiting = {uid: 0 for uid in group}
    children: dict[str, list[str]] = {uid: [] for uid in group}
    for uid in group:
        for dep in dict.fromkeys(dependencies.get(uid, ())):
            if dep in members:
                waiting[uid] += 1
                children[dep].append(uid)
    ready = [uid for uid in reversed(group) if waiting[uid] == 0]
    out: list[str] = []
    while ready:
        uid = ready.pop()
        out.append(uid)
        for child in reversed(children[uid]):
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.append(child)
    if len(out) < len(group):
        raise CycleError(_find_cycle({u for u in group if waiting[u] > 0}, dependencies))
    return out


def _urgency(uid: str, remaining: Mapping[str, float], index: Mapping[str, int]) -> tuple:
    # Smaller is more urgent: the longest remaining path, then plan order.
    return (-remaining[uid], index[uid])


def _find_cycle(stuck: set[str], dependencies: Mapping[str, Iterable[str]]) -> list[str]:
    """A cycle among ``stuck`` nodes (each waits for another stuck node), walked backwards."""
    uid = min(stuck)
    seen: dict[str, int] = {}
    trail: list[str] = []
    while uid not in seen:
        seen[uid] = len(trail)
        trail.append(uid)
        uid = next(d for d in dependencies.get(uid, ()) if d in stuck)
    return list(reversed(trail[seen[uid] :]))
