"""The worker process: one long-lived Python process that runs dbt invocations one at a time.

Forked from the zygote (:mod:`dbt_exec_core._zygote`) on Linux, else started as
``python -m dbt_exec_core._worker SOCKET_FD CONFIG_JSON``; either way a fresh interpreter, so the
caller's ``__main__`` is never re-imported. It keeps parsed manifests in memory and invokes
``dbtRunner(manifest=...)`` for every request, so an invocation pays neither interpreter
start-up nor parsing. dbt-core is not safe to invoke concurrently in one
process; the executor never sends a second invocation before the first is done.

Two threads: the main thread runs dbt; a listener thread reads the pipe, queues invocations and
handles :class:`~dbt_exec_core._protocol.Cancel` at once (dbt's own query cancellation, e.g.
``pg_terminate_backend`` on PostgreSQL), and exits the process when the parent goes away.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
from collections import OrderedDict
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from dbt_graph import ErrorInfo, LogLine, NodeResult, SourceFreshness

from dbt_exec_core import _convert, _dbt_manifest, _speedups
from dbt_exec_core._dbt_manifest import LoadedManifest
from dbt_exec_core._duckdb import holding
from dbt_exec_core._fingerprints import forget_inline_nodes, query_rows
from dbt_exec_core._protocol import (
    DEPS,
    FRESHNESS,
    LOAD,
    PARSE,
    QUERY,
    RUN,
    Cancel,
    Cancelled,
    EndSession,
    Invoke,
    InvokeDone,
    ManifestRef,
    NodeDone,
    Ready,
    SessionEnded,
    Stop,
)
from dbt_exec_core._session import Session

#: How many parsed manifests (targets/vars) a worker keeps in memory.
_KEPT_MANIFESTS = 3


class _Capture:
    """What one invocation's events produced."""

    def __init__(self, batch_id: int, requested: frozenset[str], manifest: Any) -> None:
        self.batch_id = batch_id
        self.requested = requested
        self.manifest = manifest
        self.node_logs: dict[str, list[LogLine]] = {}
        self.logs: list[LogLine] = []
        self.lock = threading.Lock()


