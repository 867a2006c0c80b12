"""dbt-cachekeys: decide whether a dbt node's last successful result can be reused.

Pure functions over a parsed :class:`dbt_graph.Manifest`: keys that change whenever anything
that can change a node's result changes (its text, config, relation, macros transitively,
upstream nodes, target, vars, arguments, full refresh; in data-aware mode the data fingerprints
of upstream sources), explanations of misses in words, TTLs from source freshness, dbt's
``freshness.build_after`` as a decision, and a small atomic key store.

Example:
    >>> from datetime import UTC, datetime
    >>> from dbt_graph.testing import ManifestBuilder
    >>> m = ManifestBuilder().seed("raw").model("stg", depends_on=["raw"]).build()
    >>> keys = compute_keys(m, read_file=lambda node: b"id\\n1\\n", target="dev")
    >>> store, now = MemoryKeyStore(), datetime(2025, 1, 1, tzinfo=UTC)
    >>> run = CacheSession(keys, store, selected=["seed.p.raw", "model.p.stg"])
    >>> for uid in ("seed.p.raw", "model.p.stg"):
    ...     if not run.check(uid, now=now).hit:
    ...         _ = run.record_success(uid, finished_at=now)  # after executing it
    >>> [d.status.value for d in predict(keys, store, selected=keys, now=now).values()]
    ['hit', 'hit']
"""

from dbt_cachekeys._build_after import (
    BuildAfter,
    BuildAfterDecision,
    UpdatesOn,
    decide_build_after,
)
from dbt_cachekeys._data import DataInput
from dbt_cachekeys._decisions import CachePolicy, CacheStatus, Decision, explain, lookup
from dbt_cachekeys._errors import (
    CacheKeysError,
    PolicyError,
    RecordError,
    UnresolvedUpstreamError,
)
from dbt_cachekeys._files import ProjectFiles
from dbt_cachekeys._freshness import freshness_ttl, source_deadline
from dbt_cachekeys._keys import (
    SCHEMA_VERSION,
    Components,
    FileReader,
    KeySet,
    NodeKey,
    compute_keys,
)
from dbt_cachekeys._records import KeyRecord
from dbt_cachekeys._session import CacheSession, predict
from dbt_cachekeys._store import (
    KeyStore,
    LocalKeyStore,
    MemoryKeyStore,
    delete_record,
    load_record,
    save_record,
)

__all__ = [
    "SCHEMA_VERSION",
    "BuildAfter",
    "BuildAfterDecision",
    "CacheKeysError",
    "CachePolicy",
    "CacheSession",
    "CacheStatus",
    "Components",
    "DataInput",
    "Decision",
    "FileReader",
    "KeyRecord",
    "KeySet",
    "KeyStore",
    "LocalKeyStore",
    "MemoryKeyStore",
    "NodeKey",
    "PolicyError",
    "ProjectFiles",
    "RecordError",
    "UnresolvedUpstreamError",
    "UpdatesOn",
    "compute_keys",
    "decide_build_after",
    "delete_record",
    "explain",
    "freshness_ttl",
    "load_record",
    "lookup",
    "predict",
    "save_record",
    "source_deadline",
]
