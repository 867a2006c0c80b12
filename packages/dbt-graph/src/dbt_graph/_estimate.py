"""Expected wall time of a plan: list scheduling simulated with expected durations.

The simulation does what a scheduler with ``concurrency`` slots does: whenever a slot is free,
it starts the most urgent ready node whose concurrency keys all have room, and a node is ready
once everything it waits for has finished (phases, or waves for PER_WAVE, are barriers). With
exact durations the simulated wall time is what such a scheduler achieves, before per-node
overhead. It is deterministic and runs in O(n log n + edges) time.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dbt_graph._concurrency_keys import ConcurrencyKey
from dbt_graph._critical_path import (
    PathStep,
    checked_durations,
    critical_path,
    topological_order,
)
from dbt_graph._errors import ScheduleError
from dbt_graph._graph import ExecutionPlan
from dbt_graph._ready_queue import ReadyQueue


@dataclass(frozen=True, kw_only=True, eq=False)
class Estimate:
    """The expected wall time of a plan at some concurrency.

    Attributes:
        wall_seconds: The simulated wall time.
        lower_bound_seconds: No schedule can be faster: per phase (or wave), the longest of its
            critical path, its total work divided by the concurrency and, for each concurrency
            key, the work of its nodes divided by its limit; summed over the phases.
        concurrency: The number of slots simulated.
        total_seconds: The sum of all expected durations (the work).
        critical_path: The plan's critical path (:func:`dbt_graph.critical_path`).
        starts: The simulated start of every node in seconds from the beginning, in start order.
    """

    wall_seconds: float
    lower_bound_seconds: float
    concurrency: int
    total_seconds: float
    critical_path: tuple[PathStep, ...]
    starts: Mapping[str, float] = field(repr=False)

    @property
    def critical_path_seconds(self) -> float:
        """The length of :attr:`critical_path`."""
        return sum(step.seconds for step in self.critical_path)

    def __str__(self) -> str:
        lines = [
            f"Expected wall time {_clock(self.wall_seconds)} at concurrency {self.concurrency} "
            f"(lower bound {_clock(self.lower_bound_seconds)}; total work "
            f"{_clock(self.total_seconds)})",
            f"Critical path: {len(self.critical_path)} node(s), "
            f"{_clock(self.critical_path_seconds)}",
        ]
        lines += [f"  - {s.unique_id} ({_clock(s.seconds)})" for s in self.critical_path]
        return "\n".join(lines)


def estimate_wall_time(
    plan: ExecutionPlan,
    durations: Mapping[str, float],
    *,
    concurrency: int,
    order: Sequence[str] | None = None,
    keys: Mapping[str, Sequence[ConcurrencyKey]] | None = None,
    wave_barriers: bool = False,
) -> Estimate:
    """Simulate running ``plan`` with ``concurrency`` slots and expected ``durations``.

    Args:
        plan: The plan (:func:`dbt_graph.build_plan`).
        durations: Expected seconds for every planned node
            (:meth:`dbt_graph.Durations.for_plan`).
        concurrency: How many nodes run at once (at least 1).
        order: Every planned node, most urgent first: the order the scheduler takes ready
            nodes in. ``None`` is critical-path-first (:attr:`dbt_graph.CriticalPath.order`).
        keys: The concurrency keys each node holds while it runs
            (:func:`dbt_graph.keys_by_node`); a ready node whose key is full waits and the next
            ready node is started instead.
        wave_barriers: Run wave after wave, as PER_WAVE does (each wave waits for the previous
            one to finish); otherwise only phases are barriers, as in PER_NODE.

    Returns:
        The estimate.

    Raises:
        ScheduleError: ``concurrency`` is not a positive int, ``order`` does not list every
            planned node exactly once, or a duration is missing or invalid.
        CycleError: The plan's dependencies have a cycle.

    Example:
        >>> from dbt_graph import build_plan
        >>> from dbt_graph.testing import ManifestBuilder
        >>> m = (ManifestBuilder().model("a").model("b", depends_on=["a"])
        ...      .model("c").model("d").build())
        >>> seconds = {"model.p.a": 1, "model.p.b": 3, "model.p.c": 2, "model.p.d": 2}
        >>> plan = build_plan(m)
        >>> estimate_wall_time(plan, seconds, concurrency=2).wall_seconds
        4.0
        >>> estimate_wall_time(plan, seconds, concurrency=2, order=list(plan.nodes)).wall_seconds
        5.0
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ScheduleError(
            f"concurrency must be a positive int, got {concurrency!r}: the number of nodes that "
            "run at once."
        )
    seconds = checked_durations(plan, durations)
    path = critical_path(plan, seconds)
    rank = path.rank if order is None else _rank_of(order, plan)
    held = {uid: tuple(ks) for uid, ks in (keys or {}).items() if uid in plan.nodes and ks}
    groups = [w.node_ids for w in plan.waves] if wave_barriers else list(plan.phases)
    clock, bound = 0.0, 0.0
    starts: dict[str, float] = {}
    for group in groups:
        if not group:
            continue
        clock = _simulate(group, plan, seconds, rank, concurrency, held, clock, starts)
        bound += _lower_bound(group, plan, seconds, concurrency, held)
    return Estimate(
        wall_seconds=clock,
        lower_bound_seconds=bound,
        concurrency=concurrency,
        total_seconds=sum(seconds.values()),
        critical_path=path.steps,
        starts=dict(sorted(starts.items(), key=lambda item: (item[1], rank[item[0]]))),
    )


