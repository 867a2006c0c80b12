"""Walks over a dependency graph: ancestors, descendants, nearest ancestors, topological order.

A graph is a mapping from each node to the nodes it points at: ``manifest.parent_map`` or
``plan.dependencies`` to walk upstream, ``manifest.child_map`` to walk downstream. Ids that are
not keys of the mapping have no edges of their own. Every walk is iterative, so a chain of any
length is fine (no recursion limit), and each is linear in the size of the part it visits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dbt_graph._errors import CycleError
from dbt_graph._manifest import Manifest
from dbt_graph._nodes import ResourceType

Graph = Mapping[str, Iterable[str]]


def ancestors(
    parents: Graph, start: str | Iterable[str], *, depth: int | None = None
) -> frozenset[str]:
    """Every node upstream of ``start``, at most ``depth`` edges away (``None``: no limit).

    A start node is included only when it is upstream of another start node.

    >>> parents = {"mart": ["stg"], "stg": ["raw"], "raw": []}
    >>> sorted(ancestors(parents, "mart"))
    ['raw', 'stg']
    >>> sorted(ancestors(parents, "mart", depth=1))
    ['stg']
    >>> sorted(ancestors(parents, ["mart", "stg"]))
    ['raw', 'stg']
    """
    return _reach(parents, start, depth)


def descendants(
    children: Graph, start: str | Iterable[str], *, depth: int | None = None
) -> frozenset[str]:
    """Every node downstream of ``start``: :func:`ancestors` over the children mapping.

    >>> sorted(descendants({"raw": ["stg"], "stg": ["mart", "other"]}, "raw"))
    ['mart', 'other', 'stg']
    """
    return _reach(children, start, depth)


def upstream_sources(manifest: Manifest, selected: Iterable[str]) -> frozenset[str]:
    """The sources upstream of the nodes of ``selected`` that run (executables and tests).

    >>> from dbt_graph.testing import ManifestBuilder
    >>> m = (ManifestBuilder().source("app", "orders").source("app", "unused")
    ...      .model("stg", depends_on=["app.orders"]).model("mart", depends_on=["stg"]).build())
    >>> sorted(upstream_sources(m, ["model.p.mart"]))
    ['source.p.app.orders']
    """
    nodes = manifest.nodes
    runs = [
        uid for uid in selected if uid in nodes and (nodes[uid].is_executable or nodes[uid].is_test)
    ]
    return frozenset(
        uid
        for uid in ancestors(manifest.parent_map, runs)
        if nodes[uid].resource_type is ResourceType.SOURCE
    )


def drop_fed_by(
    manifest: Manifest, selected: Iterable[str], sources: Iterable[str]
) -> tuple[frozenset[str], dict[str, tuple[str, ...]]]:
    """Remove from ``selected`` the nodes that run (executables, tests) downstream of ``sources``.

    Used to leave out what stale sources feed.

    Returns:
        The nodes kept, and each removed node (in manifest order) with the sources of
        ``sources`` upstream of it, sorted.

    >>> from dbt_graph.testing import ManifestBuilder
    >>> m = (ManifestBuilder().source("app", "orders").model("stg", depends_on=["app.orders"])
    ...      .model("other").build())
    >>> kept, dropped = drop_fed_by(m, m.nodes, ["source.p.app.orders"])
    >>> sorted(kept), dropped
    (['model.p.other', 'source.p.app.orders'], {'model.p.stg': ('source.p.app.orders',)})
    """
    nodes, chosen = manifest.nodes, set(selected)
    feeding: dict[str, set[str]] = {}
    for source in set(sources):
        for uid in descendants(manifest.child_map, source) & chosen:
            if nodes[uid].is_executable or nodes[uid].is_test:
                feeding.setdefault(uid, set()).add(source)
    dropped = {uid: tuple(sorted(feeding[uid])) for uid in nodes if uid in feeding}
    return frozenset(chosen - feeding.keys()), dropped


def _reach(edges: Graph, start: str | Iterable[str], depth: int | None) -> frozenset[str]:
    found: set[str] = set()
    layer = {start} if isinstance(start, str) else set(start)
    steps = 0
    while layer and (depth is None or steps < depth):
        layer = {n for uid in layer for n in edges.get(uid, ()) if n not in found}
        found |= layer
        steps += 1
    return frozenset(found)


def nearest_ancestors(
    parents: Graph,
    nodes: Iterable[str],
    *,
    keep: Callable[[str], bool],
    through: Callable[[str], bool],
) -> dict[str, tuple[str, ...]]:
    """For each of ``nodes``, its nearest ancestors that ``keep`` accepts.

    A parent that is not kept but that ``through`` accepts stands for its own nearest kept
    ancestors (as an ephemeral model stands for the models it selects from); any other parent
    ends the walk there. Results keep the order of discovery (parents in mapping order, each
    looked-through node expanded in place), without repeats.

    >>> parents = {"mart": ["eph", "src"], "eph": ["stg"], "stg": ["src"], "src": []}
    >>> nearest_ancestors(parents, ["mart"], keep=lambda u: u == "stg",
    ...                   through=lambda u: u == "eph")
    {'mart': ('stg',)}
    """
    stands_for: dict[str, tuple[str, ...]] = {}

    def expand(uid: str) -> tuple[str, ...]:
        found: dict[str, None] = {}
        for parent in parents.get(uid, ()):
            if keep(parent):
                found[parent] = None
            elif parent in stands_for:
                found.update(dict.fromkeys(stands_for[parent]))
        return tuple(found)

    def resolve(root: str) -> None:
        # Depth-first post-order: a looked-through node is expanded after every looked-through
        # parent it has. A node already on the path (a cycle) stands for nothing more.
        path, on_path = [root], {root}
        while path:
            pending = next(
                (
                    p
                    for p in parents.get(path[-1], ())
                    if p not in stands_for and p not in on_path and not keep(p) and through(p)
                ),
                None,
            )
            if pending is not None:
                path.append(pending)
                on_path.add(pending)
                continue
            uid = path.pop()
            on_path.discard(uid)
            stands_for[uid] = expand(uid)

    out: dict[str, tuple[str, ...]] = {}
    for uid in nodes:
        for parent in parents.get(uid, ()):
            if parent not in stands_for and not keep(parent) and through(parent):
                resolve(parent)
        out[uid] = expand(uid)
    return out


def topological_generations(
    dependencies: Graph, *, key: Callable[[str], Any] | None = None
) -> list[tuple[str, ...]]:
    """The nodes in generations: each node comes after every node it depends on.

    Generation 0 holds the nodes without dependencies, generation 1 those whose dependencies
    are all in generation 0, and so on (Kahn's algorithm). Dependencies on ids that are not keys
    of the mapping are ignored.

    Args:
        dependencies: Each node mapped to the nodes it depends on.
        key: Sorts each generation (default: the order of the mapping).

    Raises:
        CycleError: Some nodes depend on each other in a cycle; the error lists one cycle.

    >>> topological_generations({"d": ["b", "c"], "b": ["a"], "c": ["a"], "a": []})
    [('a',), ('b', 'c'), ('d',)]
    >>> topological_generations({"a": ["b"], "b": ["a"]})
    Traceback (most recent call last):
    ...
    dbt_graph._errors.CycleError: The dbt graph contains a dependency cycle: b -> a -> b. \
Remove one of these references (ref/source/depends_on) to break it.
    """
    position = {uid: i for i, uid in enumerate(dependencies)}
    sort_key = key or position.__getitem__
    waiting: dict[str, int] = {}
    dependents: dict[str, list[str]] = {uid: [] for uid in dependencies}
    for uid, parents in dependencies.items():
        inside = set(parents) & dependents.keys()
        waiting[uid] = len(inside)
        for parent in inside:
            dependents[parent].append(uid)
    current = sorted((uid for uid, n in waiting.items() if n == 0), key=sort_key)
    generations: list[tuple[str, ...]] = []
    while current:
        generations.append(tuple(current))
        released = []
        for uid in current:
            for child in dependents[uid]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    released.append(child)
        current = sorted(released, key=sort_key)
    if sum(map(len, generations)) < len(dependencies):
        blocked = {uid for uid, n in waiting.items() if n > 0}
        raise CycleError(_a_cycle(dependencies, blocked, position))
    return generations


def topological_order(dependencies: Graph, *, key: Callable[[str], Any] | None = None) -> list[str]:
    """The nodes of :func:`topological_generations`, one generation after the other.

    >>> topological_order({"mart": ["stg"], "stg": ["raw"], "raw": []})
    ['raw', 'stg', 'mart']
    """
    generations = topological_generations(dependencies, key=key)
    return [uid for generation in generations for uid in generation]


def _a_cycle(dependencies: Graph, blocked: set[str], position: Mapping[str, int]) -> list[str]:
    """One cycle among ``blocked`` (nodes Kahn's algorithm could not place), upstream first."""
    # Every blocked node waits for a blocked dependency, so following those from any blocked
    # node must come back to a node already on the path.
    uid = min(blocked, key=position.__getitem__)
    path: list[str] = []
    seen: dict[str, int] = {}
    while uid not in seen:
        seen[uid] = len(path)
        path.append(uid)
        uid = next(p for p in dependencies[uid] if p in blocked)
    return path[seen[uid] :][::-1]
