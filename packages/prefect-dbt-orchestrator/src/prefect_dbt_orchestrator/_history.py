"""How long each node took in earlier builds: one :class:`dbt_graph.DurationHistory` per project
and target, read before a call and updated after a build.

Where it lives: with a cache, in the cache's key storage (a block there is shared by every
machine that builds the project); without one, in the target path, next to
``run_results.json``. Its record is named ``orchestrator-durations.<target>``: a warehouse's dev
and prod targets take different times. Prefect's own task-run history is not used: reading
thousands of task runs back is slow and depends on the server's retention.

What is learned: dbt's own time for each node that ran to completion (a failing test counts:
it took its usual time; errors, skips and cache hits do not), the last attempt's when it was
retried. PER_NODE adds the build's per-node cost around dbt: the median, over its nodes, of the
time a node held its slot (from the scheduler submitting its task to hearing back, less any
wait for a Prefect concurrency limit) beyond dbt's time. So ``plan()``'s estimate includes the
Prefect task run and the hand-off to the executor, while one-off costs (the executor starting
up for the first nodes, a retry's delay) are not charged to the node that happened to pay them:
else the nodes that start first would look slow, be started first again, and so on. Reading or
writing the history never fails a build: a problem is logged and the build goes on (without
history, nodes get per-resource-type defaults).
"""

from __future__ import annotations

import json
import logging
import statistics
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from dbt_cachekeys import KeyStore, LocalKeyStore, MemoryKeyStore
from dbt_graph import DurationHistory, ProfileError

from prefect_dbt_orchestrator._context import RunContext
from prefect_dbt_orchestrator._outcomes import NodeOutcome, OutcomeStatus
from prefect_dbt_orchestrator._project import ProjectConfig

logger = logging.getLogger("prefect_dbt_orchestrator.durations")

#: dbt statuses of nodes that ran to completion (a failing test took its usual time).
_COMPLETED = frozenset({"success", "pass", "warn", "fail"})


@dataclass(frozen=True)
class HistoryStore:
    """Where one project and target keep their duration history.

    Attributes:
        store: The key store holding it (the cache's, or one on the target path).
        record_id: The record's name in that store.
    """

    store: KeyStore
    record_id: str

    @classmethod
    def for_run(cls, ctx: RunContext) -> HistoryStore:
        """The history of ``ctx``'s project and effective target (one kept in memory for
        this build only when the target path cannot be used: the build does not depend on it)."""
        record_id = f"orchestrator-durations.{_target_name(ctx)}"
        if ctx.cache is not None:
            return cls(ctx.cache.key_store, record_id)
        target_path = ctx.options.settings.resolved_target_path()
        try:
            return cls(LocalKeyStore(target_path), record_id)
        except OSError as exc:
            logger.warning(
                "No duration history for this build: the target path %s cannot hold it (%s).",
                target_path,
                exc,
            )
            return cls(MemoryKeyStore(), record_id)

    def load(self) -> DurationHistory:
        """The stored history; an empty one when there is none or it cannot be read."""
        try:
            data = self.store.get(self.record_id)
            if data is None:
                return DurationHistory()
            return DurationHistory.from_json(json.loads(data))
        except Exception as exc:  # a history we cannot read is one we start over
            logger.warning(
                "Ignoring the stored duration history %s (%s: %s); this build starts a new one.",
                self.record_id,
                type(exc).__name__,
                exc,
            )
            return DurationHistory()

    def save(
        self, history: DurationHistory, observed: Mapping[str, float], *, nodes: Collection[str]
    ) -> None:
        """Add one build's observations to ``history`` and store it.

        Args:
            history: The history the build started from.
            observed: Seconds per node, from this build.
            nodes: The project's nodes (the manifest's): samples of other nodes are dropped.
        """
        if not observed:
            return
        updated = history.record(observed)
        kept = {u: s for u, s in updated.samples.items() if u in nodes}
        document = DurationHistory(samples=kept, window=updated.window).to_json()
        try:
            self.store.put(self.record_id, json.dumps(document, separators=(",", ":")).encode())
        except Exception as exc:  # the build's outcome does not depend on it
            logger.warning(
                "Could not store the duration history %s: %s: %s",
                self.record_id,
                type(exc).__name__,
                exc,
            )


def dbt_seconds(outcome: NodeOutcome) -> float | None:
    """dbt's own seconds for a node that ran to completion, else ``None`` (nothing to learn)."""
    timing = outcome.timing
    if outcome.status is OutcomeStatus.CACHED or timing is None:
        return None
    if outcome.dbt_status not in _COMPLETED:
        return None
    return max(0.0, timing.execution_time or timing.duration_seconds)


def with_overhead(dbt: Mapping[str, float], slots: Mapping[str, float]) -> dict[str, float]:
    """dbt's seconds per node plus the build's typical per-node cost around dbt.

    Args:
        dbt: dbt's own seconds per node (:func:`dbt_seconds`).
        slots: The seconds each node held its slot.

    >>> with_overhead({"a": 1.0, "b": 2.0, "c": 0.5}, {"a": 1.1, "b": 2.1, "c": 4.0})
    {'a': 1.1, 'b': 2.1, 'c': 0.6}
    """
    gaps = [slots[uid] - seconds for uid, seconds in dbt.items() if uid in slots]
    overhead = max(0.0, statistics.median(gaps)) if gaps else 0.0
    return {uid: round(seconds + overhead, 6) for uid, seconds in dbt.items()}


def dbt_times(outcomes: Mapping[str, NodeOutcome]) -> dict[str, float]:
    """:func:`dbt_seconds` of every node that has them (what PER_WAVE learns)."""
    out = {uid: dbt_seconds(outcome) for uid, outcome in outcomes.items()}
    return {uid: seconds for uid, seconds in out.items() if seconds is not None}


def _target_name(ctx: RunContext) -> str:
    """The target dbt runs against (as the cache keys name it), else the call's, else
    ``default`` (no profile here: a dbt Cloud project)."""
    try:
        target = ProjectConfig.read(ctx.options.settings).target(ctx.target)
    except ProfileError:
        target = None
    return target or ctx.target or "default"