class Worker:
    """Runs the invocations the parent sends over ``conn`` and replies on it."""

    def __init__(self, conn: Connection, config: Mapping[str, Any]) -> None:
        self._conn = conn
        self._send_lock = threading.Lock()
        self._inbox: queue.Queue[Invoke | EndSession | None] = queue.Queue()
        self._min_rank = _convert.level_rank(str(config.get("log_level", "info")))
        self._log_level = str(config.get("log_level", "info"))
        self._work_dir = str(config["work_dir"])
        self._manifests: OrderedDict[str, LoadedManifest] = OrderedDict()
        self._capture: _Capture | None = None
        self._session: Session | None = None

    def serve(self) -> None:
        """Import dbt, then run invocations until told to stop or the parent goes away."""
        threading.Thread(target=self._listen, name="dbt-exec-core-listener", daemon=True).start()
        warm_up()
        _speedups.install()
        _speedups.drop_events_below(self._log_level)
        self._send(Ready(pid=os.getpid()))
        while True:
            invoke = self._inbox.get()
            if invoke is None:
                self._end_session()
                return
            if isinstance(invoke, EndSession):
                self._end_session()
                self._send(SessionEnded(token=invoke.token))
                continue
            if self._session is not None:
                if invoke.session and self._session.try_add(invoke):
                    continue
                self._end_session()
            try:
                if invoke.session:
                    self._start_session(invoke)
                    continue
                done = self._handle(invoke)
            except BaseException as exc:  # a bug here must not leave the caller waiting
                done = InvokeDone(
                    batch_id=invoke.batch_id, success=False, error=ErrorInfo.from_exception(exc)
                )
            self._send(done)

    def _start_session(self, invoke: Invoke) -> None:
        os.environ.clear()
        os.environ.update(invoke.environ)
        assert invoke.manifest is not None
        loaded = self._manifest(invoke.manifest)
        loaded.reset_compile_state()
        capture = _Capture(-1, frozenset(), loaded.manifest)
        self._capture = capture

        def run(args: list[str]) -> Any:
            from dbt.cli.main import dbtRunner

            return dbtRunner(manifest=loaded.manifest, callbacks=[self._on_event]).invoke(args)

        self._session = Session(
            invoke,
            manifest=loaded,
            args=[*invoke.args, "--target-path", self._work_dir],
            send=self._send,
            capture=capture,
            invoke=run,
        )
        self._session.start()

    def _end_session(self) -> None:
        if self._session is not None:
            self._session.finish()
            self._session = None
            self._capture = None

    def _listen(self) -> None:
        while True:
            try:
                message = self._conn.recv()
            except (EOFError, OSError):
                os._exit(0)  # the parent is gone: nobody will read our results
            if isinstance(message, (Invoke, EndSession)):
                self._inbox.put(message)
            elif isinstance(message, Cancel):
                self._cancel(message.batch_id)
            elif isinstance(message, Stop):
                self._inbox.put(None)
                return

    def _send(self, message: object) -> None:
        with self._send_lock:
            self._conn.send(message)

    def _handle(self, invoke: Invoke) -> InvokeDone:
        os.environ.clear()
        os.environ.update(invoke.environ)
        loaded = None
        if invoke.kind == LOAD:
            loaded = self._load_json(invoke)
        elif invoke.manifest is not None:
            loaded = self._manifest(invoke.manifest)
            loaded.reset_compile_state()
        args = list(invoke.args)
        if invoke.kind not in (PARSE, DEPS):
            # Every worker writes into a directory of its own: no races on run_results.json,
            # compiled SQL or partial_parse.msgpack between concurrent invocations.
            args += ["--target-path", self._work_dir]
        capture = _Capture(invoke.batch_id, invoke.requested, loaded.manifest if loaded else None)
        self._capture = capture
        try:
            with holding(invoke.duckdb_lock):
                outcome = self._invoke(args, capture, invoke.kind)
        finally:
            self._capture = None
        return self._finish(invoke, capture, outcome, loaded)

    def _invoke(self, args: list[str], capture: _Capture, kind: str) -> Any:
        from dbt.cli.main import dbtRunner

        runner = dbtRunner(manifest=capture.manifest, callbacks=[self._on_event])
        if kind not in (RUN, LOAD):
            return runner.invoke(args)
        with _speedups.exact_selection(capture.requested):
            return runner.invoke(args)

    def _finish(self, invoke: Invoke, capture: _Capture, outcome: Any, loaded: Any) -> InvokeDone:
        error = None
        if outcome.exception is not None:
            error = ErrorInfo(
                type=type(outcome.exception).__name__,
                message=str(outcome.exception) or type(outcome.exception).__name__,
            )
        elif not outcome.success and invoke.kind in (PARSE, DEPS, LOAD):
            errors = [line.message for line in capture.logs if line.level == "error"]
            error = ErrorInfo(
                type="DbtError", message="\n".join(errors) or f"dbt {invoke.kind} failed"
            )
        info: dict[str, Any] = {}
        payload = outcome.result
        if invoke.kind == PARSE and outcome.success and payload is not None:
            info = self._store_parsed(invoke, payload)
        elif invoke.kind == LOAD and outcome.success:
            info = _dbt_manifest.adapter_info(loaded.manifest, check_packages=True)
        elif invoke.kind == QUERY:
            forget_inline_nodes(loaded.manifest if loaded is not None else None)
            info = {"rows": query_rows(payload)}
        return InvokeDone(
            batch_id=invoke.batch_id,
            success=bool(outcome.success),
            results=_results(invoke.kind, payload, capture),
            logs=tuple(capture.logs),
            error=error,
            info=info,
            freshness=_freshness(payload) if invoke.kind == FRESHNESS else {},
        )

    def _on_event(self, event: Any) -> None:
        capture = self._capture
        if capture is None:
            return
        name = event.info.name
        if name == "NodeFinished":
            uid = event.data.node_info.unique_id
            if uid in capture.requested:
                node = None
                if capture.manifest is not None:
                    node = capture.manifest.nodes.get(uid)
                with capture.lock:
                    logs = list(capture.node_logs.get(uid, ()))
                result = _convert.result_from_event(event, node, logs)
                self._send(NodeDone(batch_id=capture.batch_id, result=result))
            return
        line = _convert.log_line(event, self._min_rank)
        if line is None:
            return
        with capture.lock:
            if line.node_id is None:
                capture.logs.append(line)
            else:
                capture.node_logs.setdefault(line.node_id, []).append(line)

    def _cancel(self, batch_id: int) -> None:
        capture, session = self._capture, self._session
        if capture is not None and (
            capture.batch_id == batch_id or (session is not None and session.holds(batch_id))
        ):
            try:
                from dbt.adapters.factory import FACTORY

                adapters: list[Any] = list(FACTORY.adapters.values())  # SQL adapters
                for adapter in adapters:
                    if adapter.is_cancelable():
                        with adapter.connection_named("dbt-exec-core-cancel"):
                            adapter.cancel_open_connections()
            except Exception:  # the process is killed next; cancelling is best effort
                pass
        self._send(Cancelled(batch_id))

    def _manifest(self, ref: ManifestRef) -> LoadedManifest:
        loaded = self._manifests.get(ref.key)
        if loaded is None or loaded.digest != ref.digest:
            loaded = _dbt_manifest.load(ref.pickle_path, ref.digest)
        self._keep(ref.key, loaded)
        return loaded

    def _keep(self, key: str, loaded: LoadedManifest) -> None:
        self._manifests[key] = loaded
        self._manifests.move_to_end(key)
        while len(self._manifests) > _KEPT_MANIFESTS:
            self._manifests.popitem(last=False)

    def _load_json(self, invoke: Invoke) -> LoadedManifest:
        assert invoke.source and invoke.pickle_to and invoke.digest
        manifest = _dbt_manifest.from_json(invoke.source)
        loaded = _dbt_manifest.store(manifest, invoke.pickle_to, invoke.digest)
        self._keep(Path(invoke.pickle_to).parent.name, loaded)
        return loaded

    def _store_parsed(self, invoke: Invoke, manifest: Any) -> dict[str, Any]:
        assert invoke.pickle_to is not None and invoke.digest is not None
        loaded = _dbt_manifest.store(manifest, invoke.pickle_to, invoke.digest)
        self._keep(Path(invoke.pickle_to).parent.name, loaded)
        return _dbt_manifest.adapter_info(manifest)


