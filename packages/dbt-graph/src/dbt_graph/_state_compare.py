"""``state:`` selection: comparing each node with its counterpart in a previous manifest.

The rules mirror dbt-core's ``same_contents`` family resource type by resource type: what counts
as a change for a model (body, config, persisted descriptions, fqn, database representation,
contract, ref representation) differs from a generic test (config modifiers, fqn), a source
(relation, fqn, config, quoting, freshness, external) or an exposure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from dbt_graph._errors import SelectionError
from dbt_graph._manifest import Manifest
from dbt_graph._nodes import Node, ResourceType

#: Resource types dbt models as ``ParsedNode`` (they have a body, configs, a relation...).
PARSED_TYPES = frozenset(
    {
        ResourceType.MODEL,
        ResourceType.SEED,
        ResourceType.SNAPSHOT,
        ResourceType.TEST,
        ResourceType.ANALYSIS,
        ResourceType.OPERATION,
        ResourceType.SQL_OPERATION,
        ResourceType.FUNCTION,
    }
)
# Configs that are not compared: they belong to the database representation or are metadata.
_UNCOMPARED_NODE_CONFIGS = frozenset({"alias", "schema", "database", "tags", "group"})
_TEST_MODIFIERS = (
    "severity",
    "where",
    "limit",
    "fail_calc",
    "warn_if",
    "error_if",
    "store_failures",
    "store_failures_as",
)

Checker = Callable[[Node | None, Node], bool]


class StateComparison:
    """Answers ``state:<selector>`` for nodes of ``current`` against ``previous``."""

    def __init__(self, current: Manifest, previous: Manifest) -> None:
        self.current = current
        self.previous = previous
        self._modified_macros: frozenset[str] | None = None
        self._macro_changed: dict[str, bool] = {}
        self.checks: Mapping[str, Checker] = {
            "new": lambda old, new: old is None,
            "old": lambda old, new: old is not None,
            "modified": self.modified,
            "unmodified": lambda old, new: not self.modified(old, new),
            "modified.body": _when_parsed(_same_body),
            "modified.configs": self.modified_configs,
            "modified.persisted_descriptions": _when_parsed(_same_persisted_description),
            "modified.relation": self.modified_relation,
            "modified.macros": lambda old, new: self.macros_modified(new),
            "modified.contract": _when_parsed(_same_contract),
        }

    def search(self, nodes: Iterable[Node], selector: str) -> Iterator[str]:
        """unique_ids among ``nodes`` that match ``selector`` (``modified.body``...).

        Raises:
            SelectionError: ``selector`` is not a state selector.
        """
        check = self.checks.get(selector)
        if check is None:
            raise SelectionError(
                f"'{selector}' is not a state selector; use one of: {', '.join(self.checks)}."
            )
        previous = self.previous.nodes
        for node in nodes:
            if check(previous.get(node.unique_id), node):
                yield node.unique_id

    def modified(self, old: Node | None, new: Node) -> bool:
        """dbt's ``state:modified``: contents, upstream macros or the model contract changed."""
        return (
            not _same_contents(old, new)
            or self.macros_modified(new)
            or (
                new.resource_type is ResourceType.MODEL
                and old is not None
                and not _same_contract(old, new)
            )
        )

    def modified_configs(self, old: Node | None, new: Node) -> bool:
        if new.resource_type is ResourceType.UNIT_TEST:
            return False
        return old is None or not _same_config(old, new)

    def modified_relation(self, old: Node | None, new: Node) -> bool:
        if new.resource_type in PARSED_TYPES:
            return old is None or not _same_node_relation(old, new)
        if new.resource_type is ResourceType.SOURCE:
            return old is None or not _same_source_relation(old, new)
        return False

    def macros_modified(self, node: Node) -> bool:
        """Whether a macro the node calls, directly or through other macros, changed."""
        if self._modified_macros is None:
            self._modified_macros = _changed_macros(self.current, self.previous)
        if not self._modified_macros:
            return False
        return any(self._macro_closure_changed(m, set()) for m in node.depends_on_macros)

    def _macro_closure_changed(self, macro_id: str, visiting: set[str]) -> bool:
        known = self._macro_changed.get(macro_id)
        if known is not None:
            return known
        if macro_id in visiting:
            return False
        visiting.add(macro_id)
        assert self._modified_macros is not None
        macro = self.current.macros.get(macro_id)
        changed = macro_id in self._modified_macros or (
            macro is not None
            and any(self._macro_closure_changed(m, visiting) for m in macro.depends_on_macros)
        )
        self._macro_changed[macro_id] = changed
        return changed


def _changed_macros(current: Manifest, previous: Manifest) -> frozenset[str]:
    old, new = previous.macros, current.macros
    changed = {uid for uid, m in new.items() if uid not in old or old[uid].macro_sql != m.macro_sql}
    changed.update(uid for uid in old if uid not in new)
    return frozenset(changed)


def _when_parsed(same: Callable[[Node, Node], bool]) -> Checker:
    def check(old: Node | None, new: Node) -> bool:
        if new.resource_type not in PARSED_TYPES:
            return False
        return old is None or not same(old, new)

    return check


