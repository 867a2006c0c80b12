"""Which worker takes a request: the scheduler's record of each worker, and the choice.

All work on one DuckDB file goes to one worker (DuckDB admits one writing process): the file is
*pinned* to it while it lives. Other work takes an idle worker, preferring one that already holds
the request's manifest, or starts one while there are fewer than ``max_workers``. There is at most
one streaming session per key, so dbt's relation cache never lives in two processes.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from dbt_exec_core._batches import Batch, blocked_in_session
from dbt_exec_core._jobs import Job
from dbt_exec_core._pool import WorkerFactory, WorkerLink


@dataclass(eq=False)
class WorkerSlot:
    """The scheduler's record of one worker.

    Attributes:
        index: A number for names, logs and errors.
        link: The running worker.
        batches: The invocations it is running, by id (empty when idle; several while a
            streaming session takes requests).
        session: The key of its streaming session (running or lingering), if any.
        session_full_refresh: Whether that session runs with ``--full-refresh``.
        keys: Manifest keys it has loaded (for affinity).
        dying: Set once it is being stopped; it takes no more work.
        end_session_when_idle: End its session once its last request is done (the run scope
            was left while it was still busy).
    """

    index: int
    link: WorkerLink = field(init=False)
    batches: dict[int, Batch] = field(default_factory=dict)
    session: str | None = None
    session_full_refresh: bool = False
    keys: set[str] = field(default_factory=set)
    dying: bool = False
    end_session_when_idle: bool = False


class Placement:
    """The live workers of one scheduler, and which of them takes a request.

    Not thread-safe: the scheduler calls it holding its lock.

    Args:
        max_workers: Most workers at once.
        start_worker: Starts a worker.
        log_level: Passed to every worker.
        on_message: Called with ``(slot, message)`` for each message a worker sends.
        on_exit: Called with ``(slot, detail)`` once a worker has exited.
    """

    def __init__(
        self,
        *,
        max_workers: int,
        start_worker: WorkerFactory,
        log_level: str,
        on_message: Callable[[WorkerSlot, Any], None],
        on_exit: Callable[[WorkerSlot, str], None],
    ) -> None:
        self.max_workers = max(1, max_workers)
        self.workers: list[WorkerSlot] = []
        self._pins: dict[str, WorkerSlot] = {}
        self._start_worker = start_worker
        self._log_level = log_level
        self._on_message = on_message
        self._on_exit = on_exit
        self._indexes = itertools.count()

    def session_for(self, job: Job, draining: set[WorkerSlot]) -> WorkerSlot | None:
        """A worker whose streaming session ``job`` can join now, if any."""
        for worker in self.workers:
            if worker.dying or worker in draining or worker.session is None:
                continue
            if worker.session != job.session and worker.session not in job.also_joins:
                continue
            if blocked_in_session(job, worker.batches.values()):
                return None  # it must wait for a node it depends on (or the same node)
            return worker
        return None

    def blocking(self, job: Job) -> set[WorkerSlot]:
        """The workers that must free up for ``job`` to start."""
        path = _duckdb_path(job)
        if path is not None and path in self._pins:
            return {self._pins[path]}
        if len([w for w in self.workers if not w.dying]) >= self.max_workers:
            return {w for w in self.workers if w.session is not None}
        return set()

    def worker_for(self, job: Job) -> WorkerSlot | None:
        """An idle worker for ``job`` (the DuckDB file's own worker when it has one)."""
        keys = (job.session, *job.also_joins)
        if job.session is not None and any(w.session in keys for w in self.workers):
            # One session per key: relation caches of two live sessions would drift apart.
            return None
        path = _duckdb_path(job)
        if path is None:
            return self._idle(job) or self._spawn()
        pinned = self._pins.get(path)
        if pinned is not None and not pinned.dying:
            return pinned if not pinned.batches else None
        idle = self._idle(job) or self._spawn()
        if idle is not None:
            self._pins[path] = idle
        return idle

    def forget(self, worker: WorkerSlot) -> None:
        """Drop a worker that has exited (and its DuckDB pins)."""
        if worker in self.workers:
            self.workers.remove(worker)
        for path, pinned in list(self._pins.items()):
            if pinned is worker:
                del self._pins[path]

    def _idle(self, job: Job) -> WorkerSlot | None:
        pinned = set(self._pins.values())
        idle = [w for w in self.workers if not w.batches and not w.dying]
        if not idle:
            return None
        key = job.lane.manifest.key if job.lane is not None else None
        # Prefer a worker that already holds the manifest, then one no DuckDB file needs.
        idle.sort(key=lambda w: (key not in w.keys, w in pinned))
        return idle[0]

    def _spawn(self) -> WorkerSlot | None:
        if len([w for w in self.workers if not w.dying]) >= self.max_workers:
            return None
        slot = WorkerSlot(next(self._indexes))
        slot.link = self._start_worker(
            slot.index,
            log_level=self._log_level,
            on_message=lambda message: self._on_message(slot, message),
            on_exit=lambda detail: self._on_exit(slot, detail),
        )
        self.workers.append(slot)
        return slot


def _duckdb_path(job: Job) -> str | None:
    return job.lane.duckdb_path if job.lane is not None else job.duckdb_path
