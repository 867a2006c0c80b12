"""In-process fake dbt workers for the scheduler's unit tests.

:class:`FakeWorkers` is a :class:`dbt_exec_core._pool.WorkerFactory`. Each fake speaks the
worker protocol like the real worker process (:mod:`dbt_exec_core._worker`): it takes one
invocation at a time, keeps a streaming session open that later single-node requests with the
same key join, lingers when told to, answers ``Cancel`` and ``EndSession``, and exits on
``Stop``. Instead of running dbt, a node succeeds at once, or waits for a gate the test opens,
or "crashes" the worker as a ``kill -9`` would. Everything the scheduler sends is recorded.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from dbt_exec_core._protocol import (
    RUN,
    Cancel,
    Cancelled,
    EndSession,
    Invoke,
    InvokeDone,
    NodeDone,
    SessionEnded,
    Stop,
)
from dbt_graph import NodeResult, NodeStatus

#: How long a fake waits for anything before giving up (a test bug, not a timing margin).
PATIENCE = 30.0


@dataclass
class Sent:
    """One invocation a fake worker received."""

    worker: int
    invoke: Invoke


class FakeWorkers:
    """Starts fake workers and scripts what their "dbt" does.

    Attributes:
        workers: Every fake started, in order.
        sent: Every invocation received, in order.
        events: ``("sent", batch_id)`` and ``("done", batch_id)`` (its ``InvokeDone``), in order.
    """

    def __init__(self) -> None:
        self.workers: list[FakeWorker] = []
        self.sent: list[Sent] = []
        self.events: list[tuple[str, int]] = []
        self.lock = threading.Condition()
        self._gates: dict[str, threading.Event] = {}
        self._crashing: set[str] = set()
        self._statuses: dict[str, NodeStatus] = {}

    def __call__(
        self,
        index: int,
        *,
        log_level: str,
        on_message: Callable[[object], None],
        on_exit: Callable[[str], None],
    ) -> FakeWorker:
        worker = FakeWorker(self, index, on_message, on_exit)
        with self.lock:
            self.workers.append(worker)
        return worker

    def hold(self, *names: str) -> threading.Event:
        """Nodes (or non-run kinds: ``deps``, ``freshness``...) wait until the event is set."""
        gate = threading.Event()
        for name in names:
            self._gates[name] = gate
        return gate

    def crash_on(self, unique_id: str) -> None:
        """The worker running this node dies (like ``kill -9``) when the node starts."""
        self._crashing.add(unique_id)

    def status(self, unique_id: str, status: NodeStatus) -> None:
        self._statuses[unique_id] = status

    def wait_sent(self, count: int) -> list[Sent]:
        """Wait until at least ``count`` invocations were received; return them all."""
        with self.lock:
            assert self.lock.wait_for(lambda: len(self.sent) >= count, PATIENCE), self.sent
            return list(self.sent)

    def wait_for(self, predicate: Callable[[], bool]) -> None:
        """Wait until ``predicate()`` holds (checked whenever a worker sends a message)."""
        with self.lock:
            assert self.lock.wait_for(predicate, PATIENCE)

    def gate(self, name: str) -> threading.Event | None:
        return self._gates.get(name)

    def record(self, worker: FakeWorker, invoke: Invoke) -> None:
        with self.lock:
            self.sent.append(Sent(worker.index, invoke))
            self.events.append(("sent", invoke.batch_id))
            self.lock.notify_all()

    def record_done(self, batch_id: int) -> None:
        with self.lock:
            self.events.append(("done", batch_id))

    def result(self, unique_id: str) -> NodeResult:
        now = datetime.now(UTC)
        status = self._statuses.get(unique_id, NodeStatus.SUCCESS)
        return NodeResult(unique_id=unique_id, status=status, started_at=now, completed_at=now)

    def crashes(self, unique_id: str) -> bool:
        return unique_id in self._crashing


class FakeWorker:
    """One fake worker (a :class:`dbt_exec_core._pool.WorkerLink`)."""

    def __init__(
        self,
        fakes: FakeWorkers,
        index: int,
        on_message: Callable[[object], None],
        on_exit: Callable[[str], None],
    ) -> None:
        self.index = index
        self.messages: list[object] = []
        self._fakes = fakes
        self._on_message = on_message
        self._on_exit = on_exit
        self._inbox: queue.Queue[object] = queue.Queue()
        self._dead = threading.Event()
        self._exited = False
        self._exit_lock = threading.Lock()
        self._session: _Session | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int | None:
        return 40000 + self.index

    @property
    def dead(self) -> bool:
        return self._dead.is_set()

    # -- the link --------------------------------------------------------------------------------

    def send(self, message: object) -> None:
        if self._dead.is_set():
            raise OSError("the fake worker is gone")
        with self._fakes.lock:
            self.messages.append(message)
            self._fakes.lock.notify_all()
        if isinstance(message, Invoke):
            self._fakes.record(self, message)
        if isinstance(message, Cancel):
            self._reply(Cancelled(message.batch_id))
        elif isinstance(message, Stop):
            self._inbox.put(None)
        else:
            self._inbox.put(message)

    def kill(self) -> None:
        self._die("exit code -9")

    def stop(self, timeout: float = 5.0) -> None:
        if not self._dead.is_set():
            self._inbox.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.kill()

    # -- the fake process ------------------------------------------------------------------------

    def _serve(self) -> None:
        while not self._dead.is_set():
            message = self._inbox.get()
            if message is None:
                self._end_session()
                break
            if isinstance(message, EndSession):
                self._end_session()
                self._reply(SessionEnded(token=message.token))
                continue
            assert isinstance(message, Invoke)
            session = self._session
            if session is not None and message.session and session.try_add(message):
                continue
            self._end_session()
            if message.session:
                self._session = _Session(self, message)
            else:
                self._run(message)
        self._die("exit code 0")

    def _end_session(self) -> None:
        if self._session is not None:
            self._session.finish()
            self._session = None

    def _run(self, invoke: Invoke) -> None:
        """One invocation on its own: every node at once, then ``InvokeDone``."""
        if invoke.kind != RUN:
            self._wait(self._fakes.gate(invoke.kind))
            self._reply(InvokeDone(batch_id=invoke.batch_id, success=True))
            return
        threads = [
            threading.Thread(target=self.node, args=(invoke.batch_id, uid), daemon=True)
            for uid in sorted(invoke.requested)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        self._finish(invoke)

    def node(self, batch_id: int, unique_id: str) -> None:
        """Run one node: crash, or wait for its gate, then report it."""
        if self._fakes.crashes(unique_id):
            self._die("")
            return
        self._wait(self._fakes.gate(unique_id))
        if not self._dead.is_set():
            self._reply(NodeDone(batch_id=batch_id, result=self._fakes.result(unique_id)))

    def _finish(self, invoke: Invoke) -> None:
        if self._dead.is_set():
            return
        results = {uid: self._fakes.result(uid) for uid in invoke.requested}
        self._reply(InvokeDone(batch_id=invoke.batch_id, success=True, results=results))

    def _wait(self, gate: threading.Event | None) -> None:
        deadline = time.monotonic() + PATIENCE
        while gate is not None and not gate.is_set() and not self._dead.is_set():
            assert time.monotonic() < deadline, "a gate was never opened"
            gate.wait(0.01)

    def _reply(self, message: object) -> None:
        if self._dead.is_set():
            return
        if isinstance(message, InvokeDone):
            self._fakes.record_done(message.batch_id)
        self._on_message(message)

    def _die(self, detail: str) -> None:
        with self._exit_lock:
            self._dead.set()
            if self._exited:
                return
            self._exited = True
        self._inbox.put(None)
        self._on_exit(detail)


@dataclass(eq=False)
class _Session:
    """A fake streaming session: requests join while it runs, or while it lingers."""

    worker: FakeWorker
    first: Invoke
    cond: threading.Condition = field(default_factory=threading.Condition)
    outstanding: int = 0
    closing: bool = False
    dry_since: float = 0.0
    threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._admit(self.first)

    def try_add(self, invoke: Invoke) -> bool:
        with self.cond:
            lingered = (
                self.outstanding == 0 and time.monotonic() - self.dry_since > self.first.linger
            )
            if self.closing or invoke.session != self.first.session or lingered:
                return False
            self._admit(invoke)
            return True

    def finish(self) -> None:
        with self.cond:
            self.closing = True
        for thread in self.threads:
            thread.join(PATIENCE)

    def _admit(self, invoke: Invoke) -> None:
        self.outstanding += 1
        thread = threading.Thread(target=self._serve, args=(invoke,), daemon=True)
        self.threads.append(thread)
        thread.start()

    def _serve(self, invoke: Invoke) -> None:
        for uid in sorted(invoke.requested):
            self.worker.node(invoke.batch_id, uid)
        with self.cond:
            self.outstanding -= 1
            if self.outstanding == 0:
                self.dry_since = time.monotonic()
                if self.first.linger <= 0:
                    self.closing = True
        self.worker._finish(invoke)
