"""One unconfirmed answer, in each phase of create, trigger and delete: no leaked job, no rerun.

Every answer that leaves open whether dbt Cloud acted (408, 409, 425, 429, 5xx, a read timeout,
a dropped connection) is injected before the service acted and after it (the answer lost). The
build must succeed with exactly one job and one run, and leave no job behind.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from dbt_exec_cloud import DbtCloudExecutor
from dbt_graph import Command, ExecutionRequest, NodeStatus
from exec_cloud.fake_cloud import UNCONFIRMED_STATUSES, FakeDbtCloud, Fault

ORDERS = "model.shop.orders"

CALLS = {
    "create": ("POST", r"^/jobs/$", "POST /jobs/", "GET /jobs/"),
    "trigger": ("POST", r"^/jobs/\d+/run/$", "POST /jobs/{id}/run/", "GET /runs/"),
    "delete": ("DELETE", r"^/jobs/\d+/$", "DELETE /jobs/{id}/", None),
}
ANSWERS: dict[str, Callable[[bool], Fault]] = {
    **{
        str(code): (lambda acted, code=code: Fault(status=code, after_acting=acted))
        for code in UNCONFIRMED_STATUSES
    },
    "read-timeout": lambda acted: Fault(
        error=httpx.ReadTimeout("read timed out"), after_acting=acted
    ),
    "dropped-connection": lambda acted: Fault(
        error=httpx.RemoteProtocolError("server disconnected"), after_acting=acted
    ),
}


@pytest.fixture
def executor(make_executor, fake: FakeDbtCloud) -> DbtCloudExecutor:
    """An executor whose manifest is resolved; the fake's call log starts empty."""
    built = make_executor()
    built.resolve_manifest()
    fake.calls.clear()
    return built


def _build(executor: DbtCloudExecutor, fake: FakeDbtCloud) -> NodeStatus:
    request = ExecutionRequest(command=Command.RUN, nodes=(fake.manifest.node(ORDERS),))
    with executor.run_scope():
        result = executor.execute(request)
    assert set(result.results) == {ORDERS}
    return result.results[ORDERS].status


@pytest.mark.parametrize("acted", [False, True], ids=["before-acting", "after-acting"])
@pytest.mark.parametrize("answer", list(ANSWERS))
@pytest.mark.parametrize("call", list(CALLS))
def test_an_unconfirmed_answer_leaks_no_job_and_runs_the_node_once(
    executor: DbtCloudExecutor,
    fake: FakeDbtCloud,
    caplog: pytest.LogCaptureFixture,
    call: str,
    answer: str,
    acted: bool,
) -> None:
    caplog.set_level(logging.INFO, logger="dbt_exec_cloud")
    method, path, route, lookup = CALLS[call]
    fake.fail(method, path, ANSWERS[answer](acted))

    assert _build(executor, fake) is NodeStatus.SUCCESS

    routes = fake.routes()
    assert fake.active_jobs() == []
    assert routes.count("POST /jobs/") == 1 + (call == "create" and not acted)
    assert routes.count("POST /jobs/{id}/run/") == 1 + (call == "trigger" and not acted)
    assert len(fake.jobs) == 2  # the compile job and this one: never a second
    assert Counter(r["job_id"] for r in fake.runs.values()).most_common(1)[0][1] == 1
    if lookup is not None:
        # Before sending again, the executor asked whether the first attempt had acted.
        first = routes.index(route)
        assert routes[first + 1] == lookup
    if call == "delete":
        assert routes.count("DELETE /jobs/{id}/") == 2
    assert "deleted 0 leftover job(s)" in caplog.text


@pytest.mark.parametrize("call", list(CALLS))
def test_a_refused_connection_is_sent_again_without_a_lookup(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, call: str
) -> None:
    method, path, route, lookup = CALLS[call]
    fake.fail(method, path, Fault(error=httpx.ConnectError("connection refused")))

    assert _build(executor, fake) is NodeStatus.SUCCESS

    routes = fake.routes()
    assert routes.count(route) == 2
    if lookup is not None:
        assert routes[routes.index(route) + 1] == route
    assert fake.active_jobs() == []


@pytest.mark.parametrize("code", [408, 409, 425, 429, 503])
def test_an_unconfirmed_answer_on_every_attempt_still_finds_the_job_created_by_the_first(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, code: int
) -> None:
    fake.fail("POST", r"^/jobs/$", *[Fault(status=code, after_acting=True)] * 6)

    assert _build(executor, fake) is NodeStatus.SUCCESS

    assert fake.routes().count("POST /jobs/") == 1
    assert fake.active_jobs() == []


def test_a_lost_create_whose_lookup_fails_is_an_invocation_error_and_the_job_is_swept(
    make_executor, fake: FakeDbtCloud, caplog: pytest.LogCaptureFixture
) -> None:
    from dbt_exec_cloud import RetryPolicy

    caplog.set_level(logging.INFO, logger="dbt_exec_cloud")
    executor = make_executor(retry=RetryPolicy(max_attempts=1, jitter=0.0))
    executor.resolve_manifest()
    fake.fail("POST", r"^/jobs/$", Fault(status=429, after_acting=True))
    # The lookup after the 429, then the lookup to delete it by name, both fail.
    fake.fail("GET", r"^/jobs/$", Fault(status=503), Fault(status=503))
    request = ExecutionRequest(command=Command.RUN, nodes=(fake.manifest.node(ORDERS),))

    with executor.run_scope():
        result = executor.execute(request)
        assert len(fake.active_jobs()) == 1  # nobody could find it yet

    assert result.error is not None and result.error.type == "ServerError"
    assert result.results[ORDERS].status is NodeStatus.ERROR
    assert fake.active_jobs() == []
    (leftover,) = [j for j in fake.jobs.values() if "-run-orders-" in j["name"]]
    assert f"deleted 1 leftover job(s) [{leftover['id']}]" in caplog.text
