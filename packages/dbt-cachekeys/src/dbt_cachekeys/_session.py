"""One run's cache bookkeeping, and the dry run that predicts it.

Keys are computed up front for every node. What only the run can tell is which upstream nodes
execute; that enters through *run tokens*. Every successful execution gets a fresh token, stored
in its record; a node's record keeps the tokens of its data parents at the time it ran. A node
is a hit only if each data parent still holds the token it consumed:

* a parent served from cache keeps its token, so its children can hit;
* a parent that executes in this run (a miss, or an excluded incremental model or snapshot)
  gets a new token, so its children miss;
* a parent outside the run contributes the token stored for it, so a child misses if the parent
  was re-run elsewhere since.

This is what makes exclusions sound: downstream of an incremental model that re-ran, nothing is
served stale. It also covers a parent that re-ran because it expired or lost its record.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from typing import Any

from dbt_graph import SourceFreshness

from dbt_cachekeys._decisions import WILL_RUN, CachePolicy, Decision, lookup
from dbt_cachekeys._errors import PolicyError, UnresolvedUpstreamError
from dbt_cachekeys._freshness import freshness_deadlines
from dbt_cachekeys._keys import KeySet
from dbt_cachekeys._records import KeyRecord
from dbt_cachekeys._store import KeyStore, delete_record, load_record, save_record


class CacheSession:
    """The cache side of one run: check nodes as they become ready, record what executed.

    Use one session per run, in the process that schedules nodes (the flow), from any number of
    threads. Check a node only after each of its upstream nodes in the run is resolved: checked
    as a hit, or recorded with :meth:`record_success` / :meth:`record_failure` (eager per-node
    scheduling does this naturally). Sessions refuse to pickle, because a copy in a worker
    process would not see its siblings' tokens.

    Args:
        keys: The keys of this invocation.
        store: Where records are kept.
        selected: The nodes this run will process (checked and, on a miss, executed), excluded
            nodes included. Upstream nodes outside it contribute their stored token.
        policy: Exclusions and expiration.
        freshness: Source freshness results, used when
            ``policy.use_source_freshness_expiration`` is set.
        new_token: Makes run tokens; random by default.

    Raises:
        PolicyError: The policy is data-aware and the keys are not (incremental models would be
            served from keys that cannot see their new input rows).

    Example:
        >>> from datetime import UTC, datetime
        >>> from dbt_graph.testing import ManifestBuilder
        >>> from dbt_cachekeys import MemoryKeyStore, compute_keys
        >>> keys = compute_keys(ManifestBuilder().model("stg").model("m", depends_on=["stg"])
        ...                     .build())
        >>> store, now = MemoryKeyStore(), datetime(2025, 1, 1, tzinfo=UTC)
        >>> run = CacheSession(keys, store, selected=keys)
        >>> [run.check(uid, now=now).status.value for uid in ("model.p.stg",)]
        ['miss']
        >>> _ = run.record_success("model.p.stg", finished_at=now)
        >>> _ = run.check("model.p.m", now=now)
        >>> _ = run.record_success("model.p.m", finished_at=now)
        >>> again = CacheSession(keys, store, selected=keys)
        >>> [again.check(uid, now=now).status.value for uid in ("model.p.stg", "model.p.m")]
        ['hit', 'hit']
    """

    def __init__(
        self,
        keys: KeySet,
        store: KeyStore,
        *,
        selected: Iterable[str],
        policy: CachePolicy | None = None,
        freshness: Mapping[str, SourceFreshness] | None = None,
        new_token: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.keys = keys
        self.store = store
        self.selected = frozenset(selected)
        self.policy = policy or CachePolicy()
        if self.policy.data_aware and not keys.data_aware:
            raise PolicyError(
                "CachePolicy(data_aware=True) needs data-aware keys: pass the sources' "
                "fingerprints to compute_keys(..., fingerprints=executor.source_fingerprints(...))"
            )
        self._new_token = new_token
        self._deadlines = (
            freshness_deadlines(keys, freshness)
            if freshness and self.policy.use_source_freshness_expiration
            else {}
        )
        self._lock = threading.Lock()
        self._tokens: dict[str, str | None] = {}  # resolved in this run
        self._stored: dict[str, str | None] = {}  # outside the run, as first read

    def check(self, unique_id: str, *, now: datetime) -> Decision:
        """Decide whether ``unique_id`` can be served from cache.

        A hit resolves the node (its stored token stands). After a miss or an exclusion, execute
        the node and call :meth:`record_success` or :meth:`record_failure`.

        Raises:
            KeyError: The node has no key.
            UnresolvedUpstreamError: A data parent in the run has not been resolved yet.
        """
        node_key = self.keys[unique_id]
        tokens = self._upstream_tokens(unique_id, node_key.data_parents)
        # An excluded node's record is never served, so it is not read: with the default
        # policy that is every test, most of a project's nodes.
        excluded = self.policy.exclusion(node_key) is not None
        record = None if excluded else load_record(self.store, unique_id)
        decision = lookup(node_key, record, now=now, policy=self.policy, upstream_tokens=tokens)
        if decision.hit:
            assert record is not None
            with self._lock:
                self._tokens[unique_id] = record.token
        return decision

    def record_success(
        self, unique_id: str, *, finished_at: datetime, execution_time: float | None = None
    ) -> KeyRecord:
        """Store that ``unique_id`` executed successfully; resolves it with a fresh token.

        Call it before its children are checked. The record's ``expires_at`` comes from source
        freshness when the policy asks for it; ``execution_time`` (dbt's seconds) is kept so a
        later hit can report the time it saved.

        Returns:
            The record written (its ``token`` is a good name for the stored result).
        """
        node_key = self.keys[unique_id]
        inputs = self._upstream_tokens(unique_id, node_key.data_parents)
        deadline = self._deadlines.get(unique_id)
        record = KeyRecord(
            unique_id=unique_id,
            key=node_key.key,
            token=self._new_token(),
            finished_at=finished_at,
            expires_at=max(deadline, finished_at) if deadline is not None else None,
            inputs=tuple(sorted(inputs.items())),
            components=node_key.components,
            execution_time=execution_time,
        )
        save_record(self.store, record)
        with self._lock:
            self._tokens[unique_id] = record.token
        return record

    def record_failure(self, unique_id: str) -> None:
        """Store that ``unique_id`` failed: its record is deleted, so it and its children run
        next time."""
        delete_record(self.store, unique_id)
        with self._lock:
            self._tokens[unique_id] = None

    def _expect_run(self, unique_id: str) -> None:
        with self._lock:
            self._tokens[unique_id] = WILL_RUN

    def _upstream_tokens(self, unique_id: str, parents: Collection[str]) -> dict[str, str | None]:
        tokens: dict[str, str | None] = {}
        for parent in parents:
            with self._lock:
                if parent in self._tokens:
                    tokens[parent] = self._tokens[parent]
                    continue
                if parent in self._stored:
                    tokens[parent] = self._stored[parent]
                    continue
            if parent in self.selected:
                raise UnresolvedUpstreamError(unique_id, parent)
            record = load_record(self.store, parent)
            with self._lock:
                tokens[parent] = self._stored.setdefault(
                    parent, record.token if record is not None else None
                )
        return tokens

    def __getstate__(self) -> Any:
        raise TypeError(
            "a CacheSession belongs to the process that schedules the run and cannot be "
            "pickled; check nodes and record results there, and ship only the decisions"
        )


def predict(
    keys: KeySet,
    store: KeyStore,
    *,
    selected: Iterable[str],
    now: datetime,
    policy: CachePolicy | None = None,
) -> dict[str, Decision]:
    """Predict the decision of every selected node, as a run starting ``now`` would make it.

    It walks the selected nodes parents first, as the run does, assuming every node that misses
    or is excluded executes successfully (its children then miss with "upstream `x` will run").
    Nothing is written.

    Args:
        keys: The keys of the invocation.
        store: Where records are kept.
        selected: The nodes the run would process.
        now: The time to judge expiry at.
        policy: Exclusions and expiration.

    Returns:
        Decisions by unique_id, parents first.

    Example:
        >>> from datetime import UTC, datetime
        >>> from dbt_graph.testing import ManifestBuilder
        >>> from dbt_cachekeys import MemoryKeyStore, compute_keys
        >>> keys = compute_keys(ManifestBuilder()
        ...     .model("events", materialized="incremental").model("m", depends_on=["events"])
        ...     .build())
        >>> plan = predict(keys, MemoryKeyStore(), selected=keys,
        ...                now=datetime(2025, 1, 1, tzinfo=UTC))
        >>> {uid: d.reasons for uid, d in plan.items()}  # doctest: +NORMALIZE_WHITESPACE
        {'model.p.events': ('materialization `incremental` is excluded',),
         'model.p.m': ('never ran',)}
    """
    chosen = frozenset(selected)
    session = CacheSession(keys, store, selected=chosen, policy=policy)
    decisions: dict[str, Decision] = {}
    for uid in keys:
        if uid not in chosen:
            continue
        decision = session.check(uid, now=now)
        if not decision.hit:
            session._expect_run(uid)
        decisions[uid] = decision
    return decisions
