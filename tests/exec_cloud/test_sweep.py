"""run_scope() and close(): a build's jobs carry its own prefix, and leftovers are swept.

The sweep deletes every job of the build still in the account (0 in a healthy build), on a
normal exit, an exception or an interrupt; it never touches another build's jobs or a job it did
not create, and pages through long job lists.
"""

from __future__ import annotations

import logging
import pickle
import re
import threading

import httpx
import pytest
from dbt_exec_cloud import DbtCloudExecutor, JobNotDeletedWarning, RetryPolicy
from dbt_graph import Command, ExecutionRequest, NodeStatus
from exec_cloud.fake_cloud import ENVIRONMENT, PROJECT, FakeDbtCloud, Fault
from exec_cloud.fake_time import no_sleep

ORDERS = "model.shop.orders"
STG_ORDERS = "model.shop.stg_orders"
NAME = re.compile(r"(?P<prefix>prefect-orchestrator-[0-9a-f]{12}-).+-[0-9a-f]{12}")


def run(fake: FakeDbtCloud, uid: str = ORDERS) -> ExecutionRequest:
    return ExecutionRequest(command=Command.RUN, nodes=(fake.manifest.node(uid),))


def prefix_of(name: str) -> str:
    match = NAME.fullmatch(name)
    assert match is not None, name
    return match["prefix"]


def created(fake: FakeDbtCloud) -> list[str]:
    return [c.body["name"] for c in fake.calls if c.route == "POST /jobs/"]


def leave_a_job_behind(fake: FakeDbtCloud) -> None:
    """Make the next deletion fail for good (the executor retries once)."""
    fake.fail("DELETE", r"^/jobs/\d+/$", Fault(status=500), Fault(status=500))


@pytest.fixture
def executor(make_executor, fake: FakeDbtCloud) -> DbtCloudExecutor:
    built = make_executor(retry=RetryPolicy(max_attempts=2, jitter=0.0))
    built.resolve_manifest()
    fake.calls.clear()
    return built


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="dbt_exec_cloud")
    return caplog


def test_a_healthy_build_names_its_jobs_after_it_and_sweeps_nothing(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, info_logs: pytest.LogCaptureFixture
) -> None:
    with executor.run_scope():
        executor.execute(run(fake))
        executor.execute(run(fake, STG_ORDERS))
    with executor.run_scope():
        executor.execute(run(fake))

    first, second, third = (prefix_of(n) for n in created(fake))
    assert first == second != third  # one prefix per build
    assert fake.routes()[-1] == "GET /jobs/"  # the sweep listed the build's jobs
    sweep = fake.calls[-1]
    assert sweep.params["name__icontains"] == third
    assert (sweep.params["project_id"], sweep.params["environment_id"]) == (
        str(PROJECT),
        str(ENVIRONMENT),
    )
    assert info_logs.text.count("deleted 0 leftover job(s)") == 2


def test_a_job_whose_deletion_failed_is_swept_when_the_build_ends(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, info_logs: pytest.LogCaptureFixture
) -> None:
    with executor.run_scope():
        leave_a_job_behind(fake)
        with pytest.warns(JobNotDeletedWarning, match=r"of account 1 could not be deleted"):
            result = executor.execute(run(fake))
        (job,) = fake.active_jobs()

    assert result.results[ORDERS].status is NodeStatus.SUCCESS
    assert fake.active_jobs() == []
    assert f"deleted 1 leftover job(s) [{job['id']}]" in info_logs.text


