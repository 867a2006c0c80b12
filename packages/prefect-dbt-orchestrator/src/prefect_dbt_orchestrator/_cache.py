"""Caching glue: dbt-cachekeys decides, Prefect storage keeps the results."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from dbt_cachekeys import (
    CachePolicy,
    CacheSession,
    CacheStatus,
    KeySet,
    KeyStore,
    LocalKeyStore,
    ProjectFiles,
    compute_keys,
    predict,
)
from dbt_graph import (
    ExecutionPlan,
    Manifest,
    ResourceType,
    SourceFingerprint,
    SourceFreshness,
)

from prefect_dbt_orchestrator._config import CacheConfig
from prefect_dbt_orchestrator._outcomes import CacheHit, NodeOutcome, OutcomeStatus

logger = logging.getLogger("prefect_dbt_orchestrator.cache")


@dataclass(frozen=True)
class Prediction:
    """What ``plan()`` shows for one node."""

    outcome: str
    reasons: tuple[str, ...] = ()


class NodeCache:
    """The cache of one ``run_build()``/``plan()`` call.

    Keys come from :mod:`dbt_cachekeys` (own text, config, relation, macros, upstream keys,
    target, vars, CLI args, full refresh; with ``CacheConfig(data_aware=True)`` also the data
    fingerprints of upstream sources). Hits are decided in the scheduling thread, when a node's
    parents have resolved, by a :class:`dbt_cachekeys.CacheSession`; ``plan()`` replays the same
    rules with :func:`dbt_cachekeys.predict`, so its predictions agree with the run.
    """

    def __init__(
        self,
        config: CacheConfig,
        *,
        keys: KeySet,
        key_store: KeyStore,
        plan: ExecutionPlan,
        freshness: Mapping[str, SourceFreshness],
        full_refresh: bool,
    ) -> None:
        self.config = config
        self.keys = keys
        self.key_store = key_store
        self.full_refresh = full_refresh
        excluded = config.exclude_materializations
        self.policy = CachePolicy(
            expiration=config.expiration,
            use_source_freshness_expiration=config.use_source_freshness_expiration,
            exclude_materializations=frozenset(excluded) if excluded is not None else None,
            exclude_resource_types=frozenset(config.exclude_resource_types),
            data_aware=config.data_aware,
        )
        # A unit test runs before the model it tests, which is its data parent in the manifest:
        # it cannot wait for that parent's token, and it checks code that just changed anyway.
        self.selected = [
            uid
            for uid, node in plan.nodes.items()
            if uid in keys and node.resource_type is not ResourceType.UNIT_TEST
        ]
        self._in_session = frozenset(self.selected)
        self.session = CacheSession(
            keys, key_store, selected=self.selected, policy=self.policy, freshness=freshness
        )
        self._decisions: dict[str, CacheStatus] = {}

    @classmethod
    def create(
        cls,
        config: CacheConfig,
        *,
        manifest: Manifest,
        project_dir: Path,
        plan: ExecutionPlan,
        freshness: Mapping[str, SourceFreshness],
        full_refresh: bool,
        target: str | None,
        vars: Mapping[str, Any],
        extra_args: Sequence[str] = (),
        fingerprints: Mapping[str, SourceFingerprint] | None = None,
    ) -> NodeCache:
        """Compute the keys of a run and open its key store.

        Args:
            target: The effective target (``ProjectConfig.target``): a run with ``target=None``
                and one naming the profile's default share keys.
            vars: The effective vars (``ProjectConfig.vars``).
            fingerprints: The upstream sources' data fingerprints (``config.data_aware``);
                a source missing here counts as changed.
        """
        files = ProjectFiles(project_dir, root_package=manifest.project_name)
        keys = compute_keys(
            manifest,
            read_file=files,
            target=target,
            vars=vars,
            full_refresh=full_refresh,
            cli_args=extra_args,
            fingerprints=(fingerprints or {}) if config.data_aware else None,
        )
        return cls(
            config,
            keys=keys,
            key_store=key_store_for(config, manifest.project_name),
            plan=plan,
            freshness=freshness,
            full_refresh=full_refresh,
        )

    @cached_property
    def predictions(self) -> dict[str, Prediction]:
        decisions = predict(
            self.keys,
            self.key_store,
            selected=self.selected,
            now=datetime.now(UTC),
            policy=self.policy,
        )
        out = {}
        for uid, decision in decisions.items():
            if self.full_refresh and decision.status is CacheStatus.HIT:
                out[uid] = Prediction("miss", ("full refresh",))
            else:
                out[uid] = Prediction(decision.status.value, decision.reasons)
        return out

    def predict(self, unique_id: str) -> Prediction:
        """The prediction for one planned node (``excluded`` for nodes without a key)."""
        return self.predictions.get(unique_id, Prediction("excluded", ("unit tests always run",)))

    def lookup(self, unique_id: str) -> NodeOutcome | None:
        """A cached outcome to serve for ``unique_id``, or ``None`` to execute it.

        Call it once each of the node's parents has been looked up or recorded. The outcome is
        the stored one as ``cached``, without its timing and invocation (the task sets them).
        """
        if unique_id not in self._in_session:
            return None
        decision = self.session.check(unique_id, now=datetime.now(UTC))
        self._decisions[unique_id] = decision.status
        if not decision.hit or self.full_refresh:
            if decision.status is CacheStatus.MISS:
                logger.debug("cache miss for %s: %s", unique_id, "; ".join(decision.reasons))
            return None
        record = decision.record
        assert record is not None
        stored = self.results.read(record.token)
        if stored is None:
            return None
        try:
            outcome = NodeOutcome.from_dict(stored)
        except (KeyError, TypeError, ValueError) as exc:
            logger.warning("the cached result %s is malformed (re-running): %s", record.token, exc)
            return None
        saved = record.execution_time
        if saved is None and outcome.timing is not None:  # a record from before it was kept
            saved = outcome.timing.execution_time
        hit = CacheHit(
            stored_at=record.finished_at.isoformat(),
            key=record.key,
            execution_time=saved,
            deferred=decision.reasons[-1] if decision.deferred else None,
        )
        return replace(
            outcome, status=OutcomeStatus.CACHED, timing=None, invocation=None, cache=hit
        )

    def record(self, unique_id: str, outcome: NodeOutcome) -> None:
        """Record an executed node's outcome (a no-op for cached and skipped nodes)."""
        if unique_id not in self._in_session or outcome.status is OutcomeStatus.CACHED:
            return
        if outcome.status is not OutcomeStatus.SUCCESS:
            self.session.record_failure(unique_id)
        else:
            seconds = outcome.timing.execution_time if outcome.timing is not None else None
            record = self.session.record_success(
                unique_id, finished_at=datetime.now(UTC), execution_time=seconds
            )
            if self._decisions.get(unique_id) is not CacheStatus.EXCLUDED:
                self.results.write(record.token, outcome.to_dict())

    @cached_property
    def results(self) -> ResultStorage:
        return ResultStorage(self.config.result_storage)


