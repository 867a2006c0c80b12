"""What happened to each node of a run, typed: :class:`NodeOutcome` and :class:`OutcomeStatus`.

Everything inside a run (scheduling, cache, assets, artifacts, run_results.json) speaks these;
``run_build()`` hands out :meth:`NodeOutcome.to_dict`, the guide's "Result format", and the
cache stores that same dict.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from dbt_graph import ExecutionResult, NodeResult, NodeStatus


class OutcomeStatus(StrEnum):
    """A node's status in ``run_build()``'s results (dbt's own is ``dbt_status``)."""

    SUCCESS = "success"  # dbt ran it and it passed (warnings included)
    CACHED = "cached"  # served from the cache; dbt did not run it
    ERROR = "error"  # it failed, or could not be run at all
    SKIPPED = "skipped"  # not run: upstream failure, stale source, or dbt skipped it


@dataclass(frozen=True, kw_only=True)
class Timing:
    """When a node ran (UTC).

    Attributes:
        started_at: When it started.
        completed_at: When it finished.
        duration_seconds: The wall time between the two.
        execution_time: dbt's own seconds for the node, when dbt reported them.
    """

    started_at: datetime
    completed_at: datetime
    duration_seconds: float
    execution_time: float | None = None

    @classmethod
    def between(
        cls, started: datetime, completed: datetime, execution_time: float | None = None
    ) -> Timing:
        """The timing of a node that ran from ``started`` to ``completed``."""
        seconds = round((completed - started).total_seconds(), 6)
        return cls(
            started_at=started,
            completed_at=completed,
            duration_seconds=seconds,
            execution_time=execution_time,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "started_at": self.started_at.isoformat(),
            "completed_at": self.completed_at.isoformat(),
            "duration_seconds": self.duration_seconds,
        }
        if self.execution_time is not None:
            out["execution_time"] = self.execution_time
        return out


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """The dbt command that ran a node, and its arguments (without secrets)."""

    command: str
    args: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Failure:
    """Why a node failed.

    Attributes:
        message: What went wrong.
        type: The error's type (``DbtError``, ``TimeoutError``...).
        invocation_error: The failure of the dbt invocation as a whole, when there was one.
    """

    message: str
    type: str
    invocation_error: str | None = None


@dataclass(frozen=True, kw_only=True)
class CacheHit:
    """Where a cached outcome came from, and what serving it saved.

    Attributes:
        stored_at: When the run that stored it finished (ISO 8601).
        key: The cache key it was stored under.
        execution_time: dbt's own seconds for the node in that run: the dbt time this hit
            saved (``None`` when unknown).
        deferred: Why it was served although its inputs have new data (data-aware caching:
            the model's ``freshness.build_after`` waits), or ``None`` for an unchanged node.
    """

    stored_at: str
    key: str
    execution_time: float | None = None
    deferred: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result dict's ``cache`` entry: only the keys that apply.

        >>> CacheHit(stored_at="2026-01-01T00:00:00+00:00", key="k", execution_time=1.5).to_dict()
        {'stored_at': '2026-01-01T00:00:00+00:00', 'key': 'k', 'execution_time': 1.5}
        """
        out: dict[str, Any] = {"stored_at": self.stored_at, "key": self.key}
        if self.execution_time is not None:
            out["execution_time"] = self.execution_time
        if self.deferred is not None:
            out["deferred"] = self.deferred
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CacheHit:
        """Read :meth:`to_dict` output back (keys it does not know are ignored)."""
        seconds = data.get("execution_time")
        return cls(
            stored_at=data["stored_at"],
            key=data["key"],
            execution_time=float(seconds) if seconds is not None else None,
            deferred=data.get("deferred"),
        )


@dataclass(frozen=True, kw_only=True)
class NodeOutcome:
    """One node's outcome.

    Attributes:
        status: See :class:`OutcomeStatus`.
        dbt_status: dbt's own status (``success``, ``pass``, ``warn``, ``fail``...), when dbt
            ran or skipped the node.
        message: dbt's message.
        reason: Why it was skipped.
        failed_upstream: For skips, the failed nodes (not the skipped ones) above it.
        timing: When it ran, for nodes that ran or were served from cache.
        invocation: The dbt command that ran it.
        adapter_response: The adapter's response.
        failures: For tests, the number of failing rows.
        error: Why it failed.
        cache: For cached outcomes, where they came from.
        limit_wait_seconds: How long the task waited for its Prefect concurrency limits. Not
            part of the result dict: the duration history (``_history``) leaves it out of the
            time the node held its slot.
    """

    status: OutcomeStatus
    dbt_status: str | None = None
    message: str | None = None
    reason: str | None = None
    failed_upstream: tuple[str, ...] = ()
    timing: Timing | None = None
    invocation: Invocation | None = None
    adapter_response: Mapping[str, Any] = field(default_factory=dict, compare=False)
    failures: int | None = None
    error: Failure | None = None
    cache: CacheHit | None = None
    limit_wait_seconds: float = field(default=0.0, compare=False)

    def to_dict(self, *, shared_args: dict[int, list[str]] | None = None) -> dict[str, Any]:
        """The guide's result dict: only the keys that apply, as JSON-ready values.

        ``message`` is there for every node that ran or was served from cache (even when dbt
        gave none), and for no other.

        Args:
            shared_args: Invocation ``args`` lists already made, by ``id`` of the args tuple:
                the dicts of outcomes that share an args tuple then share one list (see
                :func:`results_of`).

        >>> NodeOutcome(status=OutcomeStatus.SKIPPED, reason="upstream failure",
        ...             failed_upstream=("model.p.a",)).to_dict()
        {'status': 'skipped', 'reason': 'upstream failure', 'failed_upstream': ['model.p.a']}
        """
        out: dict[str, Any] = {"status": self.status.value}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.failed_upstream:
            out["failed_upstream"] = list(self.failed_upstream)
        if self.dbt_status is not None:
            out["dbt_status"] = self.dbt_status
        if self.timing is not None:
            out["message"] = self.message
            out["timing"] = self.timing.to_dict()
        if self.invocation is not None:
            args = self.invocation.args
            listed = shared_args.get(id(args)) if shared_args is not None else None
            if listed is None:
                listed = list(args)
                if shared_args is not None:
                    shared_args[id(args)] = listed
            out["invocation"] = {"command": self.invocation.command, "args": listed}
        if self.adapter_response:
            out["adapter_response"] = dict(self.adapter_response)
        if self.failures is not None:
            out["failures"] = self.failures
        if self.error is not None:
            out["error"] = {"message": self.error.message, "type": self.error.type}
            if self.error.invocation_error is not None:
                out["error"]["invocation_error"] = self.error.invocation_error
        if self.cache is not None:
            out["cache"] = self.cache.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> NodeOutcome:
        """Read a result dict back (as stored by the cache, or returned by ``run_build()``).

        Keys it does not know are ignored.

        >>> NodeOutcome.from_dict({"status": "error", "error": {"message": "boom"}}).error
        Failure(message='boom', type='RuntimeError', invocation_error=None)
        """
        timing, invocation = data.get("timing"), data.get("invocation")
        error, cache = data.get("error"), data.get("cache")
        return cls(
            status=OutcomeStatus(data["status"]),
            dbt_status=data.get("dbt_status"),
            message=data.get("message"),
            reason=data.get("reason"),
            failed_upstream=tuple(data.get("failed_upstream") or ()),
            timing=_timing(timing) if timing else None,
            invocation=Invocation(
                command=invocation["command"], args=tuple(invocation.get("args") or ())
            )
            if invocation
            else None,
            adapter_response=dict(data.get("adapter_response") or {}),
            failures=data.get("failures"),
            error=Failure(
                message=error.get("message") or "unknown error",
                type=error.get("type") or "RuntimeError",
                invocation_error=error.get("invocation_error"),
            )
            if error
            else None,
            cache=CacheHit.from_dict(cache) if cache else None,
        )


def results_of(outcomes: Mapping[str, NodeOutcome]) -> dict[str, dict[str, Any]]:
    """``run_build()``'s results: each outcome's :meth:`~NodeOutcome.to_dict`, by unique_id.

    The nodes of one dbt invocation share one ``args`` list: a PER_WAVE invocation's
    ``--select`` names every node of its wave, so a list per node would hold the square of the
    wave's size in entries (millions at 2,000 models).

    >>> shared = Invocation(command="build", args=("--select", "a", "b"))
    >>> results = results_of({
    ...     "model.p.a": NodeOutcome(status=OutcomeStatus.SUCCESS, invocation=shared),
    ...     "model.p.b": NodeOutcome(status=OutcomeStatus.SUCCESS, invocation=shared),
    ... })
    >>> results["model.p.a"]["invocation"]["args"] is results["model.p.b"]["invocation"]["args"]
    True
    """
    # Keyed by id(): the outcomes keep every args tuple alive meanwhile, and hashing a
    # wave-long tuple for every node would cost as much as copying it.
    shared: dict[int, list[str]] = {}
    return {uid: outcome.to_dict(shared_args=shared) for uid, outcome in outcomes.items()}


def _timing(data: Mapping[str, Any]) -> Timing:
    started = datetime.fromisoformat(data["started_at"])
    completed = datetime.fromisoformat(data["completed_at"])
    seconds = data.get("duration_seconds")
    if seconds is None:
        return Timing.between(started, completed, data.get("execution_time"))
    return Timing(
        started_at=started,
        completed_at=completed,
        duration_seconds=seconds,
        execution_time=data.get("execution_time"),
    )


def from_node_result(node: NodeResult, execution: ExecutionResult, *, command: str) -> NodeOutcome:
    """The outcome of a node dbt ran (or skipped) in ``execution``."""
    if node.status is NodeStatus.SKIPPED:
        # dbt skipped it inside the invocation (e.g. downstream of a failure in the same build).
        return NodeOutcome(
            status=OutcomeStatus.SKIPPED,
            reason=node.message or "skipped by dbt",
            dbt_status=node.status.value,
        )
    started = node.started_at or execution.started_at
    completed = node.completed_at or execution.completed_at
    failure = None
    if node.is_failure:
        failure = Failure(
            message=(node.error.message if node.error else None) or node.message or "unknown error",
            type=node.error.type if node.error else "DbtError",
        )
    return NodeOutcome(
        status=OutcomeStatus.ERROR if node.is_failure else OutcomeStatus.SUCCESS,
        dbt_status=node.status.value,
        message=node.message,
        timing=Timing.between(started, completed, node.execution_time),
        invocation=Invocation(command=command, args=execution.invocation_args),
        adapter_response=dict(node.adapter_response),
        failures=node.failures,
        error=failure,
    )


def skipped_upstream(failed_upstream: Iterable[str]) -> NodeOutcome:
    """A node not run because nodes it depends on failed."""
    return NodeOutcome(
        status=OutcomeStatus.SKIPPED,
        reason="upstream failure",
        failed_upstream=tuple(sorted(failed_upstream)),
    )


def stale_source_skip(sources: Iterable[str]) -> NodeOutcome:
    """A node left out because stale sources feed it."""
    return NodeOutcome(status=OutcomeStatus.SKIPPED, reason=f"stale source: {', '.join(sources)}")


def infrastructure_error(exc_type: str, message: str) -> NodeOutcome:
    """A node the executor could not run at all (it crashed, timed out, was cancelled)."""
    failure = Failure(message=message or "unknown error", type=exc_type)
    return NodeOutcome(status=OutcomeStatus.ERROR, error=failure)


def root_failures(
    uid: str,
    dependencies: Mapping[str, tuple[str, ...]],
    outcomes: Mapping[str, NodeOutcome],
    roots: Mapping[str, frozenset[str]],
) -> frozenset[str]:
    """The failed nodes (not the skipped ones) upstream of ``uid``, given its parents' roots."""
    found: set[str] = set()
    for parent in dependencies.get(uid, ()):
        outcome = outcomes.get(parent)
        if outcome is not None and outcome.status is OutcomeStatus.ERROR:
            found.add(parent)
        found |= roots.get(parent, frozenset())
    return frozenset(found)
