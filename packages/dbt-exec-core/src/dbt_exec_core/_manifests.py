"""Parsed manifests on disk, one directory per target and vars, each with its fingerprint.

Layout, under the project's target directory::

    <target_path>/dbt-exec-core/<target>-<vars hash>/
        manifest.json           written by ``dbt parse``
        partial_parse.msgpack   dbt's own, so re-parsing after a change stays quick
        manifest.pickle         the parsed Manifest object, loaded by worker processes
        fingerprint.json        what it was parsed from (see :func:`_project.fingerprint`)

A manifest is reused only while its fingerprint still matches, so a manifest parsed for another
target, other vars, older files or another dbt version is never used. A pre-built manifest.json
(the executor's ``manifest_path``) is never parsed again: its directory,
``prebuilt-<path hash>-<target>-<vars hash>``, holds only the manifest object built from it and
the fingerprint (which then includes the file's own digest).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dbt_graph import Manifest, load_manifest, node_selector

from dbt_exec_core._project import canonical_vars
from dbt_exec_core._protocol import ManifestRef

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
RECORD_FILE = "fingerprint.json"


def manifest_dir(
    target_path: Path,
    target: str | None,
    vars: Mapping[str, Any] | None,
    *,
    prebuilt: Path | None = None,
) -> Path:
    """The directory holding the manifest for ``target`` and ``vars``.

    With ``prebuilt`` (a manifest.json the caller built), the directory holds only what the
    executor derives from that file for the target and vars: the manifest object and the record.

    >>> manifest_dir(Path("/p/target"), "prod", None).name
    'prod-44136fa355'
    >>> manifest_dir(Path("/p/target"), None, None, prebuilt=Path("/ci/manifest.json")).name
    'prebuilt-cce70de32d-default-44136fa355'
    """
    vars_hash = hashlib.sha256(canonical_vars(vars).encode()).hexdigest()[:10]
    name = f"{_UNSAFE.sub('_', target) if target else 'default'}-{vars_hash}"
    if prebuilt is not None:
        name = f"prebuilt-{hashlib.sha256(str(prebuilt).encode()).hexdigest()[:10]}-{name}"
    return target_path / "dbt-exec-core" / name


def read_record(directory: Path) -> dict[str, Any] | None:
    """The stored fingerprint record, or ``None`` when absent or unreadable."""
    try:
        return json.loads((directory / RECORD_FILE).read_text())
    except (OSError, ValueError):
        return None


def write_record(directory: Path, record: Mapping[str, Any]) -> None:
    """Write the fingerprint record atomically."""
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".fingerprint-", suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.replace(tmp, directory / RECORD_FILE)


@dataclass(eq=False, kw_only=True)
class ResolvedManifest:
    """A manifest that matches a target and vars, with what the executor derives from it.

    Attributes:
        directory: Its directory.
        manifest_path: Its manifest.json (in ``directory``, unless it was pre-built).
        digest: Its fingerprint digest.
        target: The target it was parsed for (``None``: the profile's default).
        vars: Its vars.
        adapter_type: ``duckdb``, ``postgres``...
        duckdb_path: For DuckDB, the absolute database file (``None`` in memory).
        profile_threads: The target's ``threads``.
    """

    directory: Path
    manifest_path: Path
    digest: str
    target: str | None
    vars: Mapping[str, Any]
    adapter_type: str | None
    duckdb_path: str | None
    profile_threads: int | None
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _graph: Manifest | None = field(default=None, repr=False)
    _selectors: dict[str, str] = field(default_factory=dict, repr=False)
    _ancestors: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)
    _descendants: dict[str, frozenset[str]] = field(default_factory=dict, repr=False)

    @classmethod
    def from_record(
        cls, directory: Path, record: Mapping[str, Any], *, prebuilt: Path | None = None
    ) -> ResolvedManifest:
        """Rebuild from a stored record."""
        fingerprint = record["fingerprint"]
        return cls(
            directory=directory,
            manifest_path=prebuilt or directory / "manifest.json",
            digest=record["digest"],
            target=fingerprint["target"],
            vars=json.loads(fingerprint["vars"]),
            adapter_type=record.get("adapter_type"),
            duckdb_path=record.get("duckdb_path"),
            profile_threads=record.get("threads"),
        )

    @property
    def ref(self) -> ManifestRef:
        """How workers find the parsed manifest."""
        return ManifestRef(
            key=self.directory.name,
            digest=self.digest,
            pickle_path=str(self.directory / "manifest.pickle"),
        )

    @property
    def graph(self) -> Manifest:
        """The manifest as dbt-graph reads it (loaded on first use)."""
        with self._lock:
            if self._graph is None:
                self._graph = load_manifest(self.manifest_path)
            return self._graph

    def selector(self, unique_id: str) -> str:
        """The ``--select`` value that selects exactly this node.

        Raises:
            KeyError: The node is not in this manifest.
            dbt_graph.SelectionError: No selector singles the node out.
        """
        found = self._selectors.get(unique_id)
        if found is None:
            found = self._selectors[unique_id] = node_selector(unique_id, self.graph)
        return found

    def related(self, unique_ids: Iterable[str]) -> frozenset[str]:
        """Every ancestor and descendant of the given nodes (not the nodes themselves)."""
        graph = self.graph
        out: set[str] = set()
        for uid in unique_ids:
            out |= _closure(uid, graph.parent_map, self._ancestors)
            out |= _closure(uid, graph.child_map, self._descendants)
        return frozenset(out)


def _closure(
    start: str, edges: Mapping[str, tuple[str, ...]], memo: dict[str, frozenset[str]]
) -> frozenset[str]:
    """Nodes reachable from ``start`` along ``edges``, memoised per node (iterative DFS)."""
    if start in memo:
        return memo[start]
    stack: list[tuple[str, bool]] = [(start, False)]
    while stack:
        uid, expanded = stack.pop()
        if uid in memo:
            continue
        nexts = edges.get(uid, ())
        if not expanded:
            stack.append((uid, True))
            stack.extend((n, False) for n in nexts if n not in memo)
            continue
        reach: set[str] = set()
        for n in nexts:
            reach.add(n)
            reach |= memo.get(n, frozenset())
        memo[uid] = frozenset(reach)
    return memo[start]
