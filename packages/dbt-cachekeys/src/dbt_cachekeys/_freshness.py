"""Time-to-live from upstream source freshness.

A source with ``warn_after: {count: 6, period: hour}`` whose newest row was loaded 2 hours
before dbt looked becomes stale 4 hours after that look. A node built from it should be cached
no longer than that: its TTL is the smallest such remaining time over all sources upstream of it
(through every node, ephemeral models included), floored at zero.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from dbt_graph import SourceFreshness

from dbt_cachekeys._keys import KeySet


def source_deadline(freshness: SourceFreshness) -> datetime | None:
    """When a source becomes stale: ``snapshotted_at + threshold - age``.

    The threshold is ``warn_after`` if set, else ``error_after``. ``None`` when the result has no
    threshold or no data (a ``runtime error``, or no ``snapshotted_at``/age).

    Example:
        >>> from datetime import UTC
        >>> from dbt_graph import FreshnessStatus, FreshnessThreshold
        >>> f = SourceFreshness(unique_id="source.p.app.orders", status=FreshnessStatus.PASS,
        ...     snapshotted_at=datetime(2025, 1, 1, 12, tzinfo=UTC), age_seconds=7200,
        ...     warn_after=FreshnessThreshold(count=6, period="hour"))
        >>> source_deadline(f).isoformat()
        '2025-01-01T16:00:00+00:00'
    """
    threshold = freshness.warn_after or freshness.error_after
    if threshold is None or freshness.snapshotted_at is None:
        return None
    age = freshness.age_seconds
    if age is None:
        if freshness.max_loaded_at is None:
            return None
        age = (freshness.snapshotted_at - freshness.max_loaded_at).total_seconds()
    return freshness.snapshotted_at + threshold.as_timedelta() - timedelta(seconds=age)


def freshness_deadlines(
    keys: KeySet, freshness: Mapping[str, SourceFreshness]
) -> dict[str, datetime]:
    """For every node with a usable upstream source: when the first of them becomes stale.

    Each source's deadline is computed once; nodes without one are absent from the result.
    """
    per_source = {uid: source_deadline(f) for uid, f in freshness.items()}
    out: dict[str, datetime] = {}
    for uid, node_key in keys.items():
        deadlines = [d for s in node_key.sources if (d := per_source.get(s)) is not None]
        if deadlines:
            out[uid] = min(deadlines)
    return out


def freshness_ttl(
    keys: KeySet, freshness: Mapping[str, SourceFreshness], *, now: datetime
) -> dict[str, timedelta]:
    """Each node's TTL from the freshness of the sources upstream of it.

    For each upstream source with data and a threshold (``warn_after`` preferred, else
    ``error_after``): remaining = threshold - age at check time - (now - snapshotted_at). A
    node's TTL is the minimum over its sources, floored at zero. Nodes with no such source are
    absent: the global expiration applies to them.

    Args:
        keys: The keys (they know each node's upstream sources).
        freshness: ``dbt source freshness`` results by source unique_id.
        now: The current time (timezone-aware).

    Returns:
        TTL by node unique_id.

    Example:
        >>> from datetime import UTC
        >>> from dbt_graph import FreshnessStatus, FreshnessThreshold
        >>> from dbt_graph.testing import ManifestBuilder
        >>> from dbt_cachekeys import compute_keys
        >>> m = (ManifestBuilder().source("app", "orders", warn_after=(6, "hour"))
        ...      .model("stg", depends_on=["app.orders"]).build())
        >>> seen = datetime(2025, 1, 1, 12, tzinfo=UTC)
        >>> f = {"source.p.app.orders": SourceFreshness(unique_id="source.p.app.orders",
        ...      status=FreshnessStatus.PASS, snapshotted_at=seen, age_seconds=7200,
        ...      warn_after=FreshnessThreshold(count=6, period="hour"))}
        >>> freshness_ttl(compute_keys(m), f, now=seen + timedelta(hours=1))["model.p.stg"]
        datetime.timedelta(seconds=10800)
    """
    return {
        uid: max(deadline - now, timedelta(0))
        for uid, deadline in freshness_deadlines(keys, freshness).items()
    }
