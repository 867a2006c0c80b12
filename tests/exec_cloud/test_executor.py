"""DbtCloudExecutor against the fake dbt Cloud: lifecycle, statuses, results, cleanup."""

from __future__ import annotations

import json
import re
import shlex
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from dbt_exec_cloud import DbtCloudCredentials, DbtCloudExecutor, JobNotDeletedWarning, RetryPolicy
from dbt_exec_cloud._artifacts import NOT_REPORTED
from dbt_graph import Command, ExecutionRequest, NodeStatus, node_selector
from exec_cloud.fake_cloud import HOST, FakeDbtCloud, Fault

ORDERS = "model.shop.orders"
STG_ORDERS = "model.shop.stg_orders"
STG_PAYMENTS = "model.shop.stg_payments"
INT_PAYMENTS = "model.shop.int_order_payments"
RAW_ORDERS = "seed.shop.raw_orders"
SNAPSHOT = "snapshot.shop.orders_snapshot"
UNIQUE_TEST = "test.shop.unique_orders_order_id.fed79b3a6e"

LIFECYCLE = [
    "POST /jobs/",
    "POST /jobs/{id}/run/",
    "GET /runs/{id}/",
    "GET /runs/{id}/",
    "GET /runs/{id}/artifacts/run_results.json",
    "DELETE /jobs/{id}/",
]


def request(fake: FakeDbtCloud, command: Command, *uids: str, **kw: Any) -> ExecutionRequest:
    return ExecutionRequest(command=command, nodes=tuple(fake.manifest.node(u) for u in uids), **kw)


@pytest.fixture
def executor(make_executor: Callable[..., DbtCloudExecutor], fake: FakeDbtCloud, fake_time):
    """An executor whose manifest is already resolved; the fake's call log starts empty."""
    built = make_executor()
    built.resolve_manifest()
    fake.calls.clear()
    fake_time.sleeps.clear()
    return built


def test_happy_path_creates_triggers_polls_reads_and_deletes_in_order(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, fake_time
) -> None:
    result = executor.execute(request(fake, Command.RUN, ORDERS))

    assert fake.routes() == LIFECYCLE
    create, trigger = fake.calls[0], fake.calls[1]
    assert create.body["project_id"] == 10 and create.body["environment_id"] == 20
    (step,) = create.body["execute_steps"]
    assert step == "dbt run --select fqn:shop.marts.orders,resource_type:model"
    assert re.fullmatch(
        r"prefect-orchestrator-[0-9a-f]{12}-run-orders-[0-9a-f]{12}", create.body["name"]
    )
    assert "settings" not in create.body
    assert trigger.body == {"cause": "prefect-orchestrator: dbt run orders"}
    assert fake_time.sleeps == [10.0, 10.0]
    assert fake.active_jobs() == []

    node = result.results[ORDERS]
    assert result.success and result.error is None
    assert node.status is NodeStatus.SUCCESS and node.message == "OK"
    assert node.started_at is not None and node.completed_at is not None
    assert node.started_at < node.completed_at
    assert node.started_at.tzinfo is not None
    assert node.execution_time == pytest.approx(0.9)
    assert node.adapter_response["rows_affected"] == 1
    assert node.compiled_code == "select * from orders"
    assert result.invocation_args == tuple(shlex.split(step))[1:]
    assert f"https://{HOST}/deploy/1/projects/10/runs/" in result.logs[0].message


def test_job_names_are_unique_per_call(executor: DbtCloudExecutor, fake: FakeDbtCloud) -> None:
    executor.execute(request(fake, Command.RUN, ORDERS))
    executor.execute(request(fake, Command.RUN, ORDERS))
    first, second = (c.body["name"] for c in fake.calls if c.route == "POST /jobs/")
    assert first != second


