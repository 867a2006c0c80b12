"""The executor contract: what an orchestrator asks of an executor, and what it gets back.

An executor runs dbt for a set of nodes, by whatever means (dbt-core in worker processes, a dbt
Cloud job, a scripted fake). It never raises for a failing node: a failed model is data
(:class:`NodeResult` with status ``error``). It raises only when it cannot run dbt at all
(bad project directory, unreachable service) and then with its package's own error type.

All types here are frozen, picklable value objects, so they cross process pools and Dask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from dbt_graph._nodes import FreshnessThreshold, Node, ResourceType


class Command(StrEnum):
    """The dbt command an invocation runs."""

    BUILD = "build"
    RUN = "run"
    TEST = "test"
    SEED = "seed"
    SNAPSHOT = "snapshot"

    @classmethod
    def for_node(cls, node: Node) -> Command:
        """The command that runs one node alone: ``run`` for models, ``test`` for tests...

        >>> from dbt_graph import Node, ResourceType
        >>> Command.for_node(Node(unique_id="seed.p.s", name="s", resource_type=ResourceType.SEED,
        ...                       package_name="p"))
        <Command.SEED: 'seed'>
        """
        return _COMMAND_FOR_TYPE.get(node.resource_type, cls.RUN)


_COMMAND_FOR_TYPE = {
    ResourceType.MODEL: Command.RUN,
    ResourceType.SEED: Command.SEED,
    ResourceType.SNAPSHOT: Command.SNAPSHOT,
    ResourceType.TEST: Command.TEST,
    ResourceType.UNIT_TEST: Command.TEST,
}


class NodeStatus(StrEnum):
    """A node's status exactly as dbt reports it in run_results.json."""

    SUCCESS = "success"
    ERROR = "error"
    FAIL = "fail"
    WARN = "warn"
    PASS = "pass"
    SKIPPED = "skipped"
    NO_OP = "no-op"
    PARTIAL_SUCCESS = "partial success"
    RUNTIME_ERROR = "runtime error"

    @property
    def is_failure(self) -> bool:
        """Whether this status fails a build (``error``, ``fail``, ``partial success``...).

        ``warn`` is not a failure, and neither is ``skipped``: dbt skips nodes downstream of a
        failure, and the failure is reported on the node that failed.
        """
        return self in _FAILURES


_FAILURES = frozenset(
    {NodeStatus.ERROR, NodeStatus.FAIL, NodeStatus.PARTIAL_SUCCESS, NodeStatus.RUNTIME_ERROR}
)


@dataclass(frozen=True, kw_only=True)
class ErrorInfo:
    """A structured error: never a live exception object.

    Attributes:
        type: The error's class name, e.g. ``DbtRuntimeError`` or ``TimeoutError``.
        message: What went wrong, readable by a user.
    """

    type: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> ErrorInfo:
        """Capture an exception's type name and message."""
        return cls(type=type(exc).__name__, message=str(exc) or type(exc).__name__)


@dataclass(frozen=True, kw_only=True)
class LogLine:
    """One log line dbt emitted.

    Attributes:
        level: ``debug``, ``info``, ``warning`` or ``error``.
        message: The text.
        node_id: The node it concerns, or ``None`` for invocation-wide lines.
        timestamp: ISO-8601 time, when known.
    """

    level: str
    message: str
    node_id: str | None = None
    timestamp: str | None = None


@dataclass(frozen=True, kw_only=True)
class NodeResult:
    """What happened to one node in one invocation.

    Attributes:
        unique_id: The node.
        status: dbt's own status (tests: ``pass``/``fail``/``warn``/``error``).
        message: dbt's message (``OK``, ``Got 3 results, configured to fail if != 0``...).
        started_at: When dbt started executing it (UTC), if it did.
        completed_at: When it finished (UTC), if it did.
        execution_time: dbt's own seconds for the node.
        adapter_response: The adapter's response (``rows_affected``, ``code``...).
        failures: For tests, the number of failing rows.
        compiled_code: The SQL dbt compiled for this run, when known.
        relation_name: The relation it wrote, when known.
        error: A structured error for failed statuses.
        logs: The log lines dbt emitted for this node.
    """

    unique_id: str
    status: NodeStatus
    message: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    execution_time: float = 0.0
    adapter_response: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
    failures: int | None = None
    compiled_code: str | None = field(default=None, compare=False)
    relation_name: str | None = None
    error: ErrorInfo | None = None
    logs: tuple[LogLine, ...] = field(default=(), compare=False)

    @property
    def is_failure(self) -> bool:
        """Whether the node failed (see :attr:`NodeStatus.is_failure`)."""
        return self.status.is_failure


@dataclass(frozen=True, kw_only=True)
class ExecutionRequest:
    """One dbt invocation over a set of nodes.

    Attributes:
        command: The dbt command (``build`` for a mixed set, ``run`` for one model...).
        nodes: The nodes to execute; the executor selects exactly these and no others.
        full_refresh: Pass ``--full-refresh`` (only where dbt accepts it).
        target: The dbt target, or ``None`` for the profile's default.
        vars: dbt ``--vars``, or ``None``.
        extra_args: Further CLI arguments, already validated by the caller.
        timeout_seconds: Stop the work after this long; the nodes still running are reported as
            ``error`` with a timeout message. ``None`` for no limit.
    """

    command: Command
    nodes: tuple[Node, ...]
    full_refresh: bool = False
    target: str | None = None
    vars: Mapping[str, Any] | None = field(default=None, compare=False, hash=False)
    extra_args: tuple[str, ...] = ()
    timeout_seconds: float | None = None

    @property
    def node_ids(self) -> tuple[str, ...]:
        """The unique_ids of :attr:`nodes`, in order."""
        return tuple(n.unique_id for n in self.nodes)