def test_a_deletion_that_keeps_failing_in_the_sweep_is_a_warning_naming_job_and_account(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    with pytest.warns(JobNotDeletedWarning) as warned, executor.run_scope():
        leave_a_job_behind(fake)
        executor.execute(run(fake))
        leave_a_job_behind(fake)  # the sweep's attempt fails too

    (job,) = fake.active_jobs()
    messages = [str(w.message) for w in warned]
    assert len(messages) == 2
    assert all(f"dbt Cloud job {job['id']} ({job['name']}) of account 1" in m for m in messages)
    assert messages[-1].endswith("Delete it under Deploy -> Jobs.")


def test_an_interrupt_mid_build_still_sweeps_the_job_nobody_could_find(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, info_logs: pytest.LogCaptureFixture
) -> None:
    # The create acts, then the interrupt arrives; looking the job up to delete it fails.
    fake.fail("POST", r"^/jobs/$", Fault(error=KeyboardInterrupt(), after_acting=True))
    fake.fail("GET", r"^/jobs/$", Fault(status=503), Fault(status=503))

    with pytest.raises(KeyboardInterrupt), executor.run_scope():
        executor.execute(run(fake))

    assert fake.active_jobs() == []
    assert "deleted 1 leftover job(s)" in info_logs.text


def test_the_sweep_cancels_a_run_its_leftover_still_has(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    # The trigger starts a run, then the interrupt arrives; listing the runs fails, so only
    # the sweep can stop it.
    fake.fail("POST", r"/run/$", Fault(error=KeyboardInterrupt(), after_acting=True))
    fake.fail("GET", r"^/runs/$", Fault(status=503), Fault(status=503))
    leave_a_job_behind(fake)

    with (
        pytest.warns(JobNotDeletedWarning),
        pytest.raises(KeyboardInterrupt),
        executor.run_scope(),
    ):
        executor.execute(run(fake))

    assert fake.active_jobs() == []
    (run_state,) = (r for r in fake.runs.values() if r["cause"].endswith("dbt run orders"))
    assert run_state["status"] == 30  # cancelled by the sweep


def test_a_sweep_never_deletes_jobs_of_another_build_or_not_created_by_us(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    with executor.run_scope():
        executor.execute(run(fake))
        ours = prefix_of(created(fake)[-1])
        strangers = [
            fake.add_job("prefect-orchestrator-nightly"),
            fake.add_job(f"copy of {ours}run-orders-000000000000"),  # contains, not starts
            fake.add_job(f"{ours}run-x-000000000000", environment_id=ENVIRONMENT + 1),
            fake.add_job("prefect-orchestrator-0123456789ab-run-orders-000000000000"),
        ]
        mine = fake.add_job(f"{ours}run-orders-000000000000")

    remaining = {j["id"] for j in fake.active_jobs()}
    assert remaining == set(strangers)
    assert mine not in remaining


def test_the_sweep_pages_through_more_leftovers_than_one_page(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, info_logs: pytest.LogCaptureFixture
) -> None:
    with executor.run_scope():
        executor.execute(run(fake))
        ours = prefix_of(created(fake)[-1])
        for i in range(150):
            fake.add_job(f"{ours}run-leftover-{i:012x}")
        fake.calls.clear()

    assert fake.active_jobs() == []
    offsets = [c.params["offset"] for c in fake.calls if c.route == "GET /jobs/"]
    assert offsets == ["0", "100"]
    assert "deleted 150 leftover job(s)" in info_logs.text


def test_concurrent_builds_on_one_executor_sweep_only_their_own_jobs(
    executor: DbtCloudExecutor, fake: FakeDbtCloud
) -> None:
    a_created, b_done = threading.Event(), threading.Event()
    names: dict[str, str] = {}

    def build_a() -> None:
        with executor.run_scope():
            executor.execute(run(fake))
            names["a"] = created(fake)[-1]
            fake.add_job(f"{prefix_of(names['a'])}run-leftover-000000000000")
            a_created.set()
            b_done.wait(timeout=60)
            # B's sweep ran while A was still going; A's leftover must have survived it.
            names["a-left"] = str(len(fake.active_jobs()))

    thread = threading.Thread(target=build_a)
    thread.start()
    assert a_created.wait(timeout=60)
    with executor.run_scope():
        executor.execute(run(fake, STG_ORDERS))
        names["b"] = created(fake)[-1]
        fake.add_job(f"{prefix_of(names['b'])}run-leftover-000000000000")
    b_done.set()
    thread.join(timeout=60)

    assert prefix_of(names["a"]) != prefix_of(names["b"])
    assert names["a-left"] == "1"
    assert fake.active_jobs() == []


def test_copies_pickled_inside_a_build_name_their_jobs_after_it(
    make_executor, cloud_network: FakeDbtCloud
) -> None:
    fake = cloud_network
    executor = make_executor(transport=None, sleep=no_sleep)
    executor.resolve_manifest()
    fake.calls.clear()
    with executor.run_scope():
        executor.execute(run(fake))
        in_context = pickle.loads(pickle.dumps(executor))
        # A process pool pickles in a helper thread that knows nothing of the scope.
        copies = []
        helper = threading.Thread(target=lambda: copies.append(pickle.dumps(executor)))
        helper.start()
        helper.join()
        from_helper = pickle.loads(copies[0])
        in_context.execute(run(fake, STG_ORDERS))
        from_helper.execute(run(fake))
        fake.add_job(f"{prefix_of(created(fake)[-1])}run-leftover-000000000000")
    outside = pickle.loads(pickle.dumps(executor))
    outside.execute(run(fake))

    prefixes = [prefix_of(n) for n in created(fake)]
    assert prefixes[0] == prefixes[1] == prefixes[2]
    assert prefixes[3] != prefixes[0]
    assert fake.active_jobs() == []
    for copy in (in_context, from_helper, outside):
        copy.close()


def test_close_sweeps_the_jobs_made_outside_any_build(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, info_logs: pytest.LogCaptureFixture
) -> None:
    fake.fail("POST", r"^/jobs/$", Fault(error=KeyboardInterrupt(), after_acting=True))
    fake.fail("GET", r"^/jobs/$", Fault(status=503), Fault(status=503))
    with pytest.raises(KeyboardInterrupt):
        executor.execute(run(fake))
    assert len(fake.active_jobs()) == 1

    executor.close()

    assert fake.active_jobs() == []
    assert "sweep of executor jobs" in info_logs.text
    assert "deleted 1 leftover job(s)" in info_logs.text


def test_close_lists_nothing_when_every_job_was_made_in_a_build(
    make_executor, fake: FakeDbtCloud
) -> None:
    executor = make_executor()
    with executor.run_scope():
        executor.resolve_manifest()  # the compile job belongs to the build too
        executor.execute(run(fake))
    fake.calls.clear()
    executor.close()
    assert fake.calls == []


def test_a_sweep_that_cannot_list_still_deletes_the_jobs_it_knows_and_says_so(
    executor: DbtCloudExecutor, fake: FakeDbtCloud, info_logs: pytest.LogCaptureFixture
) -> None:
    with executor.run_scope():
        leave_a_job_behind(fake)
        with pytest.warns(JobNotDeletedWarning):
            executor.execute(run(fake))
        fake.fail("GET", r"^/jobs/$", Fault(error=httpx.ReadTimeout("slow")), Fault(status=502))

    assert fake.active_jobs() == []
    assert "Could not list the dbt Cloud jobs named prefect-orchestrator-" in info_logs.text
    assert "deleted 1 leftover job(s)" in info_logs.text