def result_block(storage: Path | str | Any | None) -> Any:
    """The Prefect filesystem block results go to: for a Path, a block slug, a block, or the
    default result storage (``None``)."""
    from prefect.results import get_default_result_storage, resolve_result_storage

    if storage is None:
        return _sync(get_default_result_storage())
    if isinstance(storage, Path):
        storage.mkdir(parents=True, exist_ok=True)
    return _sync(resolve_result_storage(storage))


class ResultStorage:
    """Node results kept in Prefect result storage (a Path, a block slug, or the default)."""

    def __init__(self, storage: Path | str | Any | None) -> None:
        from prefect.results import ResultStore
        from prefect.serializers import JSONSerializer

        self._store = ResultStore(result_storage=result_block(storage), serializer=JSONSerializer())

    def write(self, token: str, result: dict[str, Any]) -> None:
        try:
            self._store.write(key=_result_key(token), obj=result)
        except Exception as exc:  # a result that cannot be stored is a future miss, not a failure
            logger.warning("could not store the cached result %s: %s", token, exc)

    def read(self, token: str) -> dict[str, Any] | None:
        key = _result_key(token)
        try:
            # No exists() first: on local storage each call resolves the path again, which
            # costs more than the read itself. A hit's result is nearly always there.
            value = self._store.read(key).result
        except Exception as exc:
            with contextlib.suppress(Exception):
                if not self._store.exists(key):
                    return None  # deleted, or not a result record: a plain miss
            logger.warning("could not read the cached result %s (re-running): %s", token, exc)
            return None
        return value if isinstance(value, dict) else None


def _result_key(token: str) -> str:
    return f"dbt-orchestrator-{token}"


class BlockKeyStore:
    """A :class:`dbt_cachekeys.KeyStore` over a Prefect filesystem block (``"s3-bucket/x"``)."""

    def __init__(self, block: Any, prefix: str) -> None:
        self.block = block
        self.prefix = prefix

    def _path(self, unique_id: str) -> str:
        digest = hashlib.sha256(unique_id.encode()).hexdigest()[:16]
        return f"{self.prefix}/{unique_id[:80]}-{digest}.json"

    def get(self, unique_id: str) -> bytes | None:
        try:
            data = _sync(self.block.read_path(self._path(unique_id)))
        except Exception:
            return None
        return data or None

    def put(self, unique_id: str, data: bytes) -> None:
        _sync(self.block.write_path(self._path(unique_id), data))

    def delete(self, unique_id: str) -> None:
        # Filesystem blocks have no delete; an empty record reads as missing.
        _sync(self.block.write_path(self._path(unique_id), b""))


def _sync(value: Any) -> Any:
    return asyncio.run(value) if asyncio.iscoroutine(value) else value


def key_store_for(config: CacheConfig, project_name: str) -> KeyStore:
    """The key store ``config.key_storage`` names (a Path, a block slug or a block).

    Without one, keys live next to the results, wherever those are (a ``cache-keys/<project>``
    folder of the result storage): whoever can read the results, on any machine, reads the
    keys that lead to them.
    """
    storage = config.key_storage
    if storage is None:
        return _key_store_in(result_block(config.result_storage), f"cache-keys/{project_name}")
    if isinstance(storage, Path):
        return LocalKeyStore(storage / project_name)
    if isinstance(storage, str):
        from prefect.blocks.core import Block

        storage = Block.load(storage)
    return _key_store_in(storage, f"dbt-cache-keys/{project_name}")


def _key_store_in(block: Any, folder: str) -> KeyStore:
    """Keys in ``folder`` of a filesystem block.

    A local directory gets a :class:`LocalKeyStore` (atomic renames, as the key store contract
    asks; a block's ``write_path`` is not atomic there). Other blocks write whole objects.
    """
    from prefect.filesystems import LocalFileSystem

    if isinstance(block, LocalFileSystem) and block.basepath:
        return LocalKeyStore(Path(block.basepath).expanduser() / folder)
    return BlockKeyStore(block, folder)
