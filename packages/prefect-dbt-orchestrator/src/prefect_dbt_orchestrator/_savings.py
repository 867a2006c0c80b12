"""What the cache saved a run: the nodes it served, and the dbt time their last real runs took.

The time is dbt's own ``execution_time`` of the run that stored each served result (kept in its
key record), so it is what rebuilding those nodes took last time, not a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from prefect_dbt_orchestrator._outcomes import NodeOutcome, OutcomeStatus


@dataclass(frozen=True, kw_only=True)
class CacheSavings:
    """The cache hits of a run, and the dbt time they saved.

    Attributes:
        unchanged: Nodes served because nothing they depend on changed.
        deferred: Nodes served although their inputs have new data, because their
            ``freshness.build_after`` waits (data-aware caching).
        seconds: dbt's execution time of the last real run of all of them.
        untimed: Of those, the ones whose last run has no recorded time (not in ``seconds``).

    Example:
        >>> from prefect_dbt_orchestrator._outcomes import CacheHit
        >>> def hit(seconds, deferred=None):
        ...     return NodeOutcome(status=OutcomeStatus.CACHED, cache=CacheHit(
        ...         stored_at="2026-01-01T00:00:00+00:00", key="k", execution_time=seconds,
        ...         deferred=deferred))
        >>> savings = CacheSavings.of({"a": hit(1.5), "b": hit(2.0, "build_after 1 day: ...")})
        >>> savings.sentence()  # doctest: +NORMALIZE_WHITESPACE
        '1 node(s) skipped as unchanged, 1 deferred by freshness.build_after,
         saving 3.5s of dbt time'
    """

    unchanged: int = 0
    deferred: int = 0
    seconds: float = 0.0
    untimed: int = 0

    @classmethod
    def of(cls, outcomes: Mapping[str, NodeOutcome]) -> CacheSavings:
        """Count the cached outcomes of a run."""
        unchanged = deferred = untimed = 0
        seconds = 0.0
        for outcome in outcomes.values():
            if outcome.status is not OutcomeStatus.CACHED:
                continue
            hit = outcome.cache
            if hit is not None and hit.deferred is not None:
                deferred += 1
            else:
                unchanged += 1
            if hit is None or hit.execution_time is None:
                untimed += 1
            else:
                seconds += hit.execution_time
        return cls(unchanged=unchanged, deferred=deferred, seconds=seconds, untimed=untimed)

    @property
    def served(self) -> int:
        """How many nodes the cache served."""
        return self.unchanged + self.deferred

    def sentence(self) -> str:
        """The savings in words, for the CLI, the logs and the summary artifact."""
        parts = [f"{self.unchanged} node(s) skipped as unchanged"]
        if self.deferred:
            parts.append(f"{self.deferred} deferred by freshness.build_after")
        text = ", ".join(parts) + f", saving {self.seconds:.1f}s of dbt time"
        if self.untimed:
            text += f" ({self.untimed} without a recorded time)"
        return text
