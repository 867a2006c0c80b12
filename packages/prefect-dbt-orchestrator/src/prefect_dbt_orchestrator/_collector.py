"""Python's cyclic garbage collector, kept away from what a build holds for its whole length.

A build holds large object graphs that contain no reference cycles and live until it ends: the
manifest (once in the orchestrator, once in the executor's client), the plan, the selectors,
Prefect's own state. The collector's full collections traverse every tracked object, and a
PER_NODE build promotes enough short-lived objects to the oldest generation to run one every
few hundred nodes: at 6,432 nodes, ten full collections of 0.4 s each, a cost that grows as
the square of the project's size (more collections, each over a larger heap).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_lock = threading.Lock()
_builds = 0


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a call selects, plans and keys its nodes.

    Selection, the plan and the cache keys allocate hundreds of thousands of containers and no
    reference cycles; the collector would traverse them (and the manifest) again and again as
    they pile up: a quarter of ``plan()``'s time for 10,000 nodes
    (``benchmarks/bench_graph.py --big-plan``). Reference counting still frees everything
    dropped meanwhile; cycles made meanwhile, by any thread, are collected once it runs again.
    A ``dbt parse`` that a call may need runs in a worker process, not here.

    Example:
        >>> with collector_paused():
        ...     gc.isenabled()
        False
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextmanager
def heap_frozen() -> Iterator[None]:
    """Leave every object that exists when a build starts out of collections until it ends.

    ``gc.freeze()`` moves them to the collector's permanent generation, so collections during
    the build traverse only what the build made since. When the last build running in the
    process ends, ``gc.unfreeze()`` hands them back to the oldest generation: garbage among
    them is collected then, never lost.

    Example:
        >>> with heap_frozen():
        ...     gc.get_freeze_count() > 0
        True
    """
    global _builds
    with _lock:
        if _builds == 0:
            gc.freeze()
        _builds += 1
    try:
        yield
    finally:
        with _lock:
            _builds -= 1
            if _builds == 0:
                gc.unfreeze()
