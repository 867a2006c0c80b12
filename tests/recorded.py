"""Reading back what a Prefect server recorded of a flow run.

Prefect 3's server writes task runs from the events its clients send, in batches and in the
background: a flow run can be over before its task runs are readable. Tests that read them
wait here until every expected task run is there and final, instead of reading once.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId


def recorded_task_runs(
    flow_run_id: UUID | str, expected: int, *, timeout: float = 120
) -> list[Any]:
    """The task runs of ``flow_run_id``, once ``expected`` of them are recorded in a final state.

    Gives up after ``timeout`` seconds and returns what is there, for the caller's assertion to
    show what was missing.
    """
    run = UUID(str(flow_run_id))
    deadline = time.monotonic() + timeout
    while True:
        with get_client(sync_client=True) as client:
            runs = client.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run]))
            )
        final = [r for r in runs if r.state is not None and r.state.is_final()]
        if len(final) >= expected or time.monotonic() > deadline:
            return runs
        time.sleep(0.5)
