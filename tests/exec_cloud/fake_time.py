"""Fake time for the dbt Cloud tests: a clock that moves only when something sleeps."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


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
