"""The Prefect side of a PER_NODE run: the task runner, the Prefect API every worker reports
to, and the checks and quoting that go with them."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext, suppress
from typing import Any

from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from prefect.utilities.annotations import quote

from prefect_dbt_orchestrator._context import RunOptions
from prefect_dbt_orchestrator._server import needs_local_server, start_local_server


def make_runner(options: RunOptions, widest_wave: int) -> Any:
    """The task runner to submit node tasks to, sized for the run."""
    cls: Any = options.task_runner_type or ThreadPoolTaskRunner
    if not isinstance(cls, type):
        return cls.duplicate()  # a configured instance: a fresh copy, so it never holds a client
    workers = runner_width(options, widest_wave)
    params = inspect.signature(cls).parameters
    if "max_workers" in params:
        return cls(max_workers=workers)
    if "cluster_kwargs" in params:  # prefect-dask's DaskTaskRunner
        return cls(cluster_kwargs={"n_workers": workers, "threads_per_worker": 1})
    return cls()


def runner_width(options: RunOptions, widest_wave: int) -> int:
    """How many node tasks the run's task runner runs at once (:func:`make_runner`'s size)."""
    if isinstance(options.concurrency, int):
        return max(1, options.concurrency)
    if isinstance(options.concurrency, str):
        return max(1, min(widest_wave, os.cpu_count() or 4))
    return max(1, widest_wave)


def in_flight_cap(options: RunOptions, widest_wave: int) -> int | None:
    """How many nodes the scheduler keeps in flight: as many as the task runner runs at once.

    More would wait in the runner's own first-in-first-out queue, out of the scheduler's
    order. ``None`` (no cap) for a task runner passed in configured, whose size is its own.
    """
    if options.max_in_flight is not None:
        return options.max_in_flight
    cls = options.task_runner_type or ThreadPoolTaskRunner
    return runner_width(options, widest_wave) if isinstance(cls, type) else None


def check_concurrency_limit(name: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            raise ValueError(
                f"The Prefect global concurrency limit {name!r} does not exist. Create it first "
                f"(`prefect gcl create {name} --limit 4`), or pass concurrency as an int."
            ) from None


@contextmanager
def shared_api() -> Iterator[None]:
    """Make every task, in any thread or worker process, use one Prefect API.

    With no API URL configured, Prefect runs a temporary local server; started lazily from
    several threads, or from process-pool and Dask workers that do not know its address, each
    would start one of its own. So it is started once here, up front, and its address is put in
    the environment that worker processes inherit.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if not needs_local_server():
        yield
        return
    server = start_local_server(min_timeout=120)
    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = server.api_url
    try:
        with temporary_settings({PREFECT_API_URL: server.api_url}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


def quiet_outside_flows() -> Any:
    """Outside a flow run, task logs stay local instead of warning that they cannot be sent."""
    from prefect.context import FlowRunContext
    from prefect.settings import PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW, temporary_settings

    if FlowRunContext.get() is not None:
        return nullcontext()
    return temporary_settings({PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW: "ignore"})


@contextmanager
def one_client_outside_flows() -> Iterator[None]:
    """Outside a flow run, let every task run in this process share one Prefect client.

    In a flow run, the flow's engine holds the client its task runs share. Outside one, each
    task run makes two of its own (a new SSL context and connection each): 51 ms per node
    without dbt, against 12 in a flow, and 19 with one shared client (``benchmarks/README.md``,
    "PER_NODE outside a flow"; what is left is Prefect reading the server's default result
    storage for every orphan task run). The client is made against the API in effect here, so
    enter this after :func:`shared_api`. Threads of Prefect's thread pool see it (they run in a
    copy of the submitter's context); worker processes make their own. An API out of reach is
    left for the task runs to report, as before.
    """
    from prefect.context import FlowRunContext, SyncClientContext

    with ExitStack() as stack:
        if FlowRunContext.get() is None:
            # "Failed to reach API at ...": left for each task run to say, as before.
            with suppress(RuntimeError):
                stack.enter_context(SyncClientContext.get_or_create())
        yield


def opaque_for(runner: Any) -> Any:
    """``quote`` for Prefect's own task runners: they would otherwise walk every field of a
    parameter looking for futures. Dask takes a quote (a tuple) apart, so it gets values as
    they are."""
    if isinstance(runner, (ThreadPoolTaskRunner, ProcessPoolTaskRunner)):
        return quote
    return lambda value: value
