"""Batches: which pending requests share one dbt invocation, the invocation, and its answers.

A single-node request may join a running streaming session; any other ``run`` request, once its
coalescing window has passed, takes every pending request of its :class:`~dbt_exec_core._jobs.Lane`
whose nodes are independent of its own (no node of one is an ancestor or descendant of a node of
another), so dbt's skip-downstream-of-failure rule only ever acts within one caller's nodes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from dbt_graph import NodeResult

from dbt_exec_core._jobs import Job, Lane, complete
from dbt_exec_core._protocol import RUN, Invoke, InvokeDone

logger = logging.getLogger("dbt_exec_core")


class RunArgsBuilder(Protocol):
    """Builds a ``run`` batch's dbt arguments (:class:`dbt_exec_core._invocation.RunArgs`)."""

    def __call__(
        self,
        command: str,
        selectors: tuple[str, ...],
        lane: Lane,
        *,
        full_refresh: bool,
        requests: int,
        session: bool,
        in_flight: int | None,
    ) -> tuple[str, ...]:
        """Args: the dbt command, one selector per node, the lane, ``--full-refresh``, how many
        requests were coalesced, whether it opens a streaming session, and (for a session) how
        many requests callers keep in flight at once, if known."""
        ...


@dataclass(eq=False)
class Batch:
    """One invocation in a worker (or one request inside its streaming session).

    Attributes:
        id: The invocation's id in messages.
        worker: The scheduler's record of the worker running it.
        jobs: The requests it answers (emptied once answered or handed back).
        args: The dbt arguments.
        early: Answer each request once its last node is reported (not at the end).
        requested: Every node the batch asked dbt for.
        started: ``time.monotonic()`` when it was sent.
        timed_out: Requests stopped by their timeout, answered when the worker is gone.
        cancelled: Set when the worker confirmed cancelling the batch's queries.
    """

    id: int
    worker: Any
    jobs: list[Job]
    args: tuple[str, ...]
    early: bool
    requested: frozenset[str] = frozenset()
    started: float = 0.0
    timed_out: list[Job] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def node_done(self, result: NodeResult) -> None:
        """dbt reported a node: record it; with ``early``, answer a request it completes."""
        for job in list(self.jobs):
            if result.unique_id in job.remaining:
                job.results[result.unique_id] = result
                job.remaining.discard(result.unique_id)
                if self.early and not job.remaining:
                    self.jobs.remove(job)
                    complete(job, error=None, logs=())

    def invocation_done(self, done: InvokeDone) -> None:
        """The invocation ended: answer every request still open."""
        extra = sorted(set(done.results) - self.requested)
        if extra and self.jobs and self.jobs[0].kind == RUN:
            logger.warning(
                "dbt ran nodes that were not requested (the selectors matched more than asked): %s",
                ", ".join(extra),
            )
        for job in self.jobs:
            if job.kind != RUN:
                job.future.set_result(done)
                continue
            for uid in list(job.remaining):
                if uid in done.results:
                    job.results[uid] = done.results[uid]
                    job.remaining.discard(uid)
            complete(job, error=done.error, logs=done.logs)
        self.jobs = []


def coalesce(first: Job, pending: Iterable[Job]) -> list[Job]:
    """``first`` and the pending ``run`` requests that can share its invocation."""
    jobs = [first]
    related = set(first.related)
    nodes = set(first.remaining)
    full_refresh = first.full_refresh
    commands = {first.command}
    own_command = first.own_command
    for other in pending:
        if other is first or not _compatible(first, other, commands, own_command, full_refresh):
            continue
        if related & other.remaining or nodes & other.related:
            continue
        jobs.append(other)
        commands.add(other.command)
        own_command = own_command or other.own_command
        related |= other.related
        nodes |= other.remaining
        if full_refresh is None:
            full_refresh = other.full_refresh
    return jobs


def _compatible(
    first: Job, other: Job, commands: set[str | None], own_command: bool, full_refresh: bool | None
) -> bool:
    if other.kind != RUN or other.lane != first.lane or other.session is not None:
        return False
    if (own_command or other.own_command) and commands != {other.command}:
        return False
    if full_refresh is not None and other.full_refresh not in (None, full_refresh):
        return False
    # `dbt build` skips a unit test whose model is not selected with it, so test jobs (unit
    # tests among them) only join other test jobs.
    return "test" not in (first.command, other.command) or other.command == first.command


def blocked_in_session(job: Job, batches: Iterable[Batch]) -> bool:
    """Whether ``job`` must wait for a node in flight in a session (its own node, an ancestor or
    a descendant) before it can join."""
    in_flight: set[str] = set()
    related: set[str] = set()
    for batch in batches:
        in_flight |= batch.requested
        for other in batch.jobs:
            related |= other.related
    return bool(job.remaining & in_flight or job.related & in_flight or job.remaining & related)


@dataclass(frozen=True, kw_only=True)
class Invocation:
    """What a batch sends to its worker, and what the scheduler keeps of it."""

    invoke: Invoke
    full_refresh: bool
    duckdb_path: str | None


def invocation(
    jobs: list[Job],
    *,
    batch_id: int,
    session: str | None,
    session_full_refresh: bool,
    run_args: RunArgsBuilder,
    linger: float,
    in_flight: int | None,
) -> Invocation:
    """The :class:`Invoke` for ``jobs`` (one invocation, or one request joining ``session``).

    Args:
        jobs: The batch's requests (one, unless coalesced).
        batch_id: The invocation's id.
        session: The streaming session it opens or joins, if any.
        session_full_refresh: Whether that session, when already running, has ``--full-refresh``.
        run_args: Builds the dbt arguments of a ``run`` batch.
        linger: How long a session lingers once dry.
        in_flight: How many requests callers keep in flight at once, if known.
    """
    first = jobs[0]
    if first.kind != RUN:
        return _other(first, batch_id)
    assert first.lane is not None
    commands = {j.command or "build" for j in jobs}
    command = commands.pop() if len(commands) == 1 and session is None else "build"
    selectors = tuple(
        dict.fromkeys(j.selectors[uid] for j in jobs for uid in j.node_ids if uid in j.remaining)
    )
    full_refresh = any(j.full_refresh for j in jobs) or session_full_refresh
    args = run_args(
        command,
        selectors,
        first.lane,
        full_refresh=full_refresh,
        requests=len(jobs),
        session=session is not None,
        in_flight=in_flight,
    )
    invoke = Invoke(
        batch_id=batch_id,
        kind=RUN,
        args=args,
        manifest=first.lane.manifest,
        requested=frozenset(uid for j in jobs for uid in j.remaining),
        environ=dict(first.environ),
        duckdb_lock=_lock_file(first.lane.duckdb_path),
        session=session,
        linger=linger if session is not None else 0.0,
    )
    return Invocation(invoke=invoke, full_refresh=full_refresh, duckdb_path=first.lane.duckdb_path)


def _other(job: Job, batch_id: int) -> Invocation:
    """The invocation of a job that is not ``run`` (deps, parse, load, freshness)."""
    invoke = Invoke(
        batch_id=batch_id,
        kind=job.kind,
        args=job.args,
        manifest=job.manifest,
        environ=dict(job.environ),
        duckdb_lock=_lock_file(job.duckdb_path),
        pickle_to=job.pickle_to,
        digest=job.digest,
        source=job.source,
    )
    return Invocation(invoke=invoke, full_refresh=False, duckdb_path=job.duckdb_path)


def _lock_file(duckdb_path: str | None) -> str | None:
    return f"{duckdb_path}.dbt-exec-core.lock" if duckdb_path else None
