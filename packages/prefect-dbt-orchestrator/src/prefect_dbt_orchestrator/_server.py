"""Prefect's temporary local server, when we are the ones who start it.

With no ``PREFECT_API_URL``, Prefect starts a throwaway local server on first use. We start it
ourselves, once and up front (the CLI, and PER_NODE runs outside a flow), so that every thread
and worker process reports to the same one, and so that it suits a per-node dbt run:

* a startup timeout for a loaded machine (a first start runs database migrations);
* no analytics (a throwaway server has nothing to report, and maybe no internet);
* the task run recorder writes task runs in batches of up to 200, at least every second.
  Its default writes each task run state event in a transaction of its own, which costs more
  CPU than the dbt nodes themselves on a small machine (``benchmarks/README.md``).

A user's own value for any of these settings wins (they are set as defaults only).

Such a server, and Prefect's own temporary server in a flow run without ``PREFECT_API_URL``,
also runs at a lower CPU priority (``nice`` +10) from the start of a build: recording task
runs, events and logs can lag, the dbt nodes and the flow that dispatches them cannot. On a
machine whose CPUs dbt keeps busy, a PER_NODE build at 2,000 models went from 1.17x to
1.0x of plain ``dbt build`` (``benchmarks/README.md``).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from uuid import UUID

    from prefect.settings.context import SettingKey  # a setting, or its dotted name

#: Defaults for a server we start; ``prefect config set`` or environment variables override.
SERVER_DEFAULTS: dict[SettingKey, Any] = {
    "server.analytics_enabled": False,
    "server.services.task_run_recorder.batch_size": 200,
    "server.services.task_run_recorder.flush_interval": 1,
}

#: How much lower than ours the CPU priority of a local server is (Unix ``nice``).
SERVER_NICENESS = 10


def needs_local_server() -> bool:
    """Whether Prefect would start a temporary server (no API configured, ephemeral allowed)."""
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    return not settings.api.url and settings.server.ephemeral.enabled


def start_local_server(min_timeout: int) -> Any:
    """Start (or find running) Prefect's temporary server; returns it (``.api_url``)."""
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import get_current_settings, temporary_settings

    timeout = max(get_current_settings().server.ephemeral.startup_timeout_seconds, min_timeout)
    server = SubprocessASGIServer()  # the running one, if a flow already started it
    with temporary_settings(set_defaults=SERVER_DEFAULTS):
        server.start(timeout=timeout)
    process = getattr(server, "server_process", None)
    if process is not None:
        lower_priority(process.pid)
    return server


def deprioritize_local_server() -> None:
    """Lower the CPU priority of Prefect's temporary local server, if this process started one.

    A build against such a server calls it: in a flow run without ``PREFECT_API_URL``, Prefect
    starts the server itself (or ``prefect_test_harness`` does), not :func:`start_local_server`.
    A server elsewhere is left alone, and so is everything where Prefect's server module was
    never imported.
    """
    module = sys.modules.get("prefect.server.api.server")
    instances = getattr(getattr(module, "SubprocessASGIServer", None), "_instances", None)
    server = instances.get(None) if isinstance(instances, dict) else None
    process = getattr(server, "server_process", None)
    if process is not None and process.poll() is None:
        lower_priority(process.pid)


def lower_priority(pid: int) -> None:
    """Give process ``pid`` a CPU priority :data:`SERVER_NICENESS` below this process's own
    (where the platform has ``nice``; raising a niceness needs no privilege)."""
    if not hasattr(os, "setpriority"):  # Windows
        return
    niceness = min(os.getpriority(os.PRIO_PROCESS, 0) + SERVER_NICENESS, 19)
    with contextlib.suppress(OSError):  # the process ended meanwhile
        os.setpriority(os.PRIO_PROCESS, pid, niceness)


def wait_until_recorded(flow_run_id: UUID, *, timeout: float = 30.0) -> bool:
    """Wait until the server has recorded the task runs of ``flow_run_id`` it was sent.

    Call it before stopping a local server: its task run recorder writes in batches (at least
    every flush interval), and stopping it mid-batch prints a traceback, although the batch is
    written on the way out. Done when the number of task runs, and of those in a final state,
    stays the same across more than one flush interval.

    Returns:
        Whether that happened within ``timeout`` seconds (otherwise it gives up quietly).
    """
    from prefect.client.orchestration import get_client
    from prefect.settings import get_current_settings, temporary_settings

    with temporary_settings(set_defaults=SERVER_DEFAULTS):  # as the server was started
        interval = get_current_settings().server.services.task_run_recorder.flush_interval
    pause = max(float(interval), 0.5) + 0.2
    final = ["COMPLETED", "FAILED", "CRASHED", "CANCELLED"]
    deadline = time.monotonic() + timeout
    seen: tuple[int, int] | None = None
    with get_client(sync_client=True) as client:

        def count(**states: Any) -> int:
            body: dict[str, Any] = {"flow_runs": {"id": {"any_": [str(flow_run_id)]}}}
            if states:
                body["task_runs"] = {"state": {"type": states}}
            response = client.request("POST", "/task_runs/count", json=body)
            response.raise_for_status()
            return int(response.json())

        while time.monotonic() < deadline:
            try:
                now = (count(), count(any_=final))
            except Exception:  # the build is over: a server that cannot answer is not waited for
                return False
            if now == seen:
                return True
            seen = now
            time.sleep(pause)
    return False
