"""Ready nodes waiting for a slot: the most urgent first, within their concurrency keys.

The orchestrator's PER_NODE scheduler and the wall-time simulation
(:func:`dbt_graph.estimate_wall_time`) take nodes from the same queue, so the estimate models
exactly the order in which the scheduler starts nodes.

A ready node whose concurrency key is full is *parked* on that key, and the next ready node is
considered instead (it does not block the queue). Whenever a key has room, its most urgent
parked node goes back among the ready ones, one per free slot, so a key with one free slot does
not flood the queue; if another of its keys is full it is parked there. Every operation is
O(log n) plus the number of keys.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dbt_graph._concurrency_keys import ConcurrencyKey


class ReadyQueue:
    """Ready nodes, most urgent first, that hold their concurrency keys while they run.

    Args:
        urgency: A sort key per unique_id: the smallest is started first. It must be a total
            order (e.g. :attr:`dbt_graph.CriticalPath.rank`) for the order to be deterministic.
        held: The concurrency keys each node holds while it runs
            (:func:`dbt_graph.keys_by_node`); nodes missing here hold none.

    Example:
        >>> heavy = ConcurrencyKey(selector="tag:heavy", limit=1)
        >>> queue = ReadyQueue({"a": 0, "b": 1, "c": 2}.__getitem__,
        ...                    held={"a": (heavy,), "b": (heavy,)})
        >>> for uid in "cba":
        ...     queue.push(uid)
        >>> queue.pop(), queue.pop(), queue.pop()   # b waits: a holds the only heavy slot
        ('a', 'c', None)
        >>> queue.release("a")
        >>> queue.pop(), len(queue)
        ('b', 0)
    """

    def __init__(
        self,
        urgency: Callable[[str], Any],
        held: Mapping[str, Sequence[ConcurrencyKey]] | None = None,
    ) -> None:
        self._urgency = urgency
        self._held = held or {}
        self._limit = {k.name: k.limit for keys in self._held.values() for k in keys}
        self._used = dict.fromkeys(self._limit, 0)
        self._ready: list[tuple[Any, str]] = []
        self._parked: dict[str, list[tuple[Any, str]]] = {name: [] for name in self._limit}
        self._waking = dict.fromkeys(self._limit, 0)  # parked nodes sent back, per key
        self._woken: dict[str, str] = {}  # node -> the key it was sent back from
        self._size = 0

    def __len__(self) -> int:
        """How many nodes wait: ready ones and those parked on a full key."""
        return self._size

    def push(self, uid: str) -> None:
        """``uid`` is ready to start."""
        heapq.heappush(self._ready, (self._urgency(uid), uid))
        self._size += 1

    def pop(self) -> str | None:
        """Take the most urgent node whose keys all have room, and its keys.

        Returns:
            Its unique_id, or ``None`` when no waiting node can start now (the queue is empty,
            or every waiting node's key is full until :meth:`release`).
        """
        while True:
            self._wake()
            if not self._ready:
                return None
            item = heapq.heappop(self._ready)
            uid = item[1]
            origin = self._woken.pop(uid, None)
            if origin is not None:
                self._waking[origin] -= 1
            keys = self._held.get(uid, ())
            full = next((k.name for k in keys if self._used[k.name] >= self._limit[k.name]), None)
            if full is not None:
                heapq.heappush(self._parked[full], item)
                continue
            for key in keys:
                self._used[key.name] += 1
            self._size -= 1
            return uid

    def release(self, uid: str) -> None:
        """``uid`` (returned by :meth:`pop`) finished: its keys have room again."""
        for key in self._held.get(uid, ()):
            self._used[key.name] -= 1

    def _wake(self) -> None:
        for name, parked in self._parked.items():
            if parked and self._used[name] + self._waking[name] < self._limit[name]:
                item = heapq.heappop(parked)
                self._woken[item[1]] = name
                self._waking[name] += 1
                heapq.heappush(self._ready, item)
