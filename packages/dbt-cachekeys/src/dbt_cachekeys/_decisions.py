"""Deciding hit, miss or excluded for one node, and saying why in words."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from dbt_graph import ResourceType

from dbt_cachekeys._build_after import decide_build_after
from dbt_cachekeys._data import explain_data
from dbt_cachekeys._keys import SCHEMA_VERSION, NodeKey
from dbt_cachekeys._records import KeyRecord

#: The token a dry run (:func:`~dbt_cachekeys.predict`) gives a node it expects to execute.
WILL_RUN = "<will run>"


class CacheStatus(StrEnum):
    """The outcome of a cache lookup."""

    HIT = "hit"
    MISS = "miss"
    EXCLUDED = "excluded"


@dataclass(frozen=True, kw_only=True)
class CachePolicy:
    """What may be cached, and for how long.

    Attributes:
        expiration: How long a result stays valid after it finished; ``None`` for ever.
        use_source_freshness_expiration: Where a node has upstream sources with freshness data,
            let them decide when its result expires instead of ``expiration``.
        exclude_materializations: Materializations that always run. ``None`` (the default)
            means ``{"incremental"}`` (an incremental model's result depends on new rows in its
            inputs, which code-only keys do not see), and nothing in data-aware mode (where
            the keys do see them: an incremental model whose inputs did not change has
            nothing to add).
        exclude_resource_types: Resource types that always run.
        data_aware: The keys cover upstream sources' data (``compute_keys(fingerprints=...)``):
            incremental models may be served, and models' ``freshness.build_after`` is
            honoured. Sessions refuse keys that are not data-aware under such a policy.

    Example:
        >>> CachePolicy(expiration=timedelta(hours=24)).exclude_materializations
        frozenset({'incremental'})
        >>> CachePolicy(data_aware=True).exclude_materializations
        frozenset()
    """

    expiration: timedelta | None = None
    use_source_freshness_expiration: bool = False
    exclude_materializations: frozenset[str] | None = None
    exclude_resource_types: frozenset[ResourceType] = frozenset(
        {ResourceType.TEST, ResourceType.SNAPSHOT, ResourceType.UNIT_TEST}
    )
    data_aware: bool = False

    def __post_init__(self) -> None:
        if self.exclude_materializations is None:
            default = frozenset() if self.data_aware else frozenset({"incremental"})
            object.__setattr__(self, "exclude_materializations", default)

    def exclusion(self, node_key: NodeKey) -> str | None:
        """Why the policy never serves this node from cache, or ``None`` if it may."""
        if node_key.is_ephemeral:
            return "ephemeral models are compiled into their children"
        if node_key.resource_type in self.exclude_resource_types:
            return f"resource type `{node_key.resource_type.value}` is excluded"
        if node_key.materialized in (self.exclude_materializations or ()):
            return f"materialization `{node_key.materialized}` is excluded"
        return None


@dataclass(frozen=True, kw_only=True)
class Decision:
    """Whether a node's stored result may be used, and why not.

    Attributes:
        unique_id: The node.
        status: Hit, miss or excluded.
        reasons: For misses and exclusions, why, in words (``"SQL changed"``,
            ``"upstream `stg_orders` changed"``, ``"expired"``...). Empty for hits, except a
            hit served under ``freshness.build_after`` despite new input data: then the new
            data and why the model waits.
        record: The stored record (for a hit, the one to serve), if there was one; a
            :class:`~dbt_cachekeys.CacheSession` does not read it for an excluded node.
    """

    unique_id: str
    status: CacheStatus
    reasons: tuple[str, ...] = ()
    record: KeyRecord | None = None

    @property
    def hit(self) -> bool:
        """Whether the stored result may be served."""
        return self.status is CacheStatus.HIT

    @property
    def deferred(self) -> bool:
        """Whether it is a hit only because ``freshness.build_after`` defers a rebuild."""
        return self.hit and bool(self.reasons)


def lookup(
    node_key: NodeKey,
    record: KeyRecord | None,
    *,
    now: datetime,
    policy: CachePolicy,
    upstream_tokens: Mapping[str, str | None],
) -> Decision:
    """Decide whether ``record`` is a valid cached result for ``node_key`` at ``now``.

    A hit needs: a policy that does not exclude the node, a readable definition, a record with
    the same key, no ``--full-refresh``, an unexpired record, and every data parent still holding
    the run token the node consumed when it ran (a parent that ran again since, for any reason,
    may have changed the data). In data-aware mode a model whose code is unchanged but whose
    inputs have new data is also a hit while its ``freshness.build_after`` defers the rebuild.

    Args:
        node_key: The node's key.
        record: Its stored record, or ``None``.
        now: The current time (timezone-aware).
        policy: Exclusions and expiration.
        upstream_tokens: The current run token of each of ``node_key.data_parents`` (``None``
            for a parent without a record).

    Returns:
        The decision, with reasons for a miss.

    Raises:
        KeyError: ``upstream_tokens`` lacks one of the node's data parents.

    Example:
        >>> from datetime import UTC
        >>> from dbt_graph.testing import ManifestBuilder
        >>> from dbt_cachekeys import compute_keys
        >>> stg = compute_keys(ManifestBuilder().model("stg").build())["model.p.stg"]
        >>> now = datetime(2025, 1, 1, tzinfo=UTC)
        >>> lookup(stg, None, now=now, policy=CachePolicy(), upstream_tokens={}).reasons
        ('never ran',)
    """
    excluded = policy.exclusion(node_key)
    if excluded is not None:
        return Decision(
            unique_id=node_key.unique_id,
            status=CacheStatus.EXCLUDED,
            reasons=(excluded,),
            record=record,
        )
    reasons: list[str] = []
    if node_key.problem is not None:
        reasons.append(node_key.problem)
    if record is None:
        reasons.append("never ran")
    elif record.key != node_key.key:
        reasons.extend(r for r in explain(node_key, record) if r not in reasons)
    else:
        if node_key.components.full_refresh:
            reasons.append("full refresh")
        if _expired(record, now, policy):
            reasons.append("expired")
        consumed = dict(record.inputs)
        for parent in node_key.data_parents:
            current = upstream_tokens[parent]
            if current == WILL_RUN:
                reasons.append(f"upstream `{_display(parent)}` will run")
            elif consumed.get(parent) != current:
                reasons.append(f"upstream `{_display(parent)}` ran since")
    if node_key.components.full_refresh and "full refresh" not in reasons:
        reasons.insert(0, "full refresh")
    if reasons and record is not None and policy.data_aware and node_key.build_after:
        waits = _build_after_wait(node_key, record, now, policy, upstream_tokens)
        if waits is not None:
            return Decision(
                unique_id=node_key.unique_id,
                status=CacheStatus.HIT,
                reasons=(*reasons, waits),
                record=record,
            )
    status = CacheStatus.MISS if reasons else CacheStatus.HIT
    return Decision(
        unique_id=node_key.unique_id, status=status, reasons=tuple(reasons), record=record
    )


def _build_after_wait(
    node_key: NodeKey,
    record: KeyRecord,
    now: datetime,
    policy: CachePolicy,
    upstream_tokens: Mapping[str, str | None],
) -> str | None:
    """Why ``freshness.build_after`` serves the record despite new input data, or ``None``.

    Only new data can be deferred: a code change, a full refresh, an unreadable definition,
    another record format or an expired record always rebuild.
    """
    new, old = node_key.components, record.components
    if (
        node_key.problem is not None
        or new.full_refresh
        or record.schema_version != SCHEMA_VERSION
        or _expired(record, now, policy)
        or replace(new, data=()) != replace(old, data=())
    ):
        return None
    before = {d.source: d.digest for d in old.data}
    after = {d.source: d.digest for d in new.data}

    def source_changed(source: str) -> bool:
        digest = after.get(source)
        return digest is None or before.get(source) != digest

    consumed = dict(record.inputs)
    changed = []
    for uid, watched in node_key.inputs:
        token = upstream_tokens.get(uid, consumed.get(uid))
        if token == WILL_RUN or consumed.get(uid) != token or any(map(source_changed, watched)):
            changed.append(_display(uid))
    decision = decide_build_after(
        node_key.build_after,
        last_built=record.finished_at,
        now=now,
        inputs=[_display(uid) for uid, _ in node_key.inputs],
        changed=changed,
    )
    return None if decision.rebuild else decision.reason


def explain(node_key: NodeKey, record: KeyRecord) -> tuple[str, ...]:
    """Why ``record``'s key differs from ``node_key``'s, in words; empty if they are equal.

    Example:
        >>> from datetime import UTC
        >>> from dbt_graph.testing import ManifestBuilder
        >>> from dbt_cachekeys import compute_keys
        >>> def key(code, target):
        ...     m = ManifestBuilder().model("stg", code=code).build()
        ...     return compute_keys(m, target=target)["model.p.stg"]
        >>> old = key("select 1", "dev")
        >>> record = KeyRecord(unique_id=old.unique_id, key=old.key, token="t",
        ...                    finished_at=datetime(2025, 1, 1, tzinfo=UTC),
        ...                    components=old.components)
        >>> explain(key("select 2", "prod"), record)
        ('SQL changed', 'target changed')
    """
    if record.key == node_key.key:
        return ()
    if record.schema_version != SCHEMA_VERSION:
        return (f"cache format changed (v{record.schema_version} -> v{SCHEMA_VERSION})",)
    new, old = node_key.components, record.components
    reasons: list[str] = []
    if new.text != old.text:
        reasons.append(f"{node_key.text_label} changed")
    if new.config != old.config:
        reasons.append("config changed")
    if new.relation != old.relation:
        reasons.append("relation changed")
    package = node_key.unique_id.split(".")[1] if "." in node_key.unique_id else ""
    reasons.extend(
        _pair_changes(old.macros, new.macros, "macro", lambda uid: _macro_display(uid, package))
    )
    reasons.extend(_pair_changes(old.upstream, new.upstream, "upstream", _display))
    reasons.extend(explain_data(old.data, new.data, _display))
    if new.target != old.target:
        reasons.append("target changed")
    if new.vars != old.vars:
        reasons.append("vars changed")
    if new.cli_args != old.cli_args:
        reasons.append("dbt arguments changed")
    if new.full_refresh != old.full_refresh:
        reasons.append("full refresh" if new.full_refresh else "last run was a full refresh")
    return tuple(reasons) or ("key changed",)


def _pair_changes(
    old: tuple[tuple[str, str], ...],
    new: tuple[tuple[str, str], ...],
    noun: str,
    show: Callable[[str], str],
) -> list[str]:
    before, after = dict(old), dict(new)
    out = []
    for uid in sorted(before.keys() | after.keys()):
        if uid not in before:
            out.append(f"{noun} `{show(uid)}` added")
        elif uid not in after:
            out.append(f"{noun} `{show(uid)}` removed")
        elif before[uid] != after[uid]:
            out.append(f"{noun} `{show(uid)}` changed")
    return out


def _expired(record: KeyRecord, now: datetime, policy: CachePolicy) -> bool:
    if policy.use_source_freshness_expiration and record.expires_at is not None:
        return now >= record.expires_at
    if policy.expiration is None:
        return False
    return now >= record.finished_at + policy.expiration


def _display(unique_id: str) -> str:
    """``model.shop.customers.v2`` -> ``customers.v2``, ``source.shop.app.t`` -> ``app.t``."""
    parts = unique_id.split(".")
    return ".".join(parts[2:]) or unique_id


def _macro_display(unique_id: str, package: str) -> str:
    parts = unique_id.split(".")
    if len(parts) < 3:
        return unique_id
    return parts[2] if parts[1] == package else f"{parts[1]}.{parts[2]}"
