"""Fixtures for the dbt Cloud executor tests: the fake service, fake time, executor factory."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from dbt_exec_cloud import DbtCloudCredentials, DbtCloudExecutor, RetryPolicy
from exec_cloud.fake_cloud import ENVIRONMENT, HOST, PROJECT, TOKEN, FakeDbtCloud


class FakeTime:
    """A monotonic clock that only moves when something sleeps; records every sleep.

    It pickles (without its lock), so executors holding its methods pickle too.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[float], None] | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_lock"]
        state["on_sleep"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.sleeps.append(seconds)
            self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(seconds)


def no_sleep(seconds: float) -> None:
    """A picklable sleep that returns at once."""


@pytest.fixture
def credentials() -> DbtCloudCredentials:
    return DbtCloudCredentials(api_key=TOKEN, account_id=1, domain=HOST)


@pytest.fixture
def fake(shop_manifest_path: Path) -> FakeDbtCloud:
    return FakeDbtCloud(shop_manifest_path)


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