def _rank_of(order: Sequence[str], plan: ExecutionPlan) -> dict[str, int]:
    rank = {uid: i for i, uid in enumerate(order)}
    if len(rank) != len(order) or rank.keys() != plan.nodes.keys():
        missing = [u for u in plan.nodes if u not in rank]
        extra = [u for u in rank if u not in plan.nodes]
        detail = (
            f"missing {missing[0]}"
            if missing
            else f"{extra[0]} is not planned"
            if extra
            else "a node is listed twice"
        )
        raise ScheduleError(
            f"order must list every planned node exactly once ({detail}); pass e.g. "
            "critical_path(plan, durations).order or list(plan.nodes)."
        )
    return rank


def _simulate(
    group: Sequence[str],
    plan: ExecutionPlan,
    seconds: Mapping[str, float],
    rank: Mapping[str, int],
    concurrency: int,
    held: Mapping[str, tuple[ConcurrencyKey, ...]],
    clock: float,
    starts: dict[str, float],
) -> float:
    """List-schedule one barrier-free group from ``clock``; return when its last node ends."""
    members = set(group)
    waiting = dict.fromkeys(group, 0)
    children: dict[str, list[str]] = {u: [] for u in group}
    for uid in group:
        for dep in set(plan.dependencies.get(uid, ())) & members:
            waiting[uid] += 1
            children[dep].append(uid)
    queue = ReadyQueue(rank.__getitem__, held)
    for uid in group:
        if waiting[uid] == 0:
            queue.push(uid)
    running: list[tuple[float, int, str]] = []
    now, end = clock, clock
    while True:
        while len(running) < concurrency:
            uid = queue.pop()
            if uid is None:
                break
            starts[uid] = now
            heapq.heappush(running, (now + seconds[uid], rank[uid], uid))
        if not running:
            break
        now = running[0][0]
        while running and running[0][0] <= now:
            _, _, uid = heapq.heappop(running)
            end = max(end, now)
            queue.release(uid)
            for child in children[uid]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    queue.push(child)
    if any(uid not in starts for uid in group):
        topological_order(group, plan.dependencies)  # raises CycleError for a cycle
        raise ScheduleError("The simulation could not start every node; please report this.")
    return end


def _lower_bound(
    group: Sequence[str],
    plan: ExecutionPlan,
    seconds: Mapping[str, float],
    concurrency: int,
    held: Mapping[str, tuple[ConcurrencyKey, ...]],
) -> float:
    """max(longest chain, work / concurrency, work of each key / its limit) within the group."""
    finish: dict[str, float] = {}
    members = set(group)
    for uid in topological_order(group, plan.dependencies):
        before = (finish[d] for d in plan.dependencies.get(uid, ()) if d in members)
        finish[uid] = seconds[uid] + max(before, default=0.0)
    bounds = [max(finish.values()), sum(seconds[u] for u in group) / concurrency]
    per_key: dict[str, float] = {}
    limits: dict[str, int] = {}
    for uid in group:
        for key in held.get(uid, ()):
            per_key[key.name] = per_key.get(key.name, 0.0) + seconds[uid]
            limits[key.name] = key.limit
    bounds += [work / limits[name] for name, work in per_key.items()]
    return max(bounds)


def _clock(seconds: float) -> str:
    """``12.3s``, ``2m05s``, ``1h02m03s``."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{secs:02d}s" if hours else f"{minutes}m{secs:02d}s"
