"""Routing requests to worker processes: streaming sessions, coalescing, timeouts.

Callers (threads) submit :class:`Job` objects and wait on their future. One dispatcher thread
hands pending jobs to workers:

* A single-node job carries a **session** key. It joins the worker whose streaming session
  (:mod:`dbt_exec_core._session`, one long ``dbt build``) has that key, as soon as its node is
  independent of every node in flight there; with no such session it opens one on an idle worker.
  There is at most one session per key, so dbt's relation cache never lives in two processes.
* Any other ``run`` job waits a few milliseconds after it arrives (the coalescing window); then
  every pending job of the same :class:`Lane` (same manifest, vars, extra args, environment,
  compatible ``--full-refresh``) whose nodes are independent of the batch's nodes (no node of one
  is an ancestor of a node of another) joins it, and the batch becomes one dbt invocation.
  Because the requests are independent, dbt's skip-downstream-of-failure rule can only act
  *within* one caller's own nodes, never across callers.
* All work on one DuckDB file goes to one worker (DuckDB admits one writing process); its
  parallelism comes from dbt's threads. Other adapters use up to ``max_workers`` processes,
  started on demand. A job waiting for a busy worker stops new requests from joining that
  worker's session, so the session runs dry and the worker frees up.
* A job on a non-DuckDB lane is answered as soon as dbt reports its last node. DuckDB jobs are
  answered when their invocation (or, in a session, their batch) is over; the last one of a
  session only after the database file is closed.
* A job past its deadline stops its worker: the worker cancels its open database queries, is
  killed and replaced; the job's unfinished nodes become ``error`` results, the worker's other
  jobs go back to the queue.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from dbt_graph import ErrorInfo, ExecutionResult, LogLine, NodeResult

from dbt_exec_core._errors import WorkerError
from dbt_exec_core._jobs import Job, Lane, missing_result, timeout_error
from dbt_exec_core._pool import WorkerHandle
from dbt_exec_core._protocol import (
    RUN,
    Cancel,
    Cancelled,
    EndSession,
    Invoke,
    InvokeDone,
    NodeDone,
    Ready,
    SessionEnded,
)

logger = logging.getLogger("dbt_exec_core")

#: How long to wait for a worker to cancel its queries before it is killed.
_CANCEL_GRACE_SECONDS = 3.0


@dataclass(eq=False)
class _Batch:
    id: int
    worker: WorkerHandle
    jobs: list[Job]
    args: tuple[str, ...]
    early: bool
    requested: frozenset[str] = frozenset()
    started: float = 0.0
    timed_out: list[Job] = field(default_factory=list)
    cancelled: threading.Event = field(default_factory=threading.Event)


class Scheduler:
    """Owns the worker processes and the dispatcher thread of one executor.

    Args:
        max_workers: Most worker processes at once (DuckDB lanes use one per file).
        log_level: Lowest dbt event level captured into results.
        window_seconds: The coalescing window.
        run_args: Builds a ``run`` batch's dbt arguments from ``(command, selectors, lane,
            full_refresh, jobs_in_batch, session)``.
    """

    def __init__(
        self,
        *,
        max_workers: int,
        log_level: str,
        window_seconds: float,
        run_args: Callable[[str, tuple[str, ...], Lane, bool, int, bool], tuple[str, ...]],
    ) -> None:
        self._max_workers = max(1, max_workers)
        self._log_level = log_level
        self._window = window_seconds
        self._run_args = run_args
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._workers: list[WorkerHandle] = []
        self._pins: dict[str, WorkerHandle] = {}
        self._batch_ids = itertools.count(1)
        self._worker_ids = itertools.count()
        self._closed = False
        #: Seconds a session lingers once dry (set by the executor's ``run_scope``).
        self.linger = 0.0
        self._tokens = itertools.count(1)
        self._ending: dict[int, tuple[WorkerHandle, threading.Event]] = {}
        self._thread = threading.Thread(
            target=self._loop, name="dbt-exec-core-dispatch", daemon=True
        )
        self._thread.start()

    # -- callers -------------------------------------------------------------------------------

    def submit(self, job: Job) -> Future[Any]:
        """Queue a job; its future resolves to an :class:`ExecutionResult` (``run``) or the
        worker's :class:`InvokeDone` (other kinds)."""
        with self._cond:
            if self._closed:
                raise WorkerError("The executor's scheduler is closed.")
            job.remaining = set(job.selectors) if job.kind == RUN else set()
            job.submitted = time.monotonic()
            self._pending.append(job)
            self._cond.notify_all()
        return job.future

    def end_sessions(self, timeout: float = 60.0) -> None:
        """End every lingering session and wait until it has (its DuckDB file closed).

        Workers still running requests are left alone: their sessions end when they run dry.
        """
        waiting: list[threading.Event] = []
        with self._cond:
            for worker in self._workers:
                if worker.dying or worker.batches or worker.session is None:
                    continue
                worker.session = None
                token, event = next(self._tokens), threading.Event()
                try:
                    worker.send(EndSession(token=token))
                except OSError:
                    continue
                self._ending[token] = (worker, event)
                waiting.append(event)
        deadline = time.monotonic() + timeout
        for event in waiting:
            event.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Stop the workers and the dispatcher; pending jobs fail with :class:`WorkerError`."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            pending, self._pending = list(self._pending), deque()
            workers = list(self._workers)
            self._cond.notify_all()
        for job in pending:
            if not job.future.done():
                job.future.set_exception(WorkerError("The executor was closed."))
        for worker in workers:
            worker.stop()
        self._thread.join(5)

    # -- dispatcher ----------------------------------------------------------------------------

    def _loop(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                dispatch_wake = self._dispatch(now)
                # After dispatching, so the deadlines of batches just started are counted.
                wake = self._check_timeouts(now)
                waits = [w for w in (wake, dispatch_wake) if w is not None]
                self._cond.wait(timeout=min(waits) if waits else None)

    def _dispatch(self, now: float) -> float | None:
        wake: float | None = None
        # Workers somebody is waiting for: they take no new session requests, so their
        # sessions run dry and the worker frees up.
        draining: set[WorkerHandle] = set()
        for job in list(self._pending):
            if job not in self._pending:
                continue  # taken into an earlier batch of this pass
            if job.session is not None:
                worker = self._session_for(job, draining)
                if worker is not None:
                    self._start(worker, [job], now, session=worker.session)
                    continue
            worker = self._worker_for(job)
            if worker is None:
                if job.session is None:
                    draining |= self._blocking(job)
                continue
            if job.kind == RUN and job.session is None:
                age = now - job.submitted
                if age < self._window:
                    remaining = self._window - age
                    wake = remaining if wake is None else min(wake, remaining)
                    continue
                batch_jobs = self._coalesce(job)
            else:
                batch_jobs = [job]
            self._start(worker, batch_jobs, now)
        return wake

    def _session_for(self, job: Job, draining: set[WorkerHandle]) -> WorkerHandle | None:
        """A worker whose running session ``job`` can join now, if any."""
        for worker in self._workers:
            if worker.dying or worker in draining or worker.session is None:
                continue
            if worker.session != job.session and worker.session not in job.also_joins:
                continue
            in_flight: set[str] = set()
            related: set[str] = set()
            for batch in worker.batches.values():
                in_flight |= batch.requested
                for other in batch.jobs:
                    related |= other.related
            if job.remaining & in_flight or job.related & in_flight or job.remaining & related:
                return None  # it must wait for a node it depends on (or the same node)
            return worker
        return None

    def _blocking(self, job: Job) -> set[WorkerHandle]:
        """The workers that must free up for ``job`` to start."""
        path = job.lane.duckdb_path if job.lane is not None else job.duckdb_path
        if path is not None and path in self._pins:
            return {self._pins[path]}
        if len([w for w in self._workers if not w.dying]) >= self._max_workers:
            return {w for w in self._workers if w.session is not None}
        return set()

    def _coalesce(self, first: Job) -> list[Job]:
        jobs = [first]
        related = set(first.related)
        nodes = set(first.remaining)
        full_refresh = first.full_refresh
        commands = {first.command}
        own_command = first.own_command
        for other in self._pending:
            if other is first or other.kind != RUN or other.lane != first.lane:
                continue
            if other.session is not None:
                continue
            if (own_command or other.own_command) and commands != {other.command}:
                continue
            if (
                full_refresh is not None
                and other.full_refresh is not None
                and other.full_refresh != full_refresh
            ):
                continue
            if related & other.remaining or nodes & other.related:
                continue
            if "test" in (first.command, other.command) and other.command != first.command:
                # `dbt build` skips a unit test whose model is not selected with it, so test
                # jobs (unit tests among them) only join other test jobs.
                continue
            jobs.append(other)
            commands.add(other.command)
            own_command = own_command or other.own_command
            related |= other.related
            nodes |= other.remaining
            if full_refresh is None:
                full_refresh = other.full_refresh
        return jobs

    def _worker_for(self, job: Job) -> WorkerHandle | None:
        """An idle worker for ``job`` (the DuckDB file's own worker when it has one)."""
        keys = (job.session, *job.also_joins)
        if job.session is not None and any(w.session in keys for w in self._workers):
            # One session per lane: relation caches of two live sessions would drift apart.
            return None
        path = job.lane.duckdb_path if job.lane is not None else job.duckdb_path
        if path is not None:
            pinned = self._pins.get(path)
            if pinned is not None and not pinned.dying:
                return pinned if not pinned.batches else None
            idle = self._idle(job) or self._spawn()
            if idle is not None:
                self._pins[path] = idle
            return idle
        return self._idle(job) or self._spawn()

    def _idle(self, job: Job) -> WorkerHandle | None:
        pinned = set(self._pins.values())
        idle = [w for w in self._workers if not w.batches and not w.dying]
        if not idle:
            return None
        key = job.lane.manifest.key if job.lane is not None else None
        # Prefer a worker that already holds the manifest, then one no DuckDB file needs.
        idle.sort(key=lambda w: (key not in w.keys, w in pinned))
        return idle[0]

    def _spawn(self) -> WorkerHandle | None:
        live = [w for w in self._workers if not w.dying]
        if len(live) >= self._max_workers:
            return None
        worker = WorkerHandle(
            next(self._worker_ids),
            log_level=self._log_level,
            on_message=self._on_message,
            on_exit=self._on_exit,
        )
        self._workers.append(worker)
        return worker

    def _start(
        self, worker: WorkerHandle, jobs: list[Job], now: float, session: str | None = None
    ) -> None:
        """Send ``jobs`` to ``worker`` as one invocation (or into its session, ``session``)."""
        batch_id = next(self._batch_ids)
        first = jobs[0]
        session = session or first.session
        if first.kind == RUN:
            assert first.lane is not None
            commands = {j.command for j in jobs}
            command = commands.pop() if len(commands) == 1 else "build"
            if session is not None:
                command = "build"
            selectors = tuple(
                dict.fromkeys(
                    j.selectors[uid] for j in jobs for uid in j.node_ids if uid in j.remaining
                )
            )
            full_refresh = any(j.full_refresh for j in jobs) or (
                session is not None and session == worker.session and worker.session_full_refresh
            )
            args = self._run_args(
                command, selectors, first.lane, full_refresh, len(jobs), session is not None
            )
            requested = frozenset(uid for j in jobs for uid in j.remaining)
            manifest = first.lane.manifest
            path = first.lane.duckdb_path
        else:
            args, requested, manifest = first.args, frozenset(), first.manifest
            path = first.duckdb_path
        invoke = Invoke(
            batch_id=batch_id,
            kind=first.kind,
            args=args,
            manifest=manifest,
            requested=requested,
            environ=dict(first.environ),
            duckdb_lock=f"{path}.dbt-exec-core.lock" if path else None,
            pickle_to=first.pickle_to,
            digest=first.digest,
            session=session,
            linger=self.linger if session is not None else 0.0,
        )
        batch = _Batch(
            batch_id,
            worker,
            jobs,
            args,
            early=first.kind == RUN and path is None,
            requested=requested,
            started=now,
        )
        for job in jobs:
            self._pending.remove(job)
            job.started_at = job.started_at or datetime.now(UTC)
            job.deadline = now + job.timeout if job.timeout is not None else None
            job.invocation_args = args
        # An idle worker ends whatever session lingers in it, unless this request joins it.
        opens = session is not None and session != worker.session
        if not worker.batches and session != worker.session:
            worker.session = session
            worker.session_full_refresh = full_refresh
        worker.batches[batch_id] = batch
        logger.debug(
            "invocation %d on worker %d: %s, %d request(s), %d node(s)%s",
            batch_id,
            worker.index,
            first.kind if first.kind != RUN else args[0],
            len(jobs),
            len(requested),
            (" (new session)" if opens else " (session)") if session else "",
        )
        if manifest is not None:
            worker.keys.add(manifest.key)
        try:
            worker.send(invoke)
        except OSError:
            # The worker is gone; its exit handler has nothing of this batch to answer for.
            del worker.batches[batch_id]
            worker.dying = True
            for job in reversed(jobs):
                self._pending.appendleft(job)

    # -- worker messages (reader threads) -------------------------------------------------------

    def _on_message(self, worker: WorkerHandle, message: Any) -> None:
        with self._cond:
            if isinstance(message, Ready):
                return
            if isinstance(message, SessionEnded):
                _, event = self._ending.pop(message.token, (None, threading.Event()))
                event.set()
                return
            batch = worker.batches.get(getattr(message, "batch_id", -1))
            if batch is None:
                return
            if isinstance(message, NodeDone):
                self._node_done(batch, message.result)
            elif isinstance(message, InvokeDone):
                logger.debug(
                    "invocation %d done in %.3fs", batch.id, time.monotonic() - batch.started
                )
                self._invoke_done(batch, message)
                del worker.batches[batch.id]
                if not worker.batches and self.linger <= 0:
                    worker.session = None  # a lingering session stays joinable
                self._cond.notify_all()
            elif isinstance(message, Cancelled):
                batch.cancelled.set()

    def _node_done(self, batch: _Batch, result: NodeResult) -> None:
        for job in list(batch.jobs):
            if result.unique_id in job.remaining:
                job.results[result.unique_id] = result
                job.remaining.discard(result.unique_id)
                if batch.early and not job.remaining:
                    batch.jobs.remove(job)
                    self._complete(job, error=None, logs=())

    def _invoke_done(self, batch: _Batch, done: InvokeDone) -> None:
        extra = sorted(set(done.results) - batch.requested)
        if extra and batch.jobs and batch.jobs[0].kind == RUN:
            logger.warning(
                "dbt ran nodes that were not requested (the selectors matched more than asked): %s",
                ", ".join(extra),
            )
        for job in batch.jobs:
            if job.kind != RUN:
                job.future.set_result(done)
                continue
            for uid in list(job.remaining):
                if uid in done.results:
                    job.results[uid] = done.results[uid]
                    job.remaining.discard(uid)
            self._complete(job, error=done.error, logs=done.logs)
        batch.jobs = []

    def _on_exit(self, worker: WorkerHandle) -> None:
        with self._cond:
            if worker in self._workers:
                self._workers.remove(worker)
            for path, pinned in list(self._pins.items()):
                if pinned is worker:
                    del self._pins[path]
            for token, (ending, event) in list(self._ending.items()):
                if ending is worker:
                    del self._ending[token]
                    event.set()
            batches = list(worker.batches.values())
            worker.batches.clear()
            worker.session = None
            crash = ErrorInfo(
                type="WorkerError",
                message="The dbt worker process exited unexpectedly "
                f"({worker.exit_detail or 'killed'}) before dbt reported this node.",
            )
            for batch in batches:
                for job in batch.timed_out:
                    assert job.timeout is not None
                    self._complete(job, error=timeout_error(job.timeout), logs=())
                for job in batch.jobs:
                    if job.kind == RUN:
                        self._complete(job, error=crash, logs=())
                    else:
                        job.future.set_result(
                            InvokeDone(batch_id=batch.id, success=False, error=crash)
                        )
            self._cond.notify_all()

    # -- timeouts --------------------------------------------------------------------------------

    def _check_timeouts(self, now: float) -> float | None:
        wake: float | None = None
        for worker in list(self._workers):
            if worker.dying or not worker.batches:
                continue
            jobs = [j for b in worker.batches.values() for j in b.jobs]
            expired = [j for j in jobs if j.deadline is not None and j.deadline <= now]
            if not expired:
                for job in jobs:
                    if job.deadline is not None:
                        left = job.deadline - now
                        wake = left if wake is None else min(wake, left)
                continue
            # The worker is stopped. The expired jobs get a timeout; the others did nothing
            # wrong: their unfinished nodes run again elsewhere.
            for batch in worker.batches.values():
                batch.timed_out = [j for j in batch.jobs if j in expired]
                for job in reversed([j for j in batch.jobs if j not in expired]):
                    job.submitted = now - self._window
                    self._pending.appendleft(job)
                batch.jobs = []
            worker.dying = True
            wake = 0.0  # requeued jobs may go to another worker right away
            threading.Thread(
                target=self._stop_worker,
                args=(worker, list(worker.batches.values())),
                daemon=True,
                name=f"dbt-exec-core-timeout-{worker.index}",
            ).start()
        return wake

    @staticmethod
    def _stop_worker(worker: WorkerHandle, batches: list[_Batch]) -> None:
        try:
            for batch in batches:
                if batch.timed_out:
                    worker.send(Cancel(batch.id))
                    batch.cancelled.wait(_CANCEL_GRACE_SECONDS)
                    break
        except OSError:
            pass
        worker.kill()

    # -- results ---------------------------------------------------------------------------------

    def _complete(self, job: Job, *, error: ErrorInfo | None, logs: tuple[LogLine, ...]) -> None:
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
