"""Per-process shortcuts for work dbt repeats on every invocation (worker processes only).

A worker invokes dbt hundreds of times with the same parsed manifest. Three steps of every
invocation cost time proportional to the project, not to the nodes being run, and give the same
answer each time; in worker processes (never in the caller's) they are replaced:

* **the graph** (``Compiler.compile``: linking every node, a cycle search, a graph summary) is
  built once per manifest object and kept on it; nothing mutates it (dbt's queues work on
  copies). An invocation whose manifest holds an inline query's node (``dbt show --inline``,
  the source fingerprints) gets a graph of its own, not kept: the kept one lacks that node
  (the query would select nothing), and it must not keep the node once dbt removes it;
* **plugin discovery** (``PluginManager.get_prefixed_modules``: a scan of every importable module
  named ``dbt_*``) is done once per process;
* **events below the captured level**: dbt builds a protobuf message for every event (a few
  hundred per invocation, mostly debug: each query, each relation cache entry) before asking
  whether anything listens. With dbt's own log outputs off (``--log-level none``, and
  ``--log-level-file none`` unless the user asked for a log file), the only listener is the
  worker, which keeps lines at or above its level and ``NodeFinished``; other events are dropped
  before they are built;
* **the node loop**, only while a streaming session runs (:mod:`dbt_exec_core._session`):
  ``GraphRunnableTask.execute_nodes`` hands the task to the session, which keeps feeding dbt's
  thread pool with the nodes of requests arriving while it runs;
* **selection**: the executor always selects an exact set of unique_ids (``--select`` lists one
  exact selector per node, with ``--indirect-selection empty``), so while
  :func:`exact_selection` is active, ``NodeSelector.select_nodes`` returns that set instead of
  matching each selector against every node. dbt's own filtering (resource types, enabled,
  unit tests) still applies.

Measured on a 657-node project: about 0.6 s less per invocation, most of an invocation's fixed
cost. Each replacement keeps dbt's signature and falls back to dbt's code when not applicable.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

_installed = False
_exact: frozenset[str] | None = None
_server: Any = None
_floor: int | None = None
_GRAPHS = "_dbt_exec_core_graphs"
#: The id prefix of the node ``dbt show --inline`` adds to the manifest for one invocation.
_INLINE = "sql_operation."
_RANKS = {"debug": 10, "test": 10, "info": 20, "warn": 30, "error": 40}
#: Events the worker needs whatever their level.
_ALWAYS = frozenset({"NodeFinished"})


def drop_events_below(level: str | None) -> None:
    """Drop events below ``level`` when dbt itself logs nothing (``None``: keep every event)."""
    global _floor
    _floor = None if level is None else _RANKS.get(level, 20)


@contextmanager
def exact_selection(unique_ids: Iterable[str]) -> Iterator[None]:
    """Within the block, dbt selects exactly ``unique_ids`` (minus what its filters drop)."""
    global _exact
    _exact = frozenset(unique_ids)
    try:
        yield
    finally:
        _exact = None


@contextmanager
def serving(server: Any) -> Iterator[None]:
    """Within the block, dbt's node loop is ``server.execute_nodes(task)`` (a session)."""
    global _server
    _server = server
    try:
        yield
    finally:
        _server = None


def install() -> None:
    """Install the shortcuts (idempotent)."""
    global _installed
    if _installed:
        return
    _memoise_plugin_discovery()
    _memoise_graph()
    _drop_unheard_events()
    _select_exactly()
    _serve_sessions()
    _installed = True


def _memoise_plugin_discovery() -> None:
    from dbt.plugins.manager import PluginManager

    modules = PluginManager.get_prefixed_modules()

    def get_prefixed_modules(cls: Any) -> dict[str, Any]:
        return modules

    PluginManager.get_prefixed_modules = classmethod(get_prefixed_modules)  # type: ignore[assignment]


def _memoise_graph() -> None:
    from dbt.compilation import Compiler

    original = Compiler.compile

    def compile(self: Any, manifest: Any, write: bool = True, add_test_edges: bool = False) -> Any:
        if any(uid.startswith(_INLINE) for uid in manifest.nodes):
            return original(self, manifest, write, add_test_edges)
        graphs = manifest.__dict__.setdefault(_GRAPHS, {})
        graph = graphs.get(add_test_edges)
        if graph is None:
            graph = graphs[add_test_edges] = original(self, manifest, write, add_test_edges)
        else:
            self.initialize()
        return graph

    Compiler.compile = compile  # type: ignore[method-assign]


def _select_exactly() -> None:
    from dbt.graph.selector import NodeSelector

    original = NodeSelector.select_nodes

    def select_nodes(self: Any, spec: Any, warn_on_no_nodes: bool = True) -> Any:
        exact = _exact
        if exact is None:
            return original(self, spec, warn_on_no_nodes)
        graph = self.full_graph.graph
        return {uid for uid in exact if uid in graph}, set()

    NodeSelector.select_nodes = select_nodes  # type: ignore[method-assign]


def _drop_unheard_events() -> None:
    from dbt_common.events.event_manager import EventManager

    original = EventManager.fire_event

    def fire_event(
        self: Any,
        e: Any,
        level: Any = None,
        node: Any = None,
        force_warn_or_error_handling: bool = False,
    ) -> None:
        floor = _floor
        if floor is not None and not self.loggers and not force_warn_or_error_handling:
            tag = level if level is not None else e.level_tag()
            rank = _RANKS.get(str(getattr(tag, "value", tag)), 20)
            if rank < floor and type(e).__name__ not in _ALWAYS:
                return
        original(self, e, level, node, force_warn_or_error_handling)

    EventManager.fire_event = fire_event  # type: ignore[method-assign]


def _serve_sessions() -> None:
    from dbt.task.runnable import GraphRunnableTask

    original = GraphRunnableTask.execute_nodes

    def execute_nodes(self: Any) -> Any:
        server = _server
        if server is None:
            return original(self)
        return server.execute_nodes(self)

    GraphRunnableTask.execute_nodes = execute_nodes  # type: ignore[method-assign]
