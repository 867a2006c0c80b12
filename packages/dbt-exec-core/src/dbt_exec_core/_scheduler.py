"""Routing requests to worker processes: the dispatcher thread and the answers.

Callers (threads) submit :class:`~dbt_exec_core._jobs.Job` objects and wait on their future. One
dispatcher thread hands pending jobs to workers (:mod:`._placement` picks the worker,
:mod:`._batches` decides which jobs share an invocation, :mod:`._timeouts` stops late ones):

* A single-node job carries a **session** key. It joins the worker whose streaming session
  (:mod:`dbt_exec_core._session`, one long ``dbt build``) has that key, as soon as its node is
  independent of every node in flight there; with no such session it opens one on an idle worker.
* Any other ``run`` job waits a few milliseconds after it arrives (the coalescing window); then
  the independent pending jobs of its lane join it, and the batch becomes one dbt invocation.
* A job waiting for a busy worker stops new requests from joining that worker's session, so the
  session runs dry and the worker frees up.
* A job on a non-DuckDB lane is answered as soon as dbt reports its last node. DuckDB jobs are
  answered when their invocation (or, in a session, their request) is over; the last one of a
  session only after the database file is closed.
* A worker that dies on its own (killed, crashed) fails the requests it was running with an
  error naming it; the next request starts a new worker.
* Should the scheduler itself fail (a bug), every waiting request fails with a
  :class:`~dbt_exec_core.WorkerError` saying so, rather than waiting forever.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from dbt_exec_core._batches import Batch, RunArgsBuilder, coalesce, invocation
from dbt_exec_core._errors import WorkerError
from dbt_exec_core._jobs import Job, complete, lost_worker_error, timeout_error
from dbt_exec_core._placement import Placement, WorkerSlot
from dbt_exec_core._pool import ProcessWorker, WorkerFactory
from dbt_exec_core._protocol import (
    RUN,
    Cancelled,
    EndSession,
    InvokeDone,
    NodeDone,
    SessionEnded,
)
from dbt_exec_core._timeouts import check_timeouts

logger = logging.getLogger("dbt_exec_core")


class Scheduler:
    """Owns the workers and the dispatcher thread of one executor.

    Args:
        max_workers: Most workers at once (DuckDB lanes use one per file).
        log_level: Lowest dbt event level captured into results.
        window_seconds: The coalescing window.
        run_args: Builds a ``run`` batch's dbt arguments.
        start_worker: Starts a worker (default: a worker process); tests pass in-process fakes.
    """

    def __init__(
        self,
        *,
        max_workers: int,
        log_level: str,
        window_seconds: float,
        run_args: RunArgsBuilder,
        start_worker: WorkerFactory = ProcessWorker,
    ) -> None:
        self._window = window_seconds
        self._run_args = run_args
        self._cond = threading.Condition()
        self._pending: deque[Job] = deque()
        self._placement = Placement(
            max_workers=max_workers,
            start_worker=start_worker,
            log_level=log_level,
            on_message=self._on_message,
            on_exit=self._on_exit,
        )
        self._batch_ids = itertools.count(1)
        self._closed = False
        self._failure: BaseException | None = None
        #: Seconds a session lingers once dry (set by the executor's ``run_scope``).
        self.linger = 0.0
        #: Most requests callers keep in flight at once, if known (set by ``run_scope``).
        self.in_flight: int | None = None
        self._tokens = itertools.count(1)
        self._ending: dict[int, tuple[WorkerSlot, threading.Event]] = {}
        self._thread = threading.Thread(
            target=self._loop, name="dbt-exec-core-dispatch", daemon=True
        )
        self._thread.start()

    @property
    def failed(self) -> bool:
        """Whether the scheduler stopped because of an internal error (a new one is needed)."""
        return self._failure is not None

    # -- callers -------------------------------------------------------------------------------

    def submit(self, job: Job) -> Future[Any]:
        """Queue a job; its future resolves to an :class:`ExecutionResult` (``run``) or the
        worker's :class:`InvokeDone` (other kinds).

        Raises:
            WorkerError: The scheduler is closed or has failed.
        """
        with self._cond:
            if self._failure is not None:
                raise _failure_error(self._failure)
            if self._closed:
                raise WorkerError("The executor's scheduler is closed.")
            job.remaining = set(job.selectors) if job.kind == RUN else set()
            job.submitted = time.monotonic()
            self._pending.append(job)
            self._cond.notify_all()
        return job.future

    def end_sessions(self, timeout: float = 60.0) -> None:
        """End every lingering session and wait until it has (its DuckDB file closed).

        A worker still running requests ends its session once they are done, without waiting
        here (DuckDB requests are answered only after that, so their files are closed).
        """
        waiting: list[threading.Event] = []
        with self._cond:
            for worker in self._placement.workers:
                if worker.dying or worker.session is None:
                    continue
                if worker.batches:
                    worker.end_session_when_idle = True
                    continue
                event = self._end_session(worker)
                if event is not None:
                    waiting.append(event)
        deadline = time.monotonic() + timeout
        for event in waiting:
            event.wait(max(0.0, deadline - time.monotonic()))

    def _end_session(self, worker: WorkerSlot) -> threading.Event | None:
        """Tell an idle worker to end its session; the event is set once it has."""
        worker.session = None
        worker.end_session_when_idle = False
        token, event = next(self._tokens), threading.Event()
        try:
            worker.link.send(EndSession(token=token))
        except OSError:
            return None
        self._ending[token] = (worker, event)
        return event

    def close(self) -> None:
        """Stop the workers and the dispatcher; pending jobs fail with :class:`WorkerError`."""
        with self._cond:
            if self._closed and self._failure is None:
                return
            self._closed = True
            pending, self._pending = list(self._pending), deque()
            workers = list(self._placement.workers)
            self._cond.notify_all()
        for job in pending:
            if not job.future.done():
                job.future.set_exception(WorkerError("The executor was closed."))
        for worker in workers:
            worker.dying = True
            worker.link.stop()
        self._thread.join(5)

    # -- dispatcher ----------------------------------------------------------------------------

    def _loop(self) -> None:
        with self._cond:
            try:
                while not self._closed:
                    now = time.monotonic()
                    dispatch_wake = self._dispatch(now)
                    # After dispatching, so the deadlines of batches just started are counted.
                    wake = check_timeouts(self._placement.workers, now, self._requeue)
                    waits = [w for w in (wake, dispatch_wake) if w is not None]
                    self._cond.wait(timeout=min(waits) if waits else None)
            except BaseException as exc:
                self._fail(exc)

    def _dispatch(self, now: float) -> float | None:
        wake: float | None = None
        # Workers somebody is waiting for: they take no new session requests, so their
        # sessions run dry and the worker frees up.
        draining: set[WorkerSlot] = set()
        for job in list(self._pending):
            if job not in self._pending:
                continue  # taken into an earlier batch of this pass
            if job.session is not None:
                worker = self._placement.session_for(job, draining)
                if worker is not None:
                    self._start(worker, [job], now, session=worker.session)
                    continue
            worker = self._placement.worker_for(job)
            if worker is None:
                if job.session is None:
                    draining |= self._placement.blocking(job)
                continue
            if job.kind == RUN and job.session is None:
                age = now - job.submitted
                if age < self._window:
                    remaining = self._window - age
                    wake = remaining if wake is None else min(wake, remaining)
                    continue
                batch_jobs = coalesce(job, self._pending)
            else:
                batch_jobs = [job]
            self._start(worker, batch_jobs, now, session=job.session)
        return wake

    def _start(
        self, worker: WorkerSlot, jobs: list[Job], now: float, *, session: str | None
    ) -> None:
        """Send ``jobs`` to ``worker`` as one invocation (or into its session, ``session``)."""
        batch_id = next(self._batch_ids)
        made = invocation(
            jobs,
            batch_id=batch_id,
            session=session,
            session_full_refresh=session is not None
            and session == worker.session
            and worker.session_full_refresh,
            run_args=self._run_args,
            linger=self.linger,
            in_flight=self.in_flight,
        )
        invoke = made.invoke
        batch = Batch(
            batch_id,
            worker,
            jobs,
            invoke.args,
            early=invoke.kind == RUN and made.duckdb_path is None,
            requested=invoke.requested,
            started=now,
        )
        for job in jobs:
            self._pending.remove(job)
            job.started_at = job.started_at or datetime.now(UTC)
            job.deadline = now + job.timeout if job.timeout is not None else None
            job.invocation_args = invoke.args
        # An idle worker ends whatever session lingers in it, unless this request joins it.
        opens = session is not None and session != worker.session
        if not worker.batches and session != worker.session:
            worker.session = session
            worker.session_full_refresh = made.full_refresh
        worker.batches[batch_id] = batch
        _log_start(batch, invoke.kind, session, opens)
        if invoke.manifest is not None:
            worker.keys.add(invoke.manifest.key)
        try:
            worker.link.send(invoke)
        except OSError:
            # The worker is gone; its exit handler has nothing of this batch to answer for.
            del worker.batches[batch_id]
            worker.dying = True
            for job in reversed(jobs):
                self._pending.appendleft(job)

    def _requeue(self, job: Job) -> None:
        job.submitted = time.monotonic() - self._window
        self._pending.appendleft(job)

    # -- worker messages (reader threads) -------------------------------------------------------

    def _on_message(self, worker: WorkerSlot, message: Any) -> None:
        with self._cond:
            try:
                self._handle(worker, message)
            except BaseException as exc:
                self._fail(exc)

    def _handle(self, worker: WorkerSlot, message: Any) -> None:
        if isinstance(message, SessionEnded):
            _, event = self._ending.pop(message.token, (None, threading.Event()))
            event.set()
            return
        batch = worker.batches.get(getattr(message, "batch_id", -1))
        if batch is None:
            return
        if isinstance(message, NodeDone):
            batch.node_done(message.result)
        elif isinstance(message, InvokeDone):
            logger.debug("invocation %d done in %.3fs", batch.id, time.monotonic() - batch.started)
            batch.invocation_done(message)
            del worker.batches[batch.id]
            if not worker.batches and worker.end_session_when_idle:
                self._end_session(worker)
            elif not worker.batches and self.linger <= 0:
                worker.session = None  # a lingering session stays joinable
            self._cond.notify_all()
        elif isinstance(message, Cancelled):
            batch.cancelled.set()

    def _on_exit(self, worker: WorkerSlot, detail: str) -> None:
        with self._cond:
            try:
                self._exited(worker, detail)
            except BaseException as exc:
                self._fail(exc)

    def _exited(self, worker: WorkerSlot, detail: str) -> None:
        self._placement.forget(worker)
        for token, (ending, event) in list(self._ending.items()):
            if ending is worker:
                del self._ending[token]
                event.set()
        batches = list(worker.batches.values())
        worker.batches.clear()
        worker.session = None
        lost = lost_worker_error(worker.index, worker.link.pid, detail)
        if batches and not worker.dying:
            logger.warning("%s", lost.message)
        for batch in batches:
            for job in batch.timed_out:
                assert job.timeout is not None
                complete(job, error=timeout_error(job.timeout), logs=())
            for job in batch.jobs:
                if job.kind == RUN:
                    complete(job, error=lost, logs=())
                else:
                    job.future.set_result(InvokeDone(batch_id=batch.id, success=False, error=lost))
        self._cond.notify_all()

    # -- internal failure ------------------------------------------------------------------------

    def _fail(self, exc: BaseException) -> None:
        """A bug in the scheduler: fail every waiting request instead of leaving it hanging."""
        logger.error("The dbt-exec-core scheduler failed", exc_info=exc)
        if self._failure is None:
            self._failure = exc
        self._closed = True
        jobs = list(self._pending)
        self._pending.clear()
        workers = list(self._placement.workers)
        for worker in workers:
            worker.dying = True
            for batch in worker.batches.values():
                jobs += batch.jobs + batch.timed_out
            worker.batches.clear()
        error = _failure_error(exc)
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(error)
        for _, event in self._ending.values():
            event.set()
        self._cond.notify_all()
        # Not on this thread: stopping a worker waits for its reader thread, maybe this one.
        threading.Thread(
            target=lambda: [w.link.stop() for w in workers],
            name="dbt-exec-core-teardown",
            daemon=True,
        ).start()


def _failure_error(exc: BaseException) -> WorkerError:
    return WorkerError(
        f"The dbt-exec-core scheduler failed ({type(exc).__name__}: {exc}), so this request was "
        "not completed. The executor starts a new scheduler and workers for the next request; "
        "please report this as a bug."
    )


def _log_start(batch: Batch, kind: str, session: str | None, opens: bool) -> None:
    logger.debug(
        "invocation %d on worker %d: %s, %d request(s), %d node(s)%s",
        batch.id,
        batch.worker.index,
        kind if kind != RUN else batch.args[0],
        len(batch.jobs),
        len(batch.requested),
        (" (new session)" if opens else " (session)") if session else "",
    )
