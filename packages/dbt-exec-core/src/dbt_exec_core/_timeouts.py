"""Timeouts: a request past its deadline stops its worker.

The worker is asked to cancel its open database queries (dbt's own cancellation, e.g.
``pg_terminate_backend`` on PostgreSQL), then killed; the scheduler replaces it on demand. The
expired requests are answered with a timeout once the worker is gone; the worker's other requests
did nothing wrong and go back to the queue to run again elsewhere.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from dbt_exec_core._batches import Batch
from dbt_exec_core._jobs import Job
from dbt_exec_core._placement import WorkerSlot
from dbt_exec_core._protocol import Cancel

#: How long to wait for a worker to cancel its queries before it is killed.
CANCEL_GRACE_SECONDS = 3.0


def check_timeouts(
    workers: Iterable[WorkerSlot], now: float, requeue: Callable[[Job], None]
) -> float | None:
    """Stop every worker running an expired request; return seconds until the next deadline.

    Args:
        workers: The live workers.
        now: ``time.monotonic()``.
        requeue: Puts a request back at the front of the queue.

    Returns:
        Seconds until the next deadline (``0`` after stopping a worker, so that requeued
        requests are dispatched at once), or ``None`` when nothing has a deadline.
    """
    wake: float | None = None
    for worker in list(workers):
        if worker.dying or not worker.batches:
            continue
        jobs = [j for b in worker.batches.values() for j in b.jobs]
        expired = [j for j in jobs if j.deadline is not None and j.deadline <= now]
        if expired:
            _stop(worker, expired, requeue)
            wake = 0.0
            continue
        for job in jobs:
            if job.deadline is not None:
                left = job.deadline - now
                wake = left if wake is None else min(wake, left)
    return wake


def _stop(worker: WorkerSlot, expired: list[Job], requeue: Callable[[Job], None]) -> None:
    for batch in worker.batches.values():
        batch.timed_out = [j for j in batch.jobs if j in expired]
        for job in reversed([j for j in batch.jobs if j not in expired]):
            requeue(job)
        batch.jobs = []
    worker.dying = True
    threading.Thread(
        target=_cancel_and_kill,
        args=(worker, list(worker.batches.values())),
        daemon=True,
        name=f"dbt-exec-core-timeout-{worker.index}",
    ).start()


def _cancel_and_kill(worker: WorkerSlot, batches: list[Batch]) -> None:
    try:
        for batch in batches:
            if batch.timed_out:
                worker.link.send(Cancel(batch.id))
                batch.cancelled.wait(CANCEL_GRACE_SECONDS)
                break
    except OSError:
        pass
    worker.link.kill()
