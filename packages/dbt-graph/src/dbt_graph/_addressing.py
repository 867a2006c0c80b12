"""Node addressing: a dbt ``--select`` argument that selects exactly one node.

The address starts from ``fqn:<dotted fqn>``. dbt's fqn method also matches longer fqns (a unit
test's fqn extends its model's), leaf names and, for versioned models, ``name_vN`` spellings, so
other nodes may share the address; it is then intersected with ``resource_type:``, ``package:``
and ``file:`` criteria until only the node is left. Sources, exposures, metrics, semantic models
and saved queries use their own methods (``source:pkg.source.table``...).

Exactness is checked with the same matching rules :func:`dbt_graph.select` uses, through an index
of fqn keys built once per manifest, so addressing every node of a large project stays cheap.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from fnmatch import fnmatch
from pathlib import PurePosixPath

from dbt_graph._errors import SelectionError
from dbt_graph._manifest import Manifest
from dbt_graph._nodes import Node, ResourceType
from dbt_graph._selector_methods import FqnMatcher

_WILDCARDS = frozenset("*?[]")
_NAMED = {
    ResourceType.EXPOSURE: "exposure",
    ResourceType.METRIC: "metric",
    ResourceType.SEMANTIC_MODEL: "semantic_model",
    ResourceType.SAVED_QUERY: "saved_query",
}
_INDEXES: weakref.WeakKeyDictionary[Manifest, _FqnIndex] = weakref.WeakKeyDictionary()


def node_selector(node: Node | str, manifest: Manifest) -> str:
    """A dbt ``--select`` argument that selects exactly ``node``.

    The selection is exact with ``--indirect-selection empty``, and with any indirect-selection
    mode in commands that only run the node's own resource type (``dbt run`` for a model,
    ``dbt seed``, ``dbt snapshot``, ``dbt test`` for a test or unit test): otherwise dbt adds
    the tests of a selected model, as it always does.

    Args:
        node: The node, or its unique_id.
        manifest: The manifest the node belongs to.

    Returns:
        The selector, e.g. ``fqn:shop.staging.stg_orders``,
        ``fqn:shop.marts.orders,resource_type:model`` or ``source:shop.shop_app.orders``.

    Raises:
        KeyError: The node is not in the manifest.
        SelectionError: No selector built from fqn, resource type, package and file singles
            the node out (two nodes share all of them).

    Example:
        >>> from dbt_graph.testing import ManifestBuilder
        >>> m = ManifestBuilder().model("orders").unit_test("test_paid", model="orders").build()
        >>> node_selector("model.p.orders", m)
        'fqn:p.orders,resource_type:model'
        >>> node_selector("unit_test.p.orders.test_paid", m)
        'fqn:p.orders.test_paid'
    """
    target = manifest.node(node if isinstance(node, str) else node.unique_id)
    index = _INDEXES.get(manifest)
    if index is None:
        index = _INDEXES[manifest] = _FqnIndex(manifest)
    for selector, matched in _candidates(target, manifest, index):
        if matched == {target.unique_id}:
            return selector
    raise SelectionError(
        f"No selector singles out {target.unique_id}: other nodes share its fqn, resource type, "
        "package and file. Rename one of them.",
        part=target.unique_id,
    )


def _candidates(node: Node, manifest: Manifest, index: _FqnIndex) -> Iterable[tuple[str, set[str]]]:
    kind = node.resource_type
    if kind is ResourceType.SOURCE:
        selector = f"source:{node.package_name}.{node.source_name}.{node.name}"
        yield (
            selector,
            {
                n.unique_id
                for n in manifest.nodes.values()
                if n.resource_type is ResourceType.SOURCE
                and fnmatch(n.package_name, node.package_name)
                and fnmatch(n.source_name or "", node.source_name or "")
                and fnmatch(n.name, node.name)
            },
        )
        return
    base = f"fqn:{'.'.join(node.fqn)}"
    matched = index.matches(".".join(node.fqn))
    file = PurePosixPath(node.original_file_path).name
    filters: list[tuple[str, Callable[[Node], bool]]] = [
        (f"resource_type:{kind.value}", lambda n: n.resource_type is kind),
        (f"package:{node.package_name}", lambda n: fnmatch(n.package_name, node.package_name)),
        (f"file:{file}", lambda n: _file_matches(n, file)),
    ]
    for chosen in ((), (0,), (0, 1), (0, 2), (0, 1, 2)):
        parts = [base, *(filters[i][0] for i in chosen)]
        yield (
            ",".join(parts),
            {uid for uid in matched if all(filters[i][1](manifest.nodes[uid]) for i in chosen)},
        )
    named = _NAMED.get(kind)
    if named is not None:
        yield (
            f"{named}:{node.package_name}.{node.name}",
            {
                n.unique_id
                for n in manifest.nodes.values()
                if n.resource_type is kind
                and fnmatch(n.package_name, node.package_name)
                and fnmatch(n.name, node.name)
            },
        )


def _file_matches(node: Node, pattern: str) -> bool:
    file = PurePosixPath(node.original_file_path)
    return fnmatch(file.name, pattern) or fnmatch(file.stem, pattern)


def _flat(fqn: Iterable[str]) -> list[str]:
    return [piece for segment in fqn for piece in segment.split(".")]


class _FqnIndex:
    """For a wildcard-free ``fqn:`` value, the few nodes that could match it.

    A node matches ``fqn:a.b.c`` when its leaf is ``a.b.c``, when (versioned) its name is
    ``a.b.c`` or its ``name_vN`` equals ``b_c``, or when its flattened fqn (or the fqn without
    the package) has ``c`` at position 2 with ``a.b`` before it. Every node is filed under
    those keys; a lookup reads the keys of the value and confirms each hit with the real rule.
    """

    def __init__(self, manifest: Manifest) -> None:
        # The nodes, not the manifest: the index is the value of a weak-keyed mapping whose key
        # is the manifest, and a value that refers to its key keeps the entry alive for ever.
        self.nodes = manifest.nodes
        self.keys: defaultdict[tuple[object, ...], set[str]] = defaultdict(set)
        for node in manifest.nodes.values():
            if node.resource_type is ResourceType.SOURCE or not node.fqn:
                continue
            uid, fqn = node.unique_id, node.fqn
            for variant in (fqn, fqn[1:]):
                if not variant:
                    continue
                for position, piece in enumerate(_flat(variant)):
                    self.keys[("prefix", position, piece)].add(uid)
                if _versioned(node):
                    if len(variant) > 1:
                        self.keys[("name", variant[-2])].add(uid)
                    self.keys[("joined", "_".join(variant[-2:]))].add(uid)
                else:
                    self.keys[("leaf", variant[-1])].add(uid)

    def matches(self, value: str) -> set[str]:
        """unique_ids of the (non-source) nodes ``fqn:<value>`` matches."""
        nodes = self.nodes
        if _WILDCARDS.intersection(value):
            candidates: Iterable[str] = nodes
        else:
            parts = value.split(".")
            candidates = set().union(
                self.keys.get(("leaf", value), ()),
                self.keys.get(("name", value), ()),
                self.keys.get(("joined", "_".join(parts[-2:])), ()),
                self.keys.get(("prefix", len(parts) - 1, parts[-1]), ()),
            )
        matches = FqnMatcher(value)
        found = set()
        for uid in candidates:
            node = nodes[uid]
            if node.resource_type is ResourceType.SOURCE:
                continue
            versioned = _versioned(node)
            if matches(node.fqn, versioned) or matches(node.fqn[1:], versioned):
                found.add(uid)
        return found


def _versioned(node: Node) -> bool:
    return node.resource_type is ResourceType.MODEL and node.version is not None
