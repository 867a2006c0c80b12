"""The executor pickles without live state and works after unpickling, in threads and processes."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import cloudpickle
import httpx
import pytest
from dbt_exec_cloud import (
    ArtifactNotFoundError,
    AuthenticationError,
    CloudConnectionError,
    DbtCloudCredentials,
    DbtCloudExecutor,
    RunFailedError,
    RunTimeoutError,
)
from dbt_graph import Command, ExecutionRequest, NodeStatus
from exec_cloud.fake_cloud import ENVIRONMENT, PROJECT, TOKEN, FakeDbtCloud, serve_over_socket
from exec_cloud.fake_time import no_sleep

ORDERS = "model.shop.orders"


def test_executor_pickles_after_use_without_its_client(
    make_executor, cloud_network: FakeDbtCloud
) -> None:
    fake = cloud_network
    executor = make_executor(transport=None, sleep=no_sleep)
    node = fake.manifest.node(ORDERS)
    executor.execute(ExecutionRequest(command=Command.RUN, nodes=(node,)))
    assert executor._client is not None

    state = executor.__getstate__()
    live = (httpx.Client, type(threading.Lock()), type(threading.RLock()))
    assert not any(isinstance(v, live) for v in state.values())
    clone = pickle.loads(pickle.dumps(executor))
    assert clone._client is None
    fake.calls.clear()

    result = clone.execute(ExecutionRequest(command=Command.RUN, nodes=(node,)))

    assert result.results[ORDERS].status is NodeStatus.SUCCESS
    assert "dbt compile" not in fake.steps()  # the clone reuses the fetched manifest file
    assert fake.active_jobs() == []
    clone.close()


def test_cloudpickle_as_dask_uses_it(make_executor, cloud_network: FakeDbtCloud) -> None:
    executor = make_executor(transport=None, sleep=no_sleep)
    clone = cloudpickle.loads(cloudpickle.dumps(executor))
    node = cloud_network.manifest.node(ORDERS)
    result = clone.execute(ExecutionRequest(command=Command.RUN, nodes=(node,)))
    assert result.success
    clone.close()


def test_a_transport_that_cannot_pickle_makes_the_executor_unpicklable(make_executor) -> None:
    # Test transports are process-local by nature; the default (the network) pickles.
    with pytest.raises((pickle.PicklingError, AttributeError, TypeError)):
        pickle.dumps(make_executor())


@pytest.mark.parametrize(
    "error",
    [
        AuthenticationError("no", status_code=401, method="GET", url="https://x", user_message="m"),
        CloudConnectionError("down", method="GET", url="https://x"),
        RunTimeoutError("slow", run_id=3, timeout_seconds=9.0, href="https://x/3"),
        RunFailedError("failed", run_id=3, status="error", href=None),
        ArtifactNotFoundError("gone", status_code=404),
    ],
)
def test_errors_pickle_with_their_attributes(error: Exception) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.__dict__ == error.__dict__


# A real socket, so that worker processes (which respx cannot reach) talk to the fake too.


@pytest.fixture
def fake_server(fake: FakeDbtCloud) -> Iterator[str]:
    with serve_over_socket(fake) as url:
        yield url


def test_runs_in_a_process_pool(fake: FakeDbtCloud, fake_server: str, tmp_path) -> None:
    executor = DbtCloudExecutor(
        DbtCloudCredentials(api_key=TOKEN, account_id=1, domain=fake_server),
        project_id=PROJECT,
        environment_id=ENVIRONMENT,
        poll_frequency_seconds=0.01,
        manifest_dir=tmp_path,
    )
    executor.resolve_manifest()
    nodes = ["model.shop.stg_orders", ORDERS]
    fake.outcomes = {ORDERS: "error"}
    requests = [
        ExecutionRequest(command=Command.RUN, nodes=(fake.manifest.node(u),)) for u in nodes
    ]

    # The executor and requests cross to the workers pickled, whatever the start method; fork
    # keeps the test fast (spawn re-imports everything in every worker).
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=2, mp_context=context) as pool:
        results = list(pool.map(executor.execute, requests))

    assert [r.results[u].status for r, u in zip(results, nodes, strict=True)] == [
        NodeStatus.SUCCESS,
        NodeStatus.ERROR,
    ]
    assert fake.steps().count("dbt compile") == 1  # workers reused the parent's manifest
    assert fake.active_jobs() == []
    executor.close()
