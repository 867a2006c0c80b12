"""Streaming sessions: one ``dbt build`` invocation that keeps taking single-node requests.

Per-node execution pays a whole dbt invocation per request: flags, profile and project, adapter
registration, schema creation, the relation cache, and a barrier at the end (the invocation ends
only when its slowest node does). A session pays that once. It is a real ``dbtRunner`` invocation
whose node loop (``execute_nodes``) is replaced while it runs: instead of draining the queue dbt
built from ``--select`` and returning, the loop keeps feeding dbt's own thread pool with nodes of
requests that arrive while it runs (each request one node, independent of every node in flight;
the parent guarantees both). Every node still goes through dbt's own runner
(``task.handle_job_queue`` → ``call_runner``), so statuses, hooks, materializations and events are
dbt's. Each request is answered as its node finishes. When nothing is queued or running, the
loop returns and dbt finishes the invocation normally (``on-run-end`` hooks run once per session).
With a ``linger`` (the executor's :meth:`~dbt_exec_core.DbtCoreExecutor.run_scope`), a session
that runs dry answers what finished and waits that long for the next request before it ends, so a
chain of dependent requests (each submitted when its parent's answer arrives) stays in one
invocation instead of paying dbt's start-up and teardown per link.

What differs from one invocation per request, on purpose:

* one request's failure never skips another request's node (dbt would skip descendants of a
  failed node within an invocation; here requests are independent by construction);
* schemas are created, and dbt's relation cache filled, for the schemas of each node as it joins;
* ``on-run-start``/``on-run-end`` hooks run once per session, not once per request.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from dbt_graph import ErrorInfo, LogLine, NodeResult

from dbt_exec_core import _convert, _speedups
from dbt_exec_core._duckdb import holding
from dbt_exec_core._protocol import Invoke, InvokeDone, NodeDone


class Session:
    """A live ``dbt build`` in a worker process, taking requests until it runs dry.

    Args:
        first: The request that opens the session (its ``args`` are the session's).
        manifest: The worker's loaded manifest (``_LoadedManifest``).
        args: The dbt arguments, with the worker's target path.
        send: Sends a message to the parent.
        capture: Collects the session's log lines (the worker's event callback fills it).
        invoke: Runs ``dbtRunner(manifest=...).invoke(args)`` with the worker's callbacks.
    """

    def __init__(
        self,
        first: Invoke,
        *,
        manifest: Any,
        args: list[str],
        send: Callable[[object], None],
        capture: Any,
        invoke: Callable[[list[str]], Any],
    ) -> None:
        self.key = first.session
        self.capture = capture
        self._manifest = manifest
        self._args = args
        self._send = send
        self._invoke = invoke
        self._duckdb_lock = first.duckdb_lock
        self._first = first
        self._linger = first.linger
        self._cond = threading.Condition()
        self._pending: deque[Invoke] = deque()
        self._outstanding: dict[int, set[str]] = {}
        self._results: dict[int, dict[str, NodeResult]] = {}
        self._owner: dict[str, int] = {}
        self._completed: list[int] = []
        self._errors: dict[int, ErrorInfo] = {}
        self._closing = False
        self._schemas: set[Any] = set()
        self._selector: Any = None
        self._thread = threading.Thread(target=self._run, name="dbt-exec-core-session")

    # -- the worker's main thread ----------------------------------------------------------------

    def start(self) -> None:
        """Start the invocation on its own thread."""
        self._thread.start()

    def try_add(self, invoke: Invoke) -> bool:
        """Queue a request into the running session; ``False`` once the session is closing."""
        with self._cond:
            if self._closing or invoke.session != self.key:
                return False
            self._pending.append(invoke)
            self._cond.notify_all()
            return True

    def holds(self, batch_id: int) -> bool:
        """Whether ``batch_id`` is being served by this session."""
        with self._cond:
            return batch_id == self._first.batch_id or batch_id in self._outstanding

    def finish(self) -> None:
        """Take no more requests, and wait until the invocation has ended."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()

    # -- the session thread ----------------------------------------------------------------------

    def _run(self) -> None:
        outcome: Any = None
        error: ErrorInfo | None = None
        try:
            with (
                _speedups.serving(self),
                _speedups.exact_selection(self._first.requested),
                holding(self._duckdb_lock),
            ):
                outcome = self._invoke(self._args)
        except BaseException as exc:  # report it on every open request rather than hang them
            error = ErrorInfo.from_exception(exc)
        if outcome is not None and outcome.exception is not None:
            error = ErrorInfo.from_exception(outcome.exception)
        finals: dict[str, Any] = {}
        payload = getattr(outcome, "result", None)
        for item in getattr(payload, "results", None) or ():
            node = getattr(item, "node", None)
            if node is not None:
                finals[node.unique_id] = item
        with self._cond:
            self._closing = True
            if self._first.batch_id not in self._results:
                # dbt failed before the node loop: the first request is still open.
                self._register(self._first, set())
                self._outstanding[self._first.batch_id] = set(self._first.requested)
            for invoke in self._pending:  # arrived, never admitted
                self._register(invoke, set())
            self._pending.clear()
            for batch_id, nodes in self._outstanding.items():
                for uid in nodes:
                    if uid in finals:
                        logs = self.capture.node_logs.get(uid, ())
                        self._results[batch_id][uid] = _convert.result_from_run_result(
                            finals[uid], logs
                        )
                self._completed.append(batch_id)
            self._outstanding.clear()
            self._flush(error=error)

    def execute_nodes(self, task: Any) -> Any:
        """Replaces dbt's ``execute_nodes`` for this session's invocation."""
        from dbt.graph.thread_pool import DbtThreadPool
        from dbt_common.context import get_invocation_context

        pool = DbtThreadPool(
            task.config.threads, task._pool_thread_initializer, [get_invocation_context()]
        )
        try:
            self._serve(task, pool)
        finally:
            pool.close()
            pool.join()
        return task.node_results

    def _serve(self, task: Any, pool: Any) -> None:
        from dbt.adapters.factory import get_adapter

        adapter = get_adapter(task.config)
        queue = task.job_queue
        # Requests are independent: a failure never skips another request's node.
        task._mark_dependent_errors = lambda *args, **kwargs: None
        self._selector = task.get_node_selector(no_unit_tests=True)
        selected = set(queue.get_selected_nodes())
        self._schemas = set(task.get_model_schemas(adapter, selected))
        with self._cond:
            self._register(self._first, selected & set(self._first.requested))

        def finished(result: Any) -> None:
            task._handle_result(result)
            queue.mark_done(result.node.unique_id)
            self._node_finished(result)

        while True:
            self._admit(task, queue, adapter)
            if not queue.inner.empty():
                task.handle_job_queue(pool, finished)
                continue
            with self._cond:
                if self._pending:
                    continue
                if not self._outstanding:
                    if self._linger <= 0 or self._closing:
                        self._closing = True
                        return
                    # Lingering: answer now, then wait a while for the next request.
                    if self._completed:
                        self._flush(error=None)
                    self._cond.wait_for(lambda: self._pending or self._closing, self._linger)
                    if not self._pending:
                        self._closing = True
                        return
                    continue
                if self._completed:
                    self._flush(error=None)
                self._cond.wait()

    def _admit(self, task: Any, queue: Any, adapter: Any) -> None:
        """Add the requests that arrived to dbt's queue (on the session thread)."""
        with self._cond:
            arrived = list(self._pending)
            self._pending.clear()
        for invoke in arrived:
            try:
                graph = self._selector.full_graph.graph
                wanted = {uid for uid in invoke.requested if uid in graph}
                nodes = self._selector.filter_selection(wanted)
                self._manifest.reset_nodes(nodes)
                schemas = set(task.get_model_schemas(adapter, nodes)) - self._schemas
                if schemas:
                    with adapter.connection_named("master"):
                        task.create_schemas(adapter, schemas)
                        adapter._relations_cache_for_schemas([], schemas)
                    self._schemas |= schemas
            except Exception as exc:  # this request fails; the session goes on
                with self._cond:
                    self._register(invoke, set())
                    self._errors[invoke.batch_id] = ErrorInfo.from_exception(exc)
                continue
            with self._cond:
                self._register(invoke, nodes)
            with queue.lock:
                for uid in nodes:
                    queue.graph.add_node(uid)
                    queue._scores[uid] = 0
                queue._find_new_additions(list(nodes))
            task.num_nodes += len(nodes)

    def _register(self, invoke: Invoke, nodes: set[str]) -> None:
        """Track a request's nodes (caller holds the lock)."""
        self._results[invoke.batch_id] = {}
        if nodes:
            self._outstanding[invoke.batch_id] = set(nodes)
            for uid in nodes:
                self._owner[uid] = invoke.batch_id
        else:
            self._completed.append(invoke.batch_id)

    def _node_finished(self, result: Any) -> None:
        """A node finished (on dbt's result thread): answer its request."""
        uid = result.node.unique_id
        with self.capture.lock:
            logs = list(self.capture.node_logs.pop(uid, ()))
        node_result = _convert.result_from_run_result(result, logs)
        with self._cond:
            batch_id = self._owner.pop(uid, None)
            if batch_id is not None:
                self._results[batch_id][uid] = node_result
                self._send(NodeDone(batch_id=batch_id, result=node_result))
                nodes = self._outstanding.get(batch_id)
                if nodes is not None:
                    nodes.discard(uid)
                    if not nodes:
                        del self._outstanding[batch_id]
                        self._completed.append(batch_id)
            self._cond.notify_all()

    def _flush(self, *, error: ErrorInfo | None) -> None:
        """Send ``InvokeDone`` for completed requests (caller holds the lock)."""
        with self.capture.lock:
            logs: tuple[LogLine, ...] = tuple(self.capture.logs)
            self.capture.logs.clear()
        for batch_id in self._completed:
            results = self._results.pop(batch_id, {})
            own = self._errors.pop(batch_id, None) or error
            self._send(
                InvokeDone(
                    batch_id=batch_id,
                    success=own is None and not any(r.is_failure for r in results.values()),
                    results=results,
                    logs=logs,
                    error=own,
                )
            )
        self._completed.clear()
