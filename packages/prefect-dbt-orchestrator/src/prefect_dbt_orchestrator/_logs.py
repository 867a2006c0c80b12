"""Forwarding dbt's log lines to Prefect's run logger."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from dbt_graph import LogLine

_fallback = logging.getLogger("prefect_dbt_orchestrator.dbt")
_LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "warn": logging.WARNING,
    "error": logging.ERROR,
}


def run_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's logger for the current flow or task run, or a module logger outside a run."""
    from prefect.context import FlowRunContext, TaskRunContext
    from prefect.logging import get_run_logger

    task_run = TaskRunContext.get()
    if task_run is not None and task_run.task_run.flow_run_id is not None:
        return get_run_logger()
    if task_run is None and FlowRunContext.get() is not None:
        return get_run_logger()
    # Outside a flow run Prefect cannot ship logs to the API; log locally instead.
    return _fallback


def emit(
    lines: Iterable[LogLine],
    logger: logging.Logger | logging.LoggerAdapter | None = None,
    *,
    min_level: int = logging.INFO,
) -> None:
    """Log dbt's lines at their own level (lines below ``min_level`` are dropped)."""
    target = logger or run_logger()
    for line in lines:
        level = _LEVELS.get(line.level, logging.INFO)
        if level >= min_level:
            target.log(level, line.message)