def _results(kind: str, payload: Any, capture: _Capture) -> dict[str, NodeResult]:
    """dbt's final result per node of a ``run`` invocation."""
    results: dict[str, NodeResult] = {}
    if kind != RUN or not hasattr(payload, "results"):
        return results
    for item in payload.results:
        node = getattr(item, "node", None)
        if node is not None:
            logs = capture.node_logs.get(node.unique_id, ())
            results[node.unique_id] = _convert.result_from_run_result(item, logs)
    return results


def _freshness(payload: Any) -> dict[str, SourceFreshness]:
    """The freshness per source of a ``dbt source freshness`` invocation."""
    found = {}
    for item in getattr(payload, "results", None) or ():
        if getattr(item, "node", None) is not None:
            fresh = _convert.freshness_from_result(item)
            found[fresh.unique_id] = fresh
    return found


def quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker now, with its warnings off.

    dbt gives every Manifest a multiprocessing lock (a named semaphore). Workers end by being
    killed or by ``os._exit``, so the tracker, not the worker, cleans those semaphores up, and
    would print a "leaked semaphore" warning for each batch of them on the caller's stderr.
    """
    from multiprocessing import resource_tracker

    previous = os.environ.get("PYTHONWARNINGS")
    os.environ["PYTHONWARNINGS"] = "ignore"
    try:
        resource_tracker.ensure_running()
    finally:
        if previous is None:
            del os.environ["PYTHONWARNINGS"]
        else:
            os.environ["PYTHONWARNINGS"] = previous


def warm_up() -> None:
    """Import what every invocation needs (the expensive part of starting a worker)."""
    import dbt.cli.main
    import dbt.task.build  # noqa: F401


def main(argv: list[str]) -> None:
    """Entry point: ``SOCKET_FD CONFIG_JSON``."""
    # The parent decides when work stops; Ctrl-C in a terminal reaches the whole process group.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_resource_tracker()
    Worker(Connection(int(argv[0])), json.loads(argv[1])).serve()


if __name__ == "__main__":
    main(sys.argv[1:])