@dataclass(frozen=True, kw_only=True)
class ExecutionResult:
    """The outcome of one :class:`ExecutionRequest`.

    Attributes:
        results: One :class:`NodeResult` for every requested node (an executor that did not hear
            back about a node reports it as ``error``, never as success).
        error: Set when the invocation as a whole failed (dbt crashed, timed out, the service
            refused the job); the per-node results then say which nodes it hit.
        started_at: When the invocation started (UTC).
        completed_at: When it finished (UTC).
        logs: Invocation-wide log lines (not tied to a node).
        invocation_args: The dbt arguments that were run, without secrets, for display.
    """

    results: Mapping[str, NodeResult]
    started_at: datetime
    completed_at: datetime
    error: ErrorInfo | None = None
    logs: tuple[LogLine, ...] = field(default=(), compare=False)
    invocation_args: tuple[str, ...] = ()

    @property
    def success(self) -> bool:
        """True when the invocation ran and no node failed."""
        return self.error is None and not any(r.is_failure for r in self.results.values())


class FreshnessStatus(StrEnum):
    """A source's freshness status as ``dbt source freshness`` reports it."""

    PASS = "pass"
    WARN = "warn"
    ERROR = "error"
    RUNTIME_ERROR = "runtime error"

    @property
    def is_stale(self) -> bool:
        """``error`` and ``runtime error`` count as stale; ``warn`` does not."""
        return self in (FreshnessStatus.ERROR, FreshnessStatus.RUNTIME_ERROR)


@dataclass(frozen=True, kw_only=True)
class SourceFreshness:
    """One source's freshness.

    Attributes:
        unique_id: The source, e.g. ``source.shop.shop_app.orders``.
        status: Its status.
        max_loaded_at: The newest ``loaded_at_field`` value, when known.
        snapshotted_at: When dbt looked (the reference for :attr:`age_seconds`).
        age_seconds: ``snapshotted_at - max_loaded_at`` in seconds.
        warn_after: The warn threshold that applied.
        error_after: The error threshold that applied.
        message: dbt's error message for ``runtime error``.
    """

    unique_id: str
    status: FreshnessStatus
    max_loaded_at: datetime | None = None
    snapshotted_at: datetime | None = None
    age_seconds: float | None = None
    warn_after: FreshnessThreshold | None = None
    error_after: FreshnessThreshold | None = None
    message: str | None = None


@runtime_checkable
class Executor(Protocol):
    """What every executor implements; the orchestrator calls nothing else.

    Implementations: ``dbt_exec_core.DbtCoreExecutor``, ``dbt_exec_cloud.DbtCloudExecutor`` and
    :class:`dbt_graph.testing.FakeExecutor`. Executors must be safe to call from several threads
    at once and must pickle (without live connections) so task runners can ship them.

    Optional methods, used when an executor has them:

    * ``run_scope(concurrency=N)``: a context manager the orchestrator enters around the
      requests of one run, ``N`` being the most requests it keeps in flight at once, so an
      executor can keep per-run resources warm between requests, size them for ``N``, and
      release them on exit (``DbtCoreExecutor`` keeps its streaming dbt sessions open, each
      running up to ``N`` nodes at once; ``DbtCloudExecutor`` sweeps its leftover jobs).
    * ``validate_extra_args(args: Sequence[str]) -> tuple[str, ...]``: check the extra dbt
      arguments of a run before anything runs, and return them as they should be passed (as
      :attr:`ExecutionRequest.extra_args`). It raises a ``ValueError`` subclass whose message
      says what to use instead. Each executor knows which flags it can pass on (a dbt Cloud
      job is not a local dbt). Without it, the orchestrator applies the guide's table,
      :func:`dbt_graph.check_extra_args`.
    * ``source_fingerprints(sources, *, target, vars)``: the data fingerprints behind
      data-aware caching (see :class:`~dbt_graph.SourceFingerprinter`).
    """

    def resolve_manifest(
        self, *, target: str | None = None, vars: Mapping[str, Any] | None = None
    ) -> Path:
        """Return the path of a manifest.json that matches the project, target and vars.

        Creates or refreshes it when needed (``dbt deps`` + ``dbt parse``, or a dbt Cloud
        artifact). Raises the executor's own error when that fails.
        """
        ...

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        """Run dbt for the request's nodes and return one result per node.

        Never raises because a node failed; failures are in the result.
        """
        ...

    def source_freshness(
        self,
        sources: Sequence[str],
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> Mapping[str, SourceFreshness]:
        """Check the freshness of the given sources (unique_ids) and return it by unique_id."""
        ...

    def close(self) -> None:
        """Release processes, connections and clients. The executor may be used again after."""
        ...
