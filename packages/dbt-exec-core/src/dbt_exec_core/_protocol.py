"""Messages between the executor and its worker processes (pickled over a pipe).

Parent to worker: :class:`Invoke` (run one dbt invocation), :class:`Cancel` (stop the current
invocation's database work now; the parent kills the process right after), :class:`EndSession`
(end a lingering streaming session now), :class:`Stop`.

Worker to parent: :class:`Ready` once dbt is imported, :class:`NodeDone` as each requested node
finishes (so callers can be answered before the whole invocation ends), :class:`InvokeDone` at
the end with dbt's final results, :class:`Cancelled` after a :class:`Cancel`,
:class:`SessionEnded` after an :class:`EndSession`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from dbt_graph import ErrorInfo, LogLine, NodeResult, SourceFreshness

#: Invocation kinds.
RUN = "run"
DEPS = "deps"
PARSE = "parse"
FRESHNESS = "freshness"
#: ``dbt show --inline``: its rows come back in ``InvokeDone.info["rows"]``.
QUERY = "query"
#: Build the manifest object from an existing manifest.json (no parsing), and learn the target.
LOAD = "load"


@dataclass(frozen=True, kw_only=True)
class ManifestRef:
    """Which parsed manifest an invocation runs against.

    Attributes:
        key: The manifest's directory name (target and vars).
        digest: The fingerprint digest; a worker holding another digest reloads.
        pickle_path: The pickled ``dbt.contracts.graph.manifest.Manifest`` to load.
    """

    key: str
    digest: str
    pickle_path: str


@dataclass(frozen=True, kw_only=True)
class Invoke:
    """Run one dbt invocation.

    Attributes:
        batch_id: Identifies the invocation in replies.
        kind: ``run`` (build/run/test/seed/snapshot), ``deps``, ``parse``, ``freshness`` or
            ``load``.
        args: dbt arguments; the worker adds ``--target-path`` (its own directory) except for
            ``parse``, whose ``args`` name the manifest directory. For ``load``, a ``dbt ls``
            that selects nothing, run only to register the target's adapter.
        manifest: The manifest to pass to dbt (``run`` and ``freshness``).
        requested: Node ids whose results the caller wants streamed.
        environ: The caller's environment, applied before invoking dbt.
        duckdb_lock: A lock file to hold for the invocation (DuckDB admits one process).
        pickle_to: For ``parse`` and ``load``: where to pickle the manifest object.
        digest: For ``parse`` and ``load``: the digest to store with the pickle.
        source: For ``load``: the manifest.json to build the manifest object from.
        session: For single-node ``run`` requests that may share a streaming session
            (:mod:`dbt_exec_core._session`): the session's key. Requests with the same key join
            the session running in the worker.
        linger: For session requests: how long the session stays open once it runs dry,
            waiting for the next request (``0``: it ends at once). A lingering session answers
            every finished request immediately, also on DuckDB, whose file it keeps open until
            it ends.
    """

    batch_id: int
    kind: str
    args: tuple[str, ...]
    manifest: ManifestRef | None = None
    requested: frozenset[str] = frozenset()
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    duckdb_lock: str | None = None
    pickle_to: str | None = None
    digest: str | None = None
    source: str | None = None
    session: str | None = None
    linger: float = 0.0


@dataclass(frozen=True)
class EndSession:
    """End the worker's streaming session (closing its DuckDB file), then reply
    :class:`SessionEnded`."""

    token: int


@dataclass(frozen=True)
class SessionEnded:
    """The worker has no streaming session open any more."""

    token: int


@dataclass(frozen=True)
class Cancel:
    """Cancel the database work of ``batch_id`` (queries, connections)."""

    batch_id: int


@dataclass(frozen=True)
class Stop:
    """Finish and exit."""


@dataclass(frozen=True)
class Ready:
    """dbt is imported; the worker takes invocations."""

    pid: int


@dataclass(frozen=True)
class NodeDone:
    """A requested node finished (dbt fired ``NodeFinished``)."""

    batch_id: int
    result: NodeResult


@dataclass(frozen=True, kw_only=True)
class InvokeDone:
    """The invocation ended.

    Attributes:
        batch_id: The invocation.
        success: dbt's own success flag.
        results: dbt's final result for every node it reported.
        logs: Invocation-wide log lines.
        error: Set when dbt raised instead of reporting results (bad flags, compilation error
            in a hook, failed parse...).
        info: Kind-specific data: for ``parse`` and ``load`` the adapter type, DuckDB path and
            profile threads.
        freshness: For ``freshness``: the result per source.
    """

    batch_id: int
    success: bool
    results: Mapping[str, NodeResult] = field(default_factory=dict)
    logs: tuple[LogLine, ...] = ()
    error: ErrorInfo | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
    freshness: Mapping[str, SourceFreshness] = field(default_factory=dict)


@dataclass(frozen=True)
class Cancelled:
    """The worker cancelled the open database connections of ``batch_id``."""

    batch_id: int
