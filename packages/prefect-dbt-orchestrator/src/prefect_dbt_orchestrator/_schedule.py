"""The order a call starts its nodes in, the limits they hold, and how long they should take.

PER_NODE starts, among the ready nodes, the one with the longest expected remaining path to
the end of the build first (``scheduling="critical_path"``, the default), or the first in plan
order (``"plan_order"``). Expected durations come from the duration history (``_history``);
nodes without one get their resource type's default, so with no history at all the order is
"longest chain of nodes first". ``plan()`` simulates the same scheduler
(:func:`dbt_graph.estimate_wall_time`) for its wall-time estimate.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from dbt_graph import (
    ConcurrencyKey,
    DurationHistory,
    Estimate,
    critical_path,
    estimate_wall_time,
    keys_by_node,
)

from prefect_dbt_orchestrator._config import ExecutionMode, Scheduling
from prefect_dbt_orchestrator._context import RunContext
from prefect_dbt_orchestrator._history import HistoryStore
from prefect_dbt_orchestrator._task_runner import runner_width


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """How one call orders its nodes and what it expects of them.

    Attributes:
        seconds: Expected seconds per planned node.
        known: How many planned nodes have a history (the others have defaults).
        order: Every planned node, most urgent first: the order in which ready nodes start.
        held: The concurrency keys of each node that holds any.
        history: The duration history the expectations come from.
        store: Where that history lives.
    """

    seconds: Mapping[str, float] = field(repr=False)
    known: int
    order: tuple[str, ...] = field(repr=False)
    held: Mapping[str, tuple[ConcurrencyKey, ...]] = field(repr=False)
    history: DurationHistory = field(repr=False)
    store: HistoryStore

    @property
    def priority(self) -> Callable[[str], int]:
        """The scheduler's sort key: a node's position in :attr:`order`."""
        return {uid: i for i, uid in enumerate(self.order)}.__getitem__

    def limit_names(self, uid: str) -> tuple[str, ...]:
        """The Prefect global concurrency limits of ``uid``'s concurrency keys."""
        return tuple(key.name for key in self.held.get(uid, ()))

    def estimate(
        self, ctx: RunContext, *, concurrency: int, free: Collection[str] = ()
    ) -> Estimate:
        """The expected wall time of ``ctx``'s plan with ``concurrency`` slots.

        Args:
            ctx: The call.
            concurrency: How many nodes run at once.
            free: Nodes expected to cost nothing (predicted cache hits run no dbt).
        """
        seconds = {uid: 0.0 if uid in free else s for uid, s in self.seconds.items()}
        per_wave = ctx.options.execution_mode is ExecutionMode.PER_WAVE
        return estimate_wall_time(
            ctx.plan,
            seconds,
            concurrency=concurrency,
            order=self.order,
            keys=self.held,
            wave_barriers=per_wave,
        )


def schedule_for(ctx: RunContext) -> Schedule:
    """Read the history and work out the order and keys of ``ctx``'s plan.

    Raises:
        dbt_graph.ConcurrencyKeyError: Two concurrency keys share a name or selector, or a
            selector's value is invalid for dbt.
    """
    store = HistoryStore.for_run(ctx)
    history = store.load()
    durations = history.durations()
    plan = ctx.plan
    seconds = durations.for_plan(plan)
    per_wave = ctx.options.execution_mode is ExecutionMode.PER_WAVE
    if per_wave or ctx.options.scheduling is Scheduling.PLAN_ORDER:
        order = tuple(plan.nodes)  # a wave is one `dbt build`: its order is dbt's
    else:
        order = critical_path(plan, seconds).order
    keys = ctx.options.concurrency_keys
    return Schedule(
        seconds=seconds,
        known=sum(1 for uid in plan.nodes if uid in durations.known),
        order=order,
        held=keys_by_node(ctx.manifest, keys, plan.nodes) if keys else {},
        history=history,
        store=store,
    )


def expected_concurrency(ctx: RunContext) -> int:
    """How many nodes the call runs at once, as far as it is known without running it.

    PER_NODE: an int ``concurrency``, else the task runner's width (for a named limit, whose
    value lives on the Prefect server, at most that). PER_WAVE: ``threads`` when given, else the
    widest wave (dbt's threads come from the profile, which the executor reads).
    """
    options = ctx.options
    widest = max(1, ctx.plan.estimated_parallelism)
    if options.execution_mode is ExecutionMode.PER_WAVE:
        return options.threads or widest
    return runner_width(options, widest)
