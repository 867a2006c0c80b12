"""Starting worker processes, and the parent's link to each of them.

On Linux a worker is forked from a per-process zygote that has dbt imported (milliseconds per
worker once the zygote is up); elsewhere each worker is a fresh ``python -m
dbt_exec_core._worker``. Either way the parent talks to it over one socket pair.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from dbt_exec_core._errors import WorkerError
from dbt_exec_core._protocol import Stop


class _Zygote:
    """The parent's side of the zygote process (:mod:`dbt_exec_core._zygote`)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "dbt_exec_core._zygote", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
            )
        finally:
            theirs.close()
        self._socket = ours
        self._lock = threading.Lock()
        self._ready = False

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def fork(self, config: dict[str, Any]) -> tuple[Connection, int]:
        """Fork a worker; returns the parent's connection to it and its pid."""
        with self._lock:
            if not self._ready:
                if self._socket.recv(16) != b"ready":
                    raise WorkerError(
                        "The dbt worker zygote process failed to start (see its error output "
                        "above); check that dbt-core and the adapter import in this environment."
                    )
                self._ready = True
            ours, theirs = socket.socketpair()
            try:
                socket.send_fds(self._socket, [json.dumps(config).encode()], [theirs.fileno()])
            finally:
                theirs.close()
            reply = self._socket.recv(32)
        if not reply:
            ours.close()
            raise WorkerError("The dbt worker zygote process exited.")
        return Connection(ours.detach()), int(reply)

    def close(self) -> None:
        self._socket.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)
        if self.alive:
            self.process.kill()


_zygote: _Zygote | None = None
_zygote_pid = 0
_zygote_lock = threading.Lock()


def _launch(config: dict[str, Any]) -> tuple[Connection, int, subprocess.Popen | None]:
    """Start a worker: fork it from the zygote on Linux, else run a new interpreter."""
    global _zygote, _zygote_pid
    if sys.platform == "linux":
        for attempt in range(2):
            with _zygote_lock:
                # A zygote belongs to the process that started it (not to a fork of it).
                if _zygote is None or _zygote_pid != os.getpid() or not _zygote.alive:
                    _zygote, _zygote_pid = _Zygote(), os.getpid()
                zygote = _zygote
            try:
                conn, pid = zygote.fork(config)
                return conn, pid, None
            except (OSError, WorkerError):
                if attempt:
                    raise
                with _zygote_lock:
                    if _zygote is zygote:
                        _zygote = None
    ours, theirs = socket.socketpair()
    try:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dbt_exec_core._worker",
                str(theirs.fileno()),
                json.dumps(config),
            ],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
    finally:
        theirs.close()
    return Connection(ours.detach()), process.pid, process


class WorkerLink(Protocol):
    """A started worker, as the scheduler drives it (a process, or an in-process fake in tests).

    Messages from the worker go to the ``on_message`` callback it was started with; when it
    has exited (or failed to start), ``on_exit(detail)`` is called once, ``detail`` saying why
    when known (``"exit code -9"``, ``"it could not be started: ..."``).
    """

    @property
    def pid(self) -> int | None:
        """The process id once started (``None`` before, or for an in-process worker)."""
        ...

    def send(self, message: object) -> None:
        """Send a message; raises ``OSError`` once the worker is gone."""
        ...

    def kill(self) -> None:
        """Stop the worker now, whatever it is doing; ``on_exit`` follows."""
        ...

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to finish and exit; kill it after ``timeout``; wait for it."""
        ...


class WorkerFactory(Protocol):
    """Starts worker number ``index``; the scheduler's only way of making workers."""

    def __call__(
        self,
        index: int,
        *,
        log_level: str,
        on_message: Callable[[object], None],
        on_exit: Callable[[str], None],
    ) -> WorkerLink: ...


class ProcessWorker:
    """One worker process (the default :class:`WorkerFactory`).

    The process is started on a background thread (the first start waits for dbt to import);
    messages sent before it is up are queued. The worker writes dbt's files into a directory
    of its own, removed when it exits.
    """

    def __init__(
        self,
        index: int,
        *,
        log_level: str,
        on_message: Callable[[object], None],
        on_exit: Callable[[str], None],
    ) -> None:
        self.index = index
        self.work_dir = tempfile.mkdtemp(prefix=f"dbt-exec-core-w{index}-")
        self._pid: int | None = None
        self._config = {"work_dir": self.work_dir, "log_level": log_level}
        self._on_message = on_message
        self._on_exit = on_exit
        self._send_lock = threading.Lock()
        self._conn: Connection | None = None
        self._process: subprocess.Popen | None = None
        self._outbox: list[object] = []
        self._closed = False
        self._kill_requested = False
        self._thread = threading.Thread(
            target=self._run, name=f"dbt-exec-core-worker-{index}", daemon=True
        )
        self._thread.start()

    @property
    def pid(self) -> int | None:
        return self._pid

    def send(self, message: object) -> None:
        """Send a message (queued until the worker is up); ``OSError`` if it is gone."""
        with self._send_lock:
            if self._closed:
                raise OSError("the dbt worker process is gone")
            if self._conn is None:
                self._outbox.append(message)
            else:
                self._conn.send(message)

    def kill(self) -> None:
        """Kill the process now (SIGKILL); ``on_exit`` follows."""
        with self._send_lock:
            self._kill_requested = True
            pid = self._pid
        if pid is not None:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit; kill it if it has not within ``timeout``; wait for it."""
        with contextlib.suppress(OSError):
            self.send(Stop())
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.kill()
            self._thread.join(timeout)

    def _run(self) -> None:
        try:
            conn, pid, process = _launch(self._config)
        except Exception as exc:
            self._finish(f"it could not be started: {exc}")
            return
        with self._send_lock:
            self._conn, self._pid, self._process = conn, pid, process
            try:
                for message in self._outbox:
                    conn.send(message)
            except OSError:
                pass
            self._outbox.clear()
        if self._kill_requested:
            self.kill()  # kill() arrived while it was starting
        detail = ""
        try:
            while True:
                try:
                    message = conn.recv()
                except (EOFError, OSError):
                    break
                self._on_message(message)
        finally:
            if process is not None:
                detail = f"exit code {process.wait()}"
            conn.close()
            self._finish(detail)

    def _finish(self, detail: str) -> None:
        with self._send_lock:
            self._closed = True
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self._on_exit(detail)