def _same_contents(old: Node | None, new: Node) -> bool:
    kind = new.resource_type
    if kind in PARSED_TYPES:
        if old is None:
            return False
        if kind is ResourceType.TEST and new.test_name is not None:
            return _same_config(old, new) and old.fqn == new.fqn
        same = (
            _same_body(old, new)
            and _same_config(old, new)
            and _same_persisted_description(old, new)
            and old.fqn == new.fqn
            and _same_node_relation(old, new)
            and _same_contract(old, new)
        )
        if kind is ResourceType.MODEL:
            same = same and _same_ref_representation(old, new)
        if kind is ResourceType.FUNCTION:
            same = same and _same_properties(old, new, "arguments", "returns")
        return same
    if kind is ResourceType.UNIT_TEST:
        return old is not None and old.checksum == new.checksum
    # dbt counts a source, exposure, metric, semantic model or saved query that is new as
    # unmodified (only state:new finds it).
    if old is None:
        return True
    return _SAME_OTHER.get(kind, lambda old, new: True)(old, new)


def _same_body(old: Node, new: Node) -> bool:
    if new.resource_type is ResourceType.SEED:
        return old.checksum == new.checksum
    return old.raw_code == new.raw_code


def _same_config(old: Node, new: Node) -> bool:
    kind = new.resource_type
    if kind is ResourceType.TEST:
        keys: Iterable[str] = _TEST_MODIFIERS
    elif kind in (ResourceType.SEMANTIC_MODEL, ResourceType.SAVED_QUERY):
        return dict(old.config) == dict(new.config)
    else:
        skipped = _UNCOMPARED_NODE_CONFIGS if kind in PARSED_TYPES else frozenset()
        if kind is ResourceType.METRIC:
            skipped = frozenset({"group"})
        keys = (set(old.unrendered_config) | set(new.unrendered_config)) - skipped
    return all(_same_key(old.unrendered_config, new.unrendered_config, k) for k in keys)


def _same_key(old: Mapping[str, Any], new: Mapping[str, Any], key: str) -> bool:
    if (key in old) != (key in new):
        return False
    return key not in old or bool(old[key] == new[key])


def _same_persisted_description(old: Node, new: Node) -> bool:
    persist = new.config.get("persist_docs") or {}
    if persist.get("relation") and old.description != new.description:
        return False
    if persist.get("columns"):
        mine = {k: c.description for k, c in new.columns.items()}
        theirs = {k: c.description for k, c in old.columns.items()}
        return mine == theirs
    return True


def _same_node_relation(old: Node, new: Node) -> bool:
    return all(
        old.unrendered_config.get(k) == new.unrendered_config.get(k)
        for k in ("database", "schema", "alias")
    )


def _same_source_relation(old: Node, new: Node) -> bool:
    return (
        old.database == new.database
        and old.schema == new.schema
        and old.properties.get("identifier") == new.properties.get("identifier")
    )


def _same_contract(old: Node, new: Node) -> bool:
    # Only models have contracts; dbt also raises for breaking changes to versioned models.
    if new.resource_type is not ResourceType.MODEL:
        return True
    if not old.contract_enforced and not new.contract_enforced:
        return True
    return (
        old.contract_enforced
        and new.contract_enforced
        and new.contract_checksum == old.contract_checksum
    )


def _same_ref_representation(old: Node, new: Node) -> bool:
    return (
        old.latest_version == new.latest_version
        and old.access == new.access
        and old.properties.get("deprecation_date") == new.properties.get("deprecation_date")
    )


def _same_properties(old: Node, new: Node, *keys: str) -> bool:
    return all(old.properties.get(k) == new.properties.get(k) for k in keys)


def _same_source(old: Node, new: Node) -> bool:
    return (
        _same_source_relation(old, new)
        and old.fqn == new.fqn
        and _same_config(old, new)
        and _same_properties(old, new, "quoting", "freshness", "external")
        and old.loaded_at_field == new.loaded_at_field
    )


def _same_exposure(old: Node, new: Node) -> bool:
    return (
        old.fqn == new.fqn
        and _same_properties(old, new, "type", "owner", "maturity", "url", "label")
        and old.description == new.description
        and set(old.depends_on) == set(new.depends_on)
        and _same_config(old, new)
    )


def _same_metric(old: Node, new: Node) -> bool:
    return (
        _same_properties(old, new, "type", "label")
        and old.description == new.description
        and _same_config(old, new)
    )


def _same_semantic_model(old: Node, new: Node) -> bool:
    keys = ("model", "defaults", "entities", "dimensions", "measures", "primary_entity")
    return (
        _same_properties(old, new, *keys)
        and old.description == new.description
        and _same_config(old, new)
        and old.group == new.group
    )


def _same_saved_query(old: Node, new: Node) -> bool:
    params_old = old.properties.get("query_params") or {}
    params_new = new.properties.get("query_params") or {}
    return (
        all(params_old.get(k) == params_new.get(k) for k in ("metrics", "group_by", "where"))
        and old.description == new.description
        and _same_properties(old, new, "label")
        and _same_config(old, new)
        and old.group == new.group
        and _same_exports(old.properties.get("exports") or [], new.properties.get("exports") or [])
        and old.tags == new.tags
    )


def _same_exports(old: list[Any], new: list[Any]) -> bool:
    if len(old) != len(new):
        return False
    for before, after in zip(old, new, strict=True):
        if before.get("name") != after.get("name"):
            return False
        was, now = before.get("unrendered_config") or {}, after.get("unrendered_config") or {}
        if any(was.get(k) != now.get(k) for k in ("export_as", "schema", "alias")):
            return False
    return True


_SAME_OTHER: Mapping[ResourceType, Callable[[Node, Node], bool]] = {
    ResourceType.SOURCE: _same_source,
    ResourceType.EXPOSURE: _same_exposure,
    ResourceType.METRIC: _same_metric,
    ResourceType.SEMANTIC_MODEL: _same_semantic_model,
    ResourceType.SAVED_QUERY: _same_saved_query,
}
