"""Fixtures for the dbt Cloud executor tests: the fake service, fake time, executor factory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import respx
from dbt_exec_cloud import DbtCloudCredentials, DbtCloudExecutor, RetryPolicy
from exec_cloud.fake_cloud import ENVIRONMENT, HOST, PROJECT, TOKEN, FakeDbtCloud
from exec_cloud.fake_time import FakeTime


@pytest.fixture
def credentials() -> DbtCloudCredentials:
    return DbtCloudCredentials(api_key=TOKEN, account_id=1, domain=HOST)


@pytest.fixture
def fake(shop_manifest_path: Path) -> FakeDbtCloud:
    return FakeDbtCloud(shop_manifest_path)


@pytest.fixture
def cloud_network(fake: FakeDbtCloud) -> FakeDbtCloud:
    """Route every httpx request to the fake host through the fake, with no transport injected.

    Executors built with ``transport=None`` then pickle, and their unpickled copies reach the
    fake too (in this process).
    """
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        router.route(host=HOST).mock(side_effect=fake.router.handler)
        yield fake


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_executor(
    fake: FakeDbtCloud, fake_time: FakeTime, credentials: DbtCloudCredentials, tmp_path: Path
) -> Callable[..., DbtCloudExecutor]:
    """Build an executor wired to the fake service and fake time; keywords override."""
    made: list[DbtCloudExecutor] = []

    def build(**overrides: Any) -> DbtCloudExecutor:
        kwargs: dict[str, Any] = {
            "credentials": credentials,
            "project_id": PROJECT,
            "environment_id": ENVIRONMENT,
            "poll_frequency_seconds": 10,
            "timeout_seconds": 900,
            "manifest_dir": tmp_path / "manifests",
            "retry": RetryPolicy(jitter=0.0),
            "transport": fake.transport(),
            "sleep": fake_time.sleep,
            "clock": fake_time.monotonic,
        }
        kwargs.update(overrides)
        executor = DbtCloudExecutor(**kwargs)
        made.append(executor)
        return executor

    yield build
    for executor in made:
        executor.close()
