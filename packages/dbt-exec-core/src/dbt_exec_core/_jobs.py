"""What the scheduler tracks per request: the coalescing lane, the job, and its answer."""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dbt_graph import ErrorInfo, ExecutionResult, LogLine, NodeResult, NodeStatus

from dbt_exec_core._protocol import ManifestRef

NOT_REPORTED = "dbt did not report a result for this node"


@dataclass(frozen=True, kw_only=True)
class Lane:
    """What requests must share to be coalesced into one dbt invocation."""

    manifest: ManifestRef
    target: str | None
    vars_json: str
    extra_args: tuple[str, ...]
    env_digest: str
    duckdb_path: str | None
    profile_threads: int | None


@dataclass(eq=False, kw_only=True)
class Job:
    """One caller's request, as the scheduler tracks it.

    Attributes:
        kind: ``run``, ``deps``, ``parse``, ``freshness`` or ``load``.
        lane: For ``run`` jobs, the coalescing lane.
        command: For ``run`` jobs, the dbt command.
        node_ids: The requested nodes, in order.
        selectors: ``--select`` value per requested node dbt can address.
        full_refresh: ``True``/``False``, or ``None`` when the command ignores it.
        timeout: Seconds from dispatch, or ``None``.
        environ: The caller's environment.
        args: For jobs other than ``run``: the complete dbt arguments.
        manifest: For jobs other than ``run``: the manifest to invoke with, if any.
        duckdb_path: The DuckDB file the job touches, if any.
        pickle_to / digest: For ``parse`` and ``load`` jobs.
        source: For ``load`` jobs: the manifest.json to load.
        related: Every ancestor and descendant of the requested nodes, to check independence.
        own_command: The job must run with its own command (``dbt build`` runs a unit test only
            with its model, so a ``test`` request for a unit test is never merged into a
            ``build``).
        session: For single-node requests that may share a streaming session, its key
            (requests with the same key join one running ``dbt build``; see
            :mod:`dbt_exec_core._session`).
        also_joins: Other session keys the job may join (a test or snapshot, which
            ``--full-refresh`` does not affect, joins a full-refresh session too).
    """

    kind: str
    node_ids: tuple[str, ...] = ()
    lane: Lane | None = None
    command: str | None = None
    selectors: Mapping[str, str] = field(default_factory=dict)
    full_refresh: bool | None = None
    timeout: float | None = None
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    args: tuple[str, ...] = ()
    manifest: ManifestRef | None = None
    duckdb_path: str | None = None
    pickle_to: str | None = None
    digest: str | None = None
    source: str | None = None
    related: frozenset[str] = frozenset()
    own_command: bool = False
    session: str | None = None
    also_joins: tuple[str, ...] = ()
    future: Future[Any] = field(default_factory=Future)
    # state, guarded by the scheduler's lock
    results: dict[str, NodeResult] = field(default_factory=dict)
    remaining: set[str] = field(default_factory=set)
    started_at: datetime | None = None
    submitted: float = 0.0
    deadline: float | None = None
    invocation_args: tuple[str, ...] = ()


def timeout_error(timeout: float) -> ErrorInfo:
    """The error of a request stopped by its timeout."""
    return ErrorInfo(
        type="TimeoutError",
        message=f"Timed out after {timeout:g}s: dbt was stopped before this node finished (its "
        "worker process was killed and its open database queries cancelled).",
    )


def missing_result(unique_id: str, error: ErrorInfo | None) -> NodeResult:
    """The ``error`` result of a requested node dbt never reported (never a success)."""
    if error is not None and error.type == "TimeoutError":
        message = error.message
    elif error is not None:
        message = f"{NOT_REPORTED}: {error.message}"
    else:
        message = NOT_REPORTED
    return NodeResult(
        unique_id=unique_id,
        status=NodeStatus.ERROR,
        message=message,
        error=ErrorInfo(type=error.type if error else "NotReported", message=message),
    )


def lost_worker_error(index: int, pid: int | None, detail: str) -> ErrorInfo:
    """The error of a request whose worker process died under it (killed, crashed)."""
    who = f"dbt worker {index}" + (f" (pid {pid})" if pid is not None else "")
    why = detail or "killed or crashed, e.g. by the out-of-memory killer"
    return ErrorInfo(
        type="WorkerError",
        message=f"The {who} exited unexpectedly ({why}) before dbt reported this node. The "
        "executor replaced the worker; run the node again (Prefect retries do this).",
    )


def complete(job: Job, *, error: ErrorInfo | None, logs: tuple[LogLine, ...]) -> None:
    """Answer a ``run`` job: every requested node dbt did not report becomes an ``error``."""
    if job.future.done():
        return
    for uid in job.remaining:
        job.results[uid] = missing_result(uid, error)
    job.remaining = set()
    completed = datetime.now(UTC)
    job.future.set_result(
        ExecutionResult(
            results={uid: job.results[uid] for uid in job.node_ids},
            started_at=job.started_at or completed,
            completed_at=completed,
            error=error,
            logs=tuple(logs),
            invocation_args=job.invocation_args,
        )
    )