def test_a_set_of_nodes_runs_in_one_job_selecting_exactly_those(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    result = executor.execute(
        request(fake, Command.BUILD, RAW_ORDERS, STG_ORDERS, UNIQUE_TEST, SNAPSHOT)
    )

    (step,) = fake.steps()
    uids = [RAW_ORDERS, STG_ORDERS, UNIQUE_TEST, SNAPSHOT]
    selectors = [node_selector(u, fake.manifest) for u in uids]
    assert step == f"dbt build --select {' '.join(selectors)} --indirect-selection empty"
    # dbt ran exactly these: no tests of stg_orders were added indirectly.
    assert sorted(fake.reported()[-1]) == sorted(uids)
    (name,) = (c.body["name"] for c in fake.calls if c.route == "POST /jobs/")
    assert re.fullmatch(
        r"prefect-orchestrator-[0-9a-f]{12}-build-raw_orders-and-3-more-\w{12}", name
    )
    assert list(result.results) == [RAW_ORDERS, STG_ORDERS, UNIQUE_TEST, SNAPSHOT]
    assert result.results[UNIQUE_TEST].status is NodeStatus.PASS
    assert result.success


@pytest.mark.parametrize(
    ("command", "kw", "expected_tail"),
    [
        (Command.RUN, {"full_refresh": True}, " --threads 3 --full-refresh"),
        (Command.SEED, {"full_refresh": True}, " --threads 3 --full-refresh"),
        (
            Command.BUILD,
            {"full_refresh": True},
            " --threads 3 --full-refresh --indirect-selection empty",
        ),
        (Command.TEST, {"full_refresh": True}, " --threads 3 --indirect-selection empty"),
        (Command.SNAPSHOT, {"full_refresh": True}, " --threads 3"),
        (
            Command.RUN,
            {"vars": {"day": "2024-01-01", "n": 2}, "extra_args": ("--fail-fast",)},
            ' --threads 3 --vars \'{"day": "2024-01-01", "n": 2}\' --fail-fast',
        ),
    ],
)
def test_step_carries_threads_full_refresh_vars_and_extra_args(
    make_executor, fake: FakeDbtCloud, command: Command, kw: dict, expected_tail: str
) -> None:
    executor = make_executor(threads=3)
    executor.resolve_manifest(vars=kw.get("vars"))
    fake.calls.clear()
    node = {Command.SEED: RAW_ORDERS, Command.TEST: UNIQUE_TEST, Command.SNAPSHOT: SNAPSHOT}
    executor.execute(request(fake, command, node.get(command, ORDERS), **kw))
    (step,) = fake.steps()
    assert step.startswith(f"dbt {command.value} --select ")
    assert step.endswith(expected_tail)


def test_target_goes_into_the_job_settings(executor: DbtCloudExecutor, fake: FakeDbtCloud) -> None:
    executor.execute(request(fake, Command.RUN, ORDERS, target="prod"))
    job = next(c for c in fake.calls if c.route == "POST /jobs/" and "run" in c.body["name"])
    assert job.body["settings"] == {"threads": 4, "target_name": "prod"}
    assert "--target" not in job.body["execute_steps"][0]


def test_empty_request_calls_nothing(executor: DbtCloudExecutor, fake: FakeDbtCloud) -> None:
    result = executor.execute(ExecutionRequest(command=Command.BUILD, nodes=()))
    assert result.results == {} and result.success
    assert fake.calls == []


# Statuses -------------------------------------------------------------------------------


def test_dbt_statuses_come_through_as_reported(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    fake.outcomes = {STG_ORDERS: "error", UNIQUE_TEST: "fail"}
    result = executor.execute(
        request(fake, Command.BUILD, RAW_ORDERS, STG_ORDERS, ORDERS, UNIQUE_TEST)
    )

    statuses = {u: r.status for u, r in result.results.items()}
    assert statuses == {
        RAW_ORDERS: NodeStatus.SUCCESS,
        STG_ORDERS: NodeStatus.ERROR,
        ORDERS: NodeStatus.SKIPPED,
        UNIQUE_TEST: NodeStatus.SKIPPED,
    }
    failed = result.results[STG_ORDERS]
    assert failed.error is not None and failed.error.type == "DbtRuntimeError"
    assert "Database Error in model stg_orders" in failed.message
    assert result.results[ORDERS].started_at is None
    assert result.error is None  # node failures are data, not an invocation error
    assert not result.success
    assert fake.active_jobs() == []


@pytest.mark.parametrize(
    ("status", "failures", "is_failure"),
    [("pass", 0, False), ("warn", 2, False), ("fail", 3, True), ("error", None, True)],
)
def test_test_statuses_and_failures(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, status, failures, is_failure
) -> None:
    fake.outcomes = {UNIQUE_TEST: status}
    result = executor.execute(request(fake, Command.TEST, UNIQUE_TEST))
    node = result.results[UNIQUE_TEST]
    assert node.status.value == status
    assert node.is_failure is is_failure
    if failures is not None:
        assert node.failures == failures


@pytest.mark.parametrize(
    ("final", "artifacts", "error_type", "phrase"),
    [
        (20, False, "RunFailedError", "ended with status error (Git clone failed)"),
        (30, False, "RunFailedError", "it was cancelled in dbt Cloud"),
        (30, True, "RunFailedError", "it was cancelled in dbt Cloud"),
        (10, False, "ArtifactNotFoundError", "served no run_results.json"),
    ],
)
def test_run_level_failures_become_the_invocation_error(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, final, artifacts, error_type, phrase
) -> None:
    fake.force_status = final
    fake.omit_artifacts = not artifacts
    fake.run_status_message = "Git clone failed" if final == 20 else None

    result = executor.execute(request(fake, Command.RUN, ORDERS))

    assert result.error is not None and result.error.type == error_type
    assert phrase in result.error.message
    node = result.results[ORDERS]
    if artifacts:
        assert node.status is NodeStatus.SUCCESS
    else:
        assert node.status is NodeStatus.ERROR
        assert node.message.startswith(NOT_REPORTED)
        assert phrase in node.message
    assert not result.success
    assert fake.routes()[-1] == "DELETE /jobs/{id}/"
    assert fake.active_jobs() == []


def test_a_node_missing_from_run_results_is_an_error_never_success(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    fake.unreported = {ORDERS}
    result = executor.execute(request(fake, Command.RUN, STG_ORDERS, ORDERS))
    assert result.results[STG_ORDERS].status is NodeStatus.SUCCESS
    missing = result.results[ORDERS]
    assert missing.status is NodeStatus.ERROR
    assert missing.message == "dbt Cloud did not report a result for this node"
    assert missing.error is not None
    assert not result.success


def test_nodes_are_reported_in_request_order_and_only_those(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    result = executor.execute(request(fake, Command.RUN, ORDERS, STG_ORDERS))
    assert list(result.results) == [ORDERS, STG_ORDERS]


# Timeouts, interrupts, lost answers --------------------------------------------------------


def test_run_timeout_cancels_the_run_then_deletes_the_job(
    make_executor, fake: FakeDbtCloud, fake_time
) -> None:
    executor = make_executor(timeout_seconds=35)
    executor.resolve_manifest()
    fake.calls.clear()
    fake_time.sleeps.clear()
    fake.never_finish = True

    result = executor.execute(request(fake, Command.RUN, ORDERS))

    assert fake_time.sleeps == [10.0, 10.0, 10.0, 5.0]
    assert fake.routes()[-3:] == [
        "POST /runs/{id}/cancel/",
        "GET /runs/{id}/artifacts/run_results.json",
        "DELETE /jobs/{id}/",
    ]
    assert list(fake.runs.values())[-1]["status"] == 30
    assert fake.active_jobs() == []
    assert result.error is not None and result.error.type == "TimeoutError"
    assert "did not finish within 35 s and was cancelled" in result.error.message
    node = result.results[ORDERS]
    assert node.status is NodeStatus.ERROR
    assert node.error is not None and node.error.type == "TimeoutError"


def test_request_timeout_shorter_than_the_executors_wins(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, fake_time
) -> None:
    fake.never_finish = True
    result = executor.execute(request(fake, Command.RUN, ORDERS, timeout_seconds=12))
    assert fake_time.sleeps == [10.0, 2.0]
    assert "within 12 s" in result.error.message


def test_keyboard_interrupt_while_polling_cancels_and_deletes(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, fake_time
) -> None:
    def interrupt(seconds: float) -> None:
        raise KeyboardInterrupt

    fake_time.on_sleep = interrupt
    with pytest.raises(KeyboardInterrupt):
        executor.execute(request(fake, Command.RUN, ORDERS))

    assert fake.routes()[-2:] == ["POST /runs/{id}/cancel/", "DELETE /jobs/{id}/"]
    assert fake.active_jobs() == []
    assert list(fake.runs.values())[-1]["status"] == 30


def test_lost_create_answer_finds_the_job_by_name_and_makes_no_second_one(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    fake.fail(
        "POST", r"^/jobs/$", Fault(error=httpx.ReadTimeout("read timed out"), after_acting=True)
    )

    result = executor.execute(request(fake, Command.RUN, ORDERS))

    assert result.success
    assert fake.routes()[:3] == ["POST /jobs/", "GET /jobs/", "POST /jobs/{id}/run/"]
    lookup = fake.calls[1]
    assert lookup.params["name__icontains"] == fake.calls[0].body["name"]
    assert len(fake.jobs) == 2  # the compile job and this one
    assert fake.active_jobs() == []


def test_lost_create_answer_when_the_lookup_fails_too_still_deletes_the_job(
    make_executor, fake: FakeDbtCloud
) -> None:
    executor = make_executor(retry=RetryPolicy(max_attempts=1, jitter=0.0))
    executor.resolve_manifest()
    fake.fail("POST", r"^/jobs/$", Fault(status=502, after_acting=True))
    fake.fail("GET", r"^/jobs/$", Fault(status=503))

    result = executor.execute(request(fake, Command.RUN, ORDERS))

    assert result.error is not None and result.error.type == "ServerError"
    assert "HTTP 503" in result.error.message
    assert fake.active_jobs() == []
    assert fake.routes()[-2:] == ["GET /jobs/", "DELETE /jobs/{id}/"]


def test_keyboard_interrupt_right_after_the_job_was_created_still_deletes_it(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    fake.fail("POST", r"^/jobs/$", Fault(error=KeyboardInterrupt(), after_acting=True))
    with pytest.raises(KeyboardInterrupt):
        executor.execute(request(fake, Command.RUN, ORDERS))
    assert fake.active_jobs() == []
    assert fake.routes() == ["POST /jobs/", "GET /jobs/", "DELETE /jobs/{id}/"]


def test_lost_trigger_answer_adopts_the_run_instead_of_starting_another(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    fake.fail(
        "POST", r"/run/$", Fault(error=httpx.RemoteProtocolError("dropped"), after_acting=True)
    )
    result = executor.execute(request(fake, Command.RUN, ORDERS))
    assert result.success
    assert "GET /runs/" in fake.routes()
    assert len(fake.runs) == 2  # the compile run and this one
    assert fake.active_jobs() == []


def test_interrupt_during_trigger_cancels_a_run_that_started(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    fake.fail("POST", r"/run/$", Fault(error=KeyboardInterrupt(), after_acting=True))
    with pytest.raises(KeyboardInterrupt):
        executor.execute(request(fake, Command.RUN, ORDERS))
    assert fake.routes()[-3:] == ["GET /runs/", "POST /runs/{id}/cancel/", "DELETE /jobs/{id}/"]
    assert fake.active_jobs() == []


def test_a_failed_delete_is_reported_naming_job_and_account_then_retried_on_close(
    make_executor, fake: FakeDbtCloud, caplog: pytest.LogCaptureFixture
) -> None:
    executor = make_executor(retry=RetryPolicy(max_attempts=1, jitter=0.0))
    executor.resolve_manifest()
    fake.fail("DELETE", r"^/jobs/\d+/$", Fault(status=500))

    with pytest.warns(JobNotDeletedWarning) as warned:
        result = executor.execute(request(fake, Command.RUN, ORDERS))

    assert result.success
    (job,) = fake.active_jobs()
    (warning,) = warned
    assert f"dbt Cloud job {job['id']} ({job['name']}) of account 1 could not be deleted" in str(
        warning.message
    )
    assert "tried again when the build's sweep runs" in str(warning.message)
    executor.close()
    assert fake.active_jobs() == []
    assert f"deleted 1 leftover job(s) [{job['id']}]" in caplog.text


# API errors ---------------------------------------------------------------------------


def test_wrong_api_key_is_an_invocation_error_saying_what_to_check(
    make_executor, fake: FakeDbtCloud
) -> None:
    executor = make_executor(
        credentials=DbtCloudCredentials(api_key="dbc_wrong", account_id=1, domain=HOST)
    )
    result = executor.execute(request(fake, Command.RUN, ORDERS, STG_ORDERS))
    assert result.error is not None and result.error.type == "AuthenticationError"
    assert "check the API key / account id" in result.error.message
    assert "(Invalid token)" in result.error.message
    assert {r.status for r in result.results.values()} == {NodeStatus.ERROR}
    assert fake.jobs == {}


def test_forbidden_is_reported_as_permission_denied(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    fake.fail("POST", r"^/jobs/$", Fault(status=403))
    result = executor.execute(request(fake, Command.RUN, ORDERS))
    assert result.error.type == "PermissionDeniedError"
    assert "Job Admin" in result.error.message
    assert fake.routes() == ["POST /jobs/"]


def test_unknown_environment_is_not_found_naming_the_ids(make_executor, fake: FakeDbtCloud) -> None:
    executor = make_executor(environment_id=99)
    result = executor.execute(request(fake, Command.RUN, ORDERS))
    assert result.error.type == "NotFoundError"
    assert "check project/environment/job ids" in result.error.message


def test_rate_limit_on_polling_waits_retry_after(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, fake_time
) -> None:
    fake.fail("GET", r"^/runs/\d+/$", Fault(status=429, headers={"Retry-After": "7"}))
    result = executor.execute(request(fake, Command.RUN, ORDERS))
    assert result.success
    assert fake_time.sleeps == [10.0, 7.0, 10.0]


# Concurrency -----------------------------------------------------------------------------


def test_four_threads_execute_at_once_each_with_its_own_job(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, fake_time
) -> None:
    fake.outcomes = {STG_PAYMENTS: "error"}
    nodes = [ORDERS, STG_ORDERS, STG_PAYMENTS, INT_PAYMENTS]
    started = threading.active_count()
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda u: executor.execute(request(fake, Command.RUN, u)), nodes))

    for uid, result in zip(nodes, results, strict=True):
        assert list(result.results) == [uid]
        expected = NodeStatus.ERROR if uid == STG_PAYMENTS else NodeStatus.SUCCESS
        assert result.results[uid].status is expected
    assert len(fake.steps()) == 4
    assert fake.active_jobs() == []
    # Two polls per run and a sleep before each: no extra polling, no busy wait.
    assert fake.routes().count("GET /runs/{id}/") == 8
    assert fake_time.sleeps == [10.0] * 8
    assert threading.active_count() <= started


# Source freshness ------------------------------------------------------------------------


def test_source_freshness_runs_an_ephemeral_job_and_reads_sources_json(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    orders, payments = "source.shop.shop_app.orders", "source.shop.shop_app.payments"
    fake.freshness = {orders: "error"}

    report = executor.source_freshness([orders, payments])

    (step,) = fake.steps()
    assert step == (
        "dbt source freshness --select source:shop.shop_app.orders source:shop.shop_app.payments"
    )
    assert list(report) == [orders]  # payments has no freshness config, so dbt skips it
    fresh = report[orders]
    assert fresh.status.is_stale
    assert fresh.warn_after is not None and fresh.warn_after.period == "day"
    assert fresh.age_seconds == 18000.0
    assert fresh.snapshotted_at is not None and fresh.snapshotted_at.tzinfo is not None
    assert fake.active_jobs() == []


def test_source_freshness_of_nothing_calls_nothing(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    assert executor.source_freshness([]) == {}
    assert fake.calls == []


def test_source_freshness_rejects_ids_that_are_not_sources(executor: DbtCloudExecutor) -> None:
    from dbt_exec_cloud import ConfigurationError

    with pytest.raises(ConfigurationError, match="is not a source"):
        executor.source_freshness([ORDERS])


def test_source_freshness_without_sources_json_raises(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    from dbt_exec_cloud import RunFailedError

    fake.force_status, fake.omit_artifacts = 20, True
    with pytest.raises(RunFailedError, match=r"wrote no sources\.json"):
        executor.source_freshness(["source.shop.shop_app.orders"])
    assert fake.active_jobs() == []


def test_vars_reach_freshness_as_json(executor: DbtCloudExecutor, fake: FakeDbtCloud) -> None:
    executor.resolve_manifest(vars={"a": 1})
    fake.calls.clear()
    executor.source_freshness(["source.shop.shop_app.orders"], vars={"a": 1})
    (step,) = fake.steps()
    assert json.loads(shlex.split(step)[-1]) == {"a": 1}


def test_a_node_the_manifest_does_not_know_is_an_invocation_error(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    from dbt_graph import Node, ResourceType

    ghost = Node(
        unique_id="model.shop.ghost",
        name="ghost",
        resource_type=ResourceType.MODEL,
        package_name="shop",
        fqn=("shop", "ghost"),
    )
    result = executor.execute(ExecutionRequest(command=Command.RUN, nodes=(ghost,)))
    assert result.error is not None and result.error.type == "ConfigurationError"
    assert "model.shop.ghost" in result.error.message
    assert result.results["model.shop.ghost"].status is NodeStatus.ERROR
    assert fake.calls == []
