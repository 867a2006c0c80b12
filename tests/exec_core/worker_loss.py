"""Helpers for losing a dbt worker mid-build: a model that runs until killed, and the killer.

The ``stuck`` model writes a marker file from its pre-hook (so the test knows it is running)
and then computes for minutes. :class:`Killer` waits for the marker, finds the worker process by
the DuckDB file it holds open (``/proc``, Linux), and kills it with SIGKILL.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

#: How long to wait for the stuck model to start (a test bug beyond this, not a margin).
PATIENCE = 180.0


def stuck_model(marker: Path) -> str:
    """SQL of a DuckDB model that writes ``marker`` when it starts, then runs until killed."""
    hook = f"copy (select 1 as started) to '{marker}' (header)"
    return (
        f'{{{{ config(materialized="table", pre_hook="{hook}") }}}}\n'
        "select sum(a.range * b.range) as n from range(1000000) a, range(1000000) b\n"
    )


def holders(path: Path) -> list[int]:
    """The pids of other processes that have ``path`` open."""
    found = []
    target = str(path.resolve())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            links = [os.readlink(fd) for fd in (entry / "fd").iterdir()]
        except OSError:
            continue  # gone, or not ours to read
        if target in links:
            found.append(int(entry.name))
    return found


class Killer:
    """Kills the worker running the stuck model, from a thread of its own.

    Attributes:
        pid: The worker it killed.
        killed_at: ``time.time()`` right after the kill.
    """

    def __init__(self, marker: Path, database: Path) -> None:
        self.pid: int | None = None
        self.killed_at: float | None = None
        self._marker = marker
        self._database = database
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        deadline = time.monotonic() + PATIENCE
        while time.monotonic() < deadline:
            if self._marker.exists():
                pids = holders(self._database)
                if len(pids) == 1:
                    os.kill(pids[0], signal.SIGKILL)
                    self.pid, self.killed_at = pids[0], time.time()
                    return
            time.sleep(0.05)

    def join(self) -> int:
        """Wait for the kill; return the killed pid."""
        self._thread.join(PATIENCE)
        assert self.pid is not None, "the stuck model never started, or no worker held the file"
        return self.pid
