"""``BuildPlan``: what ``run_build()`` would do, without doing it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_graph import Estimate, PathStep, Wave

from prefect_dbt_orchestrator._context import RunContext
from prefect_dbt_orchestrator._schedule import expected_concurrency, schedule_for


@dataclass(frozen=True)
class BuildPlan:
    """The result of ``PrefectDbtOrchestrator.plan()``.

    Attributes:
        waves: Execution waves in topological order; each holds nodes that can run in parallel.
        node_count: Total nodes across all waves.
        cache_predictions: ``"hit"``/``"miss"``/``"excluded"`` per node, or ``None`` without a
            cache.
        skipped_nodes: Nodes dropped by source-freshness checks: ``{id: {"status", "reason"}}``.
            Nodes outside ``select``/``exclude`` are pruned, not listed.
        estimated_parallelism: Width of the largest wave.
        cache_reasons: For each predicted miss, why (``"SQL changed"``, ``"never ran"``,
            ``"source `raw.orders` has new data since ..."``...); for a hit that a model's
            ``freshness.build_after`` defers despite new data (data-aware caching), the new
            data and, last, why it waits.
        estimate: The expected wall time at the configured concurrency, its lower bound and
            the critical path (:class:`dbt_graph.Estimate`), from the durations of earlier
            builds (per-resource-type defaults for nodes without any); ``None`` when not
            computed.
        known_durations: How many nodes' expected durations come from earlier builds.
    """

    waves: tuple[Wave, ...]
    node_count: int
    cache_predictions: Mapping[str, str] | None = None
    skipped_nodes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    estimated_parallelism: int = 0
    cache_reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    estimate: Estimate | None = None
    known_durations: int = 0

    @property
    def expected_wall_seconds(self) -> float | None:
        """The expected wall time in seconds (``estimate.wall_seconds``)."""
        return self.estimate.wall_seconds if self.estimate is not None else None

    @property
    def critical_path(self) -> tuple[PathStep, ...]:
        """The critical path: each node's ``unique_id`` and expected ``seconds``, in order."""
        return self.estimate.critical_path if self.estimate is not None else ()

    def __str__(self) -> str:
        lines = [
            f"BuildPlan: {self.node_count} node(s) in {len(self.waves)} wave(s)"
            f"  |  max parallelism = {self.estimated_parallelism}",
            "",
        ]
        predictions = self.cache_predictions or {}
        for wave in self.waves:
            lines.append(f"  Wave {wave.number} ({len(wave.nodes)} node(s)):")
            for node in wave.nodes:
                kinds = [p for p in (node.resource_type.value, node.materialized) if p]
                line = f"    - {node.unique_id} [{', '.join(kinds)}]"
                prediction = predictions.get(node.unique_id)
                if prediction:
                    reasons = self.cache_reasons.get(node.unique_id)
                    line += f" (cache: {_shown(prediction, reasons)})"
                lines.append(line)
        if predictions:
            counts = {k: sum(1 for v in predictions.values() if v == k) for k in ("hit", "miss")}
            excluded = sum(1 for v in predictions.values() if v == "excluded")
            deferred = sum(
                1 for u, v in predictions.items() if v == "hit" and u in self.cache_reasons
            )
            hits = f"{counts['hit']} hit(s)" + (f" ({deferred} deferred)" if deferred else "")
            lines += ["", f"  Cache: {hits}, {counts['miss']} miss(es), {excluded} excluded"]
        if self.skipped_nodes:
            lines += ["", f"  Skipped ({len(self.skipped_nodes)}):"]
            lines += [f"    - {uid}: {info['reason']}" for uid, info in self.skipped_nodes.items()]
        if self.estimate is not None:
            lines += ["", *(f"  {line}" for line in str(self.estimate).splitlines())]
            lines.append(
                f"  Durations: {self.known_durations} of {self.node_count} node(s) from earlier "
                "builds, the others by resource type"
            )
        return "\n".join(lines)


def _shown(prediction: str, reasons: tuple[str, ...] | None) -> str:
    """``miss: SQL changed``, ``hit``, ``hit, deferred: <new data>; <why it waits>``."""
    if not reasons or prediction not in ("hit", "miss"):
        return prediction
    return f"{prediction}{', deferred' if prediction == 'hit' else ''}: {'; '.join(reasons)}"


def preview(ctx: RunContext) -> BuildPlan:
    """What a run of ``ctx`` would do: its waves and, with a cache, hits and misses with reasons."""
    schedule = schedule_for(ctx)
    predictions: dict[str, str] | None = None
    reasons: dict[str, tuple[str, ...]] = {}
    if ctx.cache is not None:
        predictions = {}
        for uid in ctx.plan.nodes:
            decision = ctx.cache.predict(uid)
            predictions[uid] = decision.outcome
            if decision.outcome in ("miss", "hit") and decision.reasons:
                reasons[uid] = decision.reasons
    return BuildPlan(
        waves=ctx.plan.waves,
        node_count=ctx.plan.node_count,
        cache_predictions=predictions,
        skipped_nodes={uid: skip.to_dict() for uid, skip in ctx.stale_skips.items()},
        estimated_parallelism=ctx.plan.estimated_parallelism,
        cache_reasons=reasons,
        # A predicted hit runs no dbt: it costs (next to) nothing.
        estimate=schedule.estimate(
            ctx,
            concurrency=expected_concurrency(ctx),
            free={uid for uid, p in (predictions or {}).items() if p == "hit"},
        ),
        known_durations=schedule.known,
    )
