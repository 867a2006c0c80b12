"""Test helpers shipped with dbt-graph: a manifest builder and a scripted fake executor.

Use them to test code that consumes manifests or executors without running dbt:

>>> m = ManifestBuilder().seed("raw").model("stg", depends_on=["raw"]).build()
>>> ex = FakeExecutor(m, outcomes={"model.p.stg": NodeStatus.ERROR})
>>> from dbt_graph import Command, ExecutionRequest
>>> result = ex.execute(ExecutionRequest(command=Command.BUILD, nodes=tuple(m.nodes.values())))
>>> {uid: r.status.value for uid, r in result.results.items()}
{'seed.p.raw': 'success', 'model.p.stg': 'error'}
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt_graph._execution import (
    Command,
    ErrorInfo,
    ExecutionRequest,
    ExecutionResult,
    LogLine,
    NodeResult,
    NodeStatus,
    SourceFreshness,
)
from dbt_graph._fingerprints import FingerprintMethod, SourceFingerprint
from dbt_graph._loader import parse_manifest
from dbt_graph._manifest import Manifest
from dbt_graph._nodes import ResourceType
from dbt_graph._walks import ancestors, topological_order

_SCHEMA = "https://schemas.getdbt.com/dbt/manifest/v12.json"


class ManifestBuilder:
    """Builds small manifests for unit tests, through the same parser real files go through.

    Names in ``depends_on`` may be short names of nodes added earlier (``"stg"``) or full
    unique_ids. Every method returns the builder, so calls chain.

    Args:
        package: The root package name used in unique_ids.
        adapter_type: ``metadata.adapter_type``.
    """

    def __init__(self, package: str = "p", adapter_type: str = "duckdb") -> None:
        self.package = package
        self.adapter_type = adapter_type
        self._nodes: dict[str, dict[str, Any]] = {}
        self._sources: dict[str, dict[str, Any]] = {}
        self._unit_tests: dict[str, dict[str, Any]] = {}
        self._exposures: dict[str, dict[str, Any]] = {}
        self._macros: dict[str, dict[str, Any]] = {}
        self._selectors: dict[str, dict[str, Any]] = {}

    def _resolve(self, refs: Iterable[str]) -> list[str]:
        known = {**self._nodes, **self._sources, **self._unit_tests}
        by_name: dict[str, str] = {}
        for uid, raw in known.items():
            by_name.setdefault(raw["name"], uid)
            if raw["resource_type"] == "source":
                by_name.setdefault(f"{raw['source_name']}.{raw['name']}", uid)
        out = []
        for ref in refs:
            if ref in known:
                out.append(ref)
            elif ref in by_name:
                out.append(by_name[ref])
            else:
                out.append(ref)  # a dangling id, as a broken manifest could have
        return out

    def _add(
        self,
        resource_type: str,
        name: str,
        *,
        depends_on: Iterable[str] = (),
        macros: Iterable[str] = (),
        config: Mapping[str, Any] | None = None,
        tags: Iterable[str] = (),
        package: str | None = None,
        path: str | None = None,
        code: str | None = None,
        extra: Mapping[str, Any] | None = None,
        section: str = "nodes",
    ) -> ManifestBuilder:
        pkg = package or self.package
        uid = f"{resource_type}.{pkg}.{name}"
        folder = {"seed": "seeds", "snapshot": "snapshots", "test": "tests"}.get(
            resource_type, "models"
        )
        file = path or f"{folder}/{name}.{'csv' if resource_type == 'seed' else 'sql'}"
        cfg = {"enabled": True, "tags": list(tags), "meta": {}, **(config or {})}
        raw = {
            "unique_id": uid,
            "name": name,
            "resource_type": resource_type,
            "package_name": pkg,
            "original_file_path": file,
            "path": file.split("/", 1)[-1],
            "fqn": [pkg, *file.split("/")[1:-1], name],
            "tags": list(tags),
            "config": cfg,
            "depends_on": {"nodes": self._resolve(depends_on), "macros": list(macros)},
            "raw_code": code if code is not None else f"select 1 as id -- {name}",
            "checksum": {"name": "sha256", "checksum": name},
            "database": "db",
            "schema": "main",
            "alias": name,
            "relation_name": f'"db"."main"."{name}"' if resource_type != "test" else None,
            **(extra or {}),
        }
        target = {
            "nodes": self._nodes,
            "unit_tests": self._unit_tests,
            "exposures": self._exposures,
        }[section]
        target[uid] = raw
        return self

    def model(
        self, name: str, *, depends_on: Iterable[str] = (), materialized: str = "view", **kw: Any
    ) -> ManifestBuilder:
        """Add a model (``model.<package>.<name>``)."""
        config = {"materialized": materialized, **kw.pop("config", {})}
        return self._add("model", name, depends_on=depends_on, config=config, **kw)

    def seed(self, name: str, **kw: Any) -> ManifestBuilder:
        """Add a seed."""
        config = {"materialized": "seed", **kw.pop("config", {})}
        return self._add("seed", name, config=config, code="", **kw)

    def snapshot(self, name: str, *, depends_on: Iterable[str] = (), **kw: Any) -> ManifestBuilder:
        """Add a snapshot."""
        config = {"materialized": "snapshot", **kw.pop("config", {})}
        return self._add("snapshot", name, depends_on=depends_on, config=config, **kw)

    def test(
        self,
        name: str,
        *,
        depends_on: Iterable[str],
        severity: str = "ERROR",
        test_name: str | None = "not_null",
        **kw: Any,
    ) -> ManifestBuilder:
        """Add a data test (generic when ``test_name`` is set, else singular)."""
        config = {"materialized": "test", "severity": severity, **kw.pop("config", {})}
        extra: dict[str, Any] = (
            {"test_metadata": {"name": test_name, "kwargs": {}}} if test_name else {}
        )
        deps = self._resolve(depends_on)
        if deps:
            extra["attached_node"] = deps[0]
        return self._add("test", name, depends_on=deps, config=config, extra=extra, **kw)

    def unit_test(self, name: str, *, model: str, **kw: Any) -> ManifestBuilder:
        """Add a unit test of ``model``."""
        (model_id,) = self._resolve([model])
        model_name = model_id.split(".")[2]
        uid = f"unit_test.{self.package}.{model_name}.{name}"
        self._unit_tests[uid] = {
            "unique_id": uid,
            "name": name,
            "resource_type": "unit_test",
            "package_name": self.package,
            "original_file_path": "models/schema.yml",
            "path": "schema.yml",
            "fqn": [self.package, model_name, name],
            "config": {"enabled": True, "tags": [], "meta": {}},
            "depends_on": {"nodes": [model_id], "macros": []},
            "checksum": name,
            **kw,
        }
        return self

    def source(
        self,
        source_name: str,
        name: str,
        *,
        warn_after: tuple[int, str] | None = None,
        error_after: tuple[int, str] | None = None,
    ) -> ManifestBuilder:
        """Add a source ``source.<package>.<source_name>.<name>`` with optional freshness."""
        uid = f"source.{self.package}.{source_name}.{name}"

        def threshold(t: tuple[int, str] | None) -> dict[str, Any]:
            return {"count": t[0], "period": t[1]} if t else {"count": None, "period": None}

        self._sources[uid] = {
            "unique_id": uid,
            "name": name,
            "source_name": source_name,
            "resource_type": "source",
            "package_name": self.package,
            "original_file_path": "models/sources.yml",
            "path": "models/sources.yml",
            "fqn": [self.package, source_name, name],
            "config": {"enabled": True},
            "relation_name": f'"db"."raw"."{name}"',
            "loaded_at_field": "loaded_at",
            "freshness": {
                "warn_after": threshold(warn_after),
                "error_after": threshold(error_after),
            },
        }
        return self

    def exposure(self, name: str, *, depends_on: Iterable[str]) -> ManifestBuilder:
        """Add an exposure."""
        return self._add("exposure", name, depends_on=depends_on, section="exposures")

    def macro(self, name: str, sql: str, *, depends_on: Iterable[str] = ()) -> ManifestBuilder:
        """Add a macro ``macro.<package>.<name>``."""
        uid = f"macro.{self.package}.{name}"
        self._macros[uid] = {
            "unique_id": uid,
            "name": name,
            "package_name": self.package,
            "original_file_path": f"macros/{name}.sql",
            "macro_sql": sql,
            "depends_on": {"macros": list(depends_on)},
        }
        return self

    def selector(self, name: str, definition: Any, *, default: bool = False) -> ManifestBuilder:
        """Add a YAML selector."""
        self._selectors[name] = {"name": name, "definition": definition, "default": default}
        return self

    def build_dict(self) -> dict[str, Any]:
        """The manifest as JSON-ready data."""
        return {
            "metadata": {
                "dbt_schema_version": _SCHEMA,
                "dbt_version": "1.11.0",
                "project_name": self.package,
                "adapter_type": self.adapter_type,
            },
            "nodes": self._nodes,
            "sources": self._sources,
            "unit_tests": self._unit_tests,
            "exposures": self._exposures,
            "macros": self._macros,
            "selectors": self._selectors,
        }

    def build(self) -> Manifest:
        """The manifest."""
        return parse_manifest(self.build_dict())

    def write(self, path: str | Path) -> Path:
        """Write manifest.json to ``path`` (a file, or a directory to hold manifest.json)."""
        target = Path(path)
        if target.suffix != ".json":
            target.mkdir(parents=True, exist_ok=True)
            target = target / "manifest.json"
        target.write_text(json.dumps(self.build_dict()))
        return target

    def build_file(self, path: str | Path) -> Manifest:
        """Write the manifest under ``path`` and return it as read back from that file."""
        written = self.write(path)
        return parse_manifest(json.loads(written.read_text()), path=written)


class FakeExecutor:
    """A scripted executor that follows the contract without running dbt.

    Args:
        manifest: The manifest it pretends to run (a built one is written to a temp file when
            :meth:`resolve_manifest` needs a path and it has none).
        outcomes: Status per unique_id; others succeed (tests ``pass``).
        fail_times: Fail a node this many times before succeeding (for retry tests).
        delays: Seconds to sleep per unique_id, to shape timing.
        freshness: What :meth:`source_freshness` returns, by source id.
        fingerprints: What :meth:`source_fingerprints` returns, by source id: a
            :class:`~dbt_graph.SourceFingerprint`, or a plain value (a ``content`` fingerprint
            observed at call time). Sources absent here have no usable fingerprint. Change the
            mapping between calls to script new data.

    Attributes:
        requests: Every request received, in order (in this process).
        fingerprint_calls: The source ids of every :meth:`source_fingerprints` call, in order.
    """

    def __init__(
        self,
        manifest: Manifest,
        *,
        outcomes: Mapping[str, NodeStatus] | None = None,
        fail_times: Mapping[str, int] | None = None,
        delays: Mapping[str, float] | None = None,
        freshness: Mapping[str, SourceFreshness] | None = None,
        fingerprints: Mapping[str, SourceFingerprint | str] | None = None,
    ) -> None:
        self.manifest = manifest
        self.outcomes = dict(outcomes or {})
        self.fail_times = dict(fail_times or {})
        self.delays = dict(delays or {})
        self.freshness = dict(freshness or {})
        self.fingerprints = dict(fingerprints or {})
        self.requests: list[ExecutionRequest] = []
        self.fingerprint_calls: list[tuple[str, ...]] = []
        self._attempts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def resolve_manifest(
        self, *, target: str | None = None, vars: Mapping[str, Any] | None = None
    ) -> Path:
        """The manifest's file.

        Raises:
            ValueError: The manifest was built in memory; use :meth:`ManifestBuilder.write`.
        """
        if self.manifest.path is None:
            raise ValueError(
                "FakeExecutor was given a manifest without a file: write it with "
                "ManifestBuilder.write(directory) and pass load_manifest(path)."
            )
        return self.manifest.path

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        """Return the scripted outcome of each requested node, with dbt build's skip rule."""
        with self._lock:
            self.requests.append(request)
        started = datetime.now(UTC)
        failed: set[str] = set()
        results: dict[str, NodeResult] = {}
        parents = self.manifest.parent_map
        by_id = {n.unique_id: n for n in request.nodes}
        # Ordered by ancestry, not just direct edges: requested nodes may be linked through
        # nodes outside the request.
        upstream = {uid: ancestors(parents, uid) for uid in by_id}
        for uid in topological_order(upstream):
            node = by_id[uid]
            if request.command is Command.BUILD and upstream[uid] & failed:
                results[uid] = NodeResult(
                    unique_id=uid,
                    status=NodeStatus.SKIPPED,
                    message="SKIP (upstream failure)",
                )
                failed.add(uid)
                continue
            delay = self.delays.get(uid, 0.0)
            if delay:
                time.sleep(delay)
            status = self._status_for(node)
            begin, end = datetime.now(UTC), datetime.now(UTC)
            failing = status.is_failure
            message = "scripted failure" if failing else ("PASS" if node.is_test else "OK")
            if failing:
                failed.add(uid)
            results[uid] = NodeResult(
                unique_id=uid,
                status=status,
                message=message,
                started_at=begin,
                completed_at=end,
                execution_time=(end - begin).total_seconds() + delay,
                error=ErrorInfo(type="DbtRuntimeError", message=message) if failing else None,
                logs=(LogLine(level="info", message=f"fake {request.command} {uid}", node_id=uid),),
            )
        return ExecutionResult(
            results={u: results[u] for u in request.node_ids},
            started_at=started,
            completed_at=datetime.now(UTC),
            invocation_args=(request.command.value, "--select", *request.node_ids),
        )

    def source_freshness(
        self,
        sources: Sequence[str],
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> Mapping[str, SourceFreshness]:
        """The scripted freshness of the requested sources that have one."""
        return {s: self.freshness[s] for s in sources if s in self.freshness}

    def source_fingerprints(
        self,
        sources: Sequence[str],
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> Mapping[str, SourceFingerprint]:
        """The scripted fingerprint of every requested source (``value=None`` if unscripted).

        Raises:
            KeyError: A unique_id is not a source of the manifest.
        """
        now = datetime.now(UTC)
        out: dict[str, SourceFingerprint] = {}
        with self._lock:
            self.fingerprint_calls.append(tuple(sources))
        for uid in sources:
            node = self.manifest.nodes.get(uid)
            if node is None or node.resource_type is not ResourceType.SOURCE:
                raise KeyError(f"{uid!r} is not a source of the manifest")
            scripted = self.fingerprints.get(uid)
            if isinstance(scripted, SourceFingerprint):
                out[uid] = scripted
                continue
            out[uid] = SourceFingerprint(
                unique_id=uid,
                value=scripted,
                method=FingerprintMethod.CONTENT,
                observed_at=now,
                detail=None if scripted is not None else "no scripted fingerprint",
            )
        return out

    def close(self) -> None:
        """Nothing to release."""

    def _status_for(self, node: Any) -> NodeStatus:
        uid = node.unique_id
        with self._lock:
            attempt = self._attempts.get(uid, 0) + 1
            self._attempts[uid] = attempt
        if attempt <= self.fail_times.get(uid, 0):
            return NodeStatus.ERROR
        if uid in self.outcomes:
            return self.outcomes[uid]
        return NodeStatus.PASS if node.is_test else NodeStatus.SUCCESS
