"""Property: whatever faults dbt Cloud throws, a build leaks no job and every node gets a result.

Each seed runs one build (the compile job, then several requests of random nodes) inside
``run_scope()`` against the fake service with random faults on every call: 408, 409, 425, 429,
5xx, read timeouts and dropped connections, each before or after the service acted, refused
connections, and in some seeds a ``KeyboardInterrupt`` at a random call. Time is fake, so no
test sleeps; the faults depend only on the seed and the order of the calls, which one thread
makes deterministic.
"""

from __future__ import annotations

import random
import warnings
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from dbt_exec_cloud import DbtCloudExecutor, JobNotDeletedWarning, RetryPolicy
from dbt_graph import Command, ExecutionRequest, ExecutionResult, Manifest, NodeStatus, ResourceType
from exec_cloud.fake_cloud import FakeDbtCloud

#: Nodes a build runs (sources and exposures are not run).
_RUNNABLE = (ResourceType.MODEL, ResourceType.SEED, ResourceType.SNAPSHOT, ResourceType.TEST)
#: Random faults on this share of all calls: far more than a real service gives.
_FAULT_RATE = 0.2
#: Attempts per call: exhausting them at that rate takes 0.2**8, about 3 in a million.
_RETRY = RetryPolicy(max_attempts=8, jitter=0.0)


def _requests(rng: random.Random, manifest: Manifest) -> list[ExecutionRequest]:
    """Six requests of one to three random nodes, as PER_NODE and PER_WAVE send them."""
    runnable = sorted(
        (n for n in manifest.nodes.values() if n.resource_type in _RUNNABLE),
        key=lambda n: n.unique_id,
    )
    requests = []
    for _ in range(6):
        nodes = tuple(rng.sample(runnable, rng.randint(1, 3)))
        command = Command.for_node(nodes[0]) if len(nodes) == 1 else Command.BUILD
        requests.append(ExecutionRequest(command=command, nodes=nodes))
    return requests


def _assert_nothing_leaked_or_repeated(fake: FakeDbtCloud) -> None:
    assert fake.active_jobs() == []
    names = [job["name"] for job in fake.jobs.values()]
    assert len(names) == len(set(names)), "a create was repeated after it had succeeded"
    runs_per_job = Counter(run["job_id"] for run in fake.runs.values())
    assert max(runs_per_job.values(), default=0) <= 1, "a job was triggered twice"


def _assert_every_node_has_a_result(request: ExecutionRequest, result: ExecutionResult) -> None:
    assert list(result.results) == [n.unique_id for n in request.nodes]
    assert all(isinstance(r.status, NodeStatus) for r in result.results.values())


def _assert_warnings_name_job_and_account(warned: list[warnings.WarningMessage]) -> None:
    for warning in warned:
        assert issubclass(warning.category, JobNotDeletedWarning), warning.message
        assert "of account 1 could not be deleted" in str(warning.message)


@pytest.mark.parametrize("seed", range(40))
def test_random_faults_on_every_call_leak_no_job_and_leave_no_node_without_a_result(
    make_executor, fake: FakeDbtCloud, seed: int
) -> None:
    rng = random.Random(seed)
    interrupt_at = rng.randrange(1, 80) if seed % 2 else None
    requests = _requests(rng, fake.manifest)
    executor: DbtCloudExecutor = make_executor(retry=_RETRY)
    fake.chaos(rng, _FAULT_RATE, interrupt_at=interrupt_at)
    results: list[ExecutionResult] = []

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        try:
            with executor.run_scope():
                executor.resolve_manifest()
                results.extend(executor.execute(request) for request in requests)
        except KeyboardInterrupt:
            assert interrupt_at is not None
        else:
            assert len(results) == len(requests)

    _assert_nothing_leaked_or_repeated(fake)
    for request, result in zip(requests, results, strict=False):
        _assert_every_node_has_a_result(request, result)
    _assert_warnings_name_job_and_account(warned)
    assert fake.injected, "the seed injected no fault at all"


@pytest.mark.parametrize("seed", range(5))
def test_random_faults_on_concurrent_requests_leak_no_job(
    make_executor, fake: FakeDbtCloud, seed: int
) -> None:
    # Threads interleave their calls differently from run to run, so the faults land in
    # different places each time; the properties hold for every interleaving.
    rng = random.Random(seed)
    requests = _requests(rng, fake.manifest)
    executor: DbtCloudExecutor = make_executor(retry=_RETRY)
    fake.chaos(rng, _FAULT_RATE)

    with warnings.catch_warnings(record=True) as warned:
        warnings.simplefilter("always")
        with executor.run_scope(), ThreadPoolExecutor(max_workers=4) as pool:
            executor.resolve_manifest()
            results = list(pool.map(executor.execute, requests))

    _assert_nothing_leaked_or_repeated(fake)
    for request, result in zip(requests, results, strict=True):
        _assert_every_node_has_a_result(request, result)
    _assert_warnings_name_job_and_account(warned)
