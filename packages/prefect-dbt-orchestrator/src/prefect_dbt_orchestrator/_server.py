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
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect.settings.context import SettingKey  # a setting, or its dotted name

#: Defaults for a server we start; ``prefect config set`` or environment variables override.
SERVER_DEFAULTS: dict[SettingKey, Any] = {
    "server.analytics_enabled": False,
    "server.services.task_run_recorder.batch_size": 200,
    "server.services.task_run_recorder.flush_interval": 1,
}


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
    return server
