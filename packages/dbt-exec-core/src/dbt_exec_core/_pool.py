"""The parent's handle on one worker process."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

from dbt_exec_core._protocol import Stop


class WorkerHandle:
    """Starts ``python -m dbt_exec_core._worker`` and relays its messages.

    Messages are read on a daemon thread and handed to ``on_message(handle, message)``; when the
    process exits, ``on_exit(handle)`` is called once.

    Attributes:
        index: A number for names and logs.
        work_dir: The worker's own dbt target directory (removed when it exits).
        batch: The invocation it is running, or ``None`` when idle (set by the scheduler).
        keys: Manifest keys the worker has loaded (for affinity).
    """

    def __init__(
        self,
        index: int,
        *,
        log_level: str,
        on_message: Callable[[WorkerHandle, Any], None],
        on_exit: Callable[[WorkerHandle], None],
    ) -> None:
        self.index = index
        self.work_dir = tempfile.mkdtemp(prefix=f"dbt-exec-core-w{index}-")
        self.batch: Any = None
        self.keys: set[str] = set()
        self.dying = False
        self._on_message = on_message
        self._on_exit = on_exit
        self._send_lock = threading.Lock()
        child_in, parent_out = os.pipe()
        parent_in, child_out = os.pipe()
        config = json.dumps({"work_dir": self.work_dir, "log_level": log_level})
        try:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "dbt_exec_core._worker",
                    str(child_in),
                    str(child_out),
                    config,
                ],
                pass_fds=(child_in, child_out),
                stdin=subprocess.DEVNULL,
            )
        except BaseException:
            os.close(parent_out)
            os.close(parent_in)
            shutil.rmtree(self.work_dir, ignore_errors=True)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        self._out = Connection(parent_out, readable=False)
        self._in = Connection(parent_in, writable=False)
        self._reader = threading.Thread(
            target=self._read, name=f"dbt-exec-core-reader-{index}", daemon=True
        )
        self._reader.start()

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def send(self, message: object) -> None:
        """Send a message; raises ``OSError`` if the worker is gone."""
        with self._send_lock:
            self._out.send(message)

    def kill(self) -> None:
        """Kill the process now (SIGKILL); ``on_exit`` follows from the reader thread."""
        self.dying = True
        with contextlib.suppress(OSError):
            self.process.kill()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the worker to exit, kill it if it does not within ``timeout``, and wait."""
        self.dying = True
        with contextlib.suppress(OSError):
            self.send(Stop())
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            self.process.wait()
        self._reader.join(timeout)

    def _read(self) -> None:
        try:
            while True:
                try:
                    message = self._in.recv()
                except (EOFError, OSError):
                    break
                self._on_message(self, message)
        finally:
            self.process.wait()
            self._in.close()
            with contextlib.suppress(OSError):
                self._out.close()
            shutil.rmtree(self.work_dir, ignore_errors=True)
            self._on_exit(self)
