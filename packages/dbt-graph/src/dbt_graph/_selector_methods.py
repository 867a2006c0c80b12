"""Selector methods: what ``tag:x``, ``path:y``, ``config.k:v``... match, in a registry.

Each method is a function ``(context, arguments, value) -> matching unique_ids`` registered under
its :class:`~dbt_graph._selector_spec.MethodName`. Wildcards follow dbt: ``fnmatch`` patterns
for names, glob patterns for paths. A method raises :class:`SelectionError` (without the
offending part: the caller adds it) for values it cannot interpret.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fnmatch import fnmatch
from functools import cached_property
from typing import Any

from dbt_graph._errors import SelectionError, StateError
from dbt_graph._manifest import Manifest
from dbt_graph._nodes import Node, ResourceType
from dbt_graph._path_glob import PathIndex, ancestors
from dbt_graph._selector_spec import MethodName
from dbt_graph._state import SelectionState
from dbt_graph._state_compare import PARSED_TYPES, StateComparison

_WILDCARDS = frozenset("*?[]")
# Resource types dbt knows but manifests never hold as nodes: valid, and they match nothing.
_OTHER_RESOURCE_TYPES = frozenset({"rpc", "fixture"})


@dataclass(eq=False)
class SearchContext:
    """What methods search: the manifest's selectable nodes and the comparison state."""

    manifest: Manifest
    state: SelectionState | None = None
    nodes: Sequence[Node] = field(default_factory=tuple)

    @cached_property
    def paths(self) -> PathIndex:
        """The files and directories of the root project that the manifest reveals."""
        return PathIndex.for_manifest(self.manifest)

    @cached_property
    def state_comparison(self) -> StateComparison:
        if self.state is None or self.state.manifest is None:
            raise StateError(
                "state: selectors compare against a previous manifest, and none was given. "
                "Pass state=SelectionState.load(<dir with the previous manifest.json>)."
            )
        return StateComparison(self.manifest, self.state.manifest)

    def of_types(self, types: Iterable[ResourceType]) -> Iterator[Node]:
        wanted = frozenset(types)
        return (n for n in self.nodes if n.resource_type in wanted)


Method = Callable[[SearchContext, tuple[str, ...], Any], Iterable[str]]

_NON_SOURCE = frozenset(ResourceType) - {ResourceType.SOURCE}
_GROUPABLE = PARSED_TYPES - {ResourceType.FUNCTION} | {ResourceType.METRIC}
_CONFIGURABLE = PARSED_TYPES - {ResourceType.FUNCTION} | {ResourceType.SOURCE}
_PARSED_AND_UNIT = PARSED_TYPES - {ResourceType.FUNCTION} | {ResourceType.UNIT_TEST}


def fqn_matches(fqn: Sequence[str], selector: str, *, versioned: bool) -> bool:
    """dbt's fqn rule: the leaf name, a dotted prefix, or a wildcard pattern of the fqn.

    >>> fqn_matches(("shop", "marts", "orders"), "shop.marts", versioned=False)
    True
    >>> fqn_matches(("shop", "marts", "customers", "v2"), "customers_v2", versioned=True)
    True
    """
    return FqnMatcher(selector)(fqn, versioned)


class FqnMatcher:
    """:func:`fqn_matches` for one selector, prepared once for many fqns."""

    def __init__(self, selector: str) -> None:
        self.selector = selector
        self.wanted = selector.split(".")
        self.joined_tail = "_".join(self.wanted[-2:])
        self.prefix = selector + "."
        self.slurp = next(
            (i for i, part in enumerate(self.wanted) if _WILDCARDS.intersection(part)), None
        )

    def __call__(self, fqn: Sequence[str], versioned: bool) -> bool:
        if not fqn:
            return False
        selector = self.selector
        if versioned:
            if len(fqn) > 1 and fqn[-2] == selector:
                return True
            if "_".join(fqn[-2:]) == self.joined_tail:
                return True
        elif fqn[-1] == selector:
            return True
        joined = ".".join(fqn)
        if self.slurp is None:
            # The flattened fqn starts with the selector's parts.
            return joined == selector or joined.startswith(self.prefix)
        flat, wanted, i = joined.split("."), self.wanted, self.slurp
        if len(flat) < len(wanted) or flat[:i] != wanted[:i]:
            return False
        if fnmatch(".".join(flat[i:]), ".".join(wanted[i:])):
            return True
        if "." not in selector:
            return fnmatch(fqn[-2] if versioned and len(fqn) > 1 else fqn[-1], selector)
        return False


def _is_versioned(node: Node) -> bool:
    return node.resource_type is ResourceType.MODEL and node.version is not None


def _fqn(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    matches = FqnMatcher(str(value))
    for node in ctx.of_types(_NON_SOURCE):
        versioned = _is_versioned(node)
        if matches(node.fqn, versioned) or matches(node.fqn[1:], versioned):
            yield node.unique_id


def _tag(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    pattern = str(value)
    return (n.unique_id for n in ctx.nodes if any(fnmatch(t, pattern) for t in n.tags))


def _group(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    pattern = str(value)
    for node in ctx.of_types(_GROUPABLE):
        group = node.config.get("group")
        if group and fnmatch(str(group), pattern):
            yield node.unique_id


def _access(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    return (n.unique_id for n in ctx.of_types([ResourceType.MODEL]) if n.access == value)


def _source(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    parts = str(value).split(".")
    if len(parts) > 3:
        raise SelectionError(
            f"{value!r} is not a valid source selector value; write <source>, "
            "<source>.<table> or <package>.<source>.<table>."
        )
    package, source, table = {
        1: ("*", parts[0], "*"),
        2: ("*", *parts),
        3: tuple(parts),
    }[len(parts)]
    for node in ctx.of_types([ResourceType.SOURCE]):
        if (
            fnmatch(node.package_name, package)
            and fnmatch(node.source_name or "", source)
            and fnmatch(node.name, table)
        ):
            yield node.unique_id


def _named(resource_type: ResourceType) -> Method:
    what = resource_type.value.replace("_", " ")

    def search(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
        parts = str(value).split(".")
        if len(parts) > 2:
            raise SelectionError(
                f"{value!r} is not a valid {what} selector value; write <name> or <package>.<name>."
            )
        package, name = parts if len(parts) == 2 else ("*", parts[0])
        for node in ctx.of_types([resource_type]):
            if fnmatch(node.package_name, package) and fnmatch(node.name, name):
                yield node.unique_id

    return search


def _path(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    try:
        matched = ctx.paths.glob(str(value))
    except ValueError as exc:
        raise SelectionError(f"{value!r} is not a usable path pattern: {exc}.") from None
    if not matched:
        return
    for node in ctx.nodes:
        file = node.original_file_path
        patch = node.patch_path.split("://", 1)[-1] if node.patch_path else None
        if (
            file in matched
            or (patch is not None and patch in matched)
            or any(parent in matched for parent in ancestors(file))
        ):
            yield node.unique_id


def _file(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    pattern = str(value)
    for node in ctx.nodes:
        name = node.original_file_path.rsplit("/", 1)[-1]
        dot = name.rfind(".")
        stem = name[:dot] if dot > 0 else name
        if fnmatch(name, pattern) or fnmatch(stem, pattern):
            yield node.unique_id


def _package(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    pattern = str(value)
    if pattern == "this" and ctx.manifest.project_name:
        pattern = ctx.manifest.project_name
    return (n.unique_id for n in ctx.nodes if fnmatch(n.package_name, pattern))


def _lookup(config: Mapping[str, Any], keys: Sequence[str]) -> tuple[bool, Any]:
    value: Any = config
    for key in keys:
        if not isinstance(value, Mapping) or key not in value:
            return False, None
        value = value[key]
    return True, value


def _config(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    # Test severity is compared case-insensitively ("warn" matches "WARN"), as in dbt.
    fold = arguments == ("severity",)
    flag = str(value).upper()

    def equal(configured: Any) -> bool:
        if fold and isinstance(value, str) and isinstance(configured, str):
            return value.upper() == configured.upper()
        return bool(value == configured)

    for node in ctx.of_types(_CONFIGURABLE):
        found, configured = _lookup(node.config, arguments)
        if not found:
            continue
        if isinstance(configured, list):
            hit = (
                any(equal(item) for item in configured)
                or (flag == "TRUE" and True in configured)
                or (flag == "FALSE" and False in configured)
            )
        else:
            hit = (
                equal(configured)
                or (flag == "TRUE" and configured is True)
                or (flag == "FALSE" and configured is False)
            )
        if hit:
            yield node.unique_id


def _resource_type(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    wanted = str(value)
    if wanted not in {t.value for t in ResourceType} | _OTHER_RESOURCE_TYPES:
        known = ", ".join(sorted(t.value for t in ResourceType))
        raise SelectionError(f"{wanted!r} is not a resource type; use one of: {known}.")
    return (n.unique_id for n in ctx.nodes if n.resource_type == wanted)


def _test_name(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    pattern = str(value)
    for node in ctx.of_types(_PARSED_AND_UNIT):
        if node.resource_type is ResourceType.TEST and node.test_name is not None:
            if fnmatch(node.test_name, pattern):
                yield node.unique_id
        elif node.resource_type is ResourceType.UNIT_TEST and fnmatch(node.name, pattern):
            yield node.unique_id


def _test_type(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    wanted = str(value)
    # dbt tests membership in the strings "data", "singular" and "unit", so any substring of
    # them ("sing", "at") is accepted too.
    if wanted in ("generic", "schema"):
        kinds = {"generic"}
    elif wanted in "data":
        kinds = {"generic", "singular"}
    elif wanted in "singular":
        kinds = {"singular"}
    elif wanted in "unit":
        kinds = {"unit"}
    else:
        raise SelectionError(f"{wanted!r} is not a test type; use generic, singular, unit or data.")
    for node in ctx.of_types(_PARSED_AND_UNIT):
        if node.resource_type is ResourceType.UNIT_TEST:
            kind = "unit"
        elif node.resource_type is ResourceType.TEST:
            kind = "generic" if node.test_name is not None else "singular"
        else:
            continue
        if kind in kinds:
            yield node.unique_id


def _state(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    return ctx.state_comparison.search(ctx.nodes, str(value))


def _result(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    if ctx.state is None or ctx.state.results is None:
        raise StateError(
            "result: selectors need the previous run_results.json, and none was given. Pass "
            "state=SelectionState.load(<dir with run_results.json>)."
        )
    results = ctx.state.results
    return (n.unique_id for n in ctx.nodes if results.get(n.unique_id) == value)


def _source_status(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    state = ctx.state
    if state is None or state.sources is None:
        raise StateError(
            "source_status: selectors need the previous sources.json, and none was given. "
            "Pass state=SelectionState.load(<dir with sources.json>, target_dir=...)."
        )
    if state.current_sources is None:
        raise StateError(
            "source_status: selectors need the current sources.json (from `dbt source "
            "freshness` in this project's target directory), and none was given. Pass "
            "SelectionState.load(..., target_dir=<project>/target)."
        )
    matches: set[str] = set()
    if value == "fresher":
        # As in dbt: a source is fresher when its current check succeeded and the previous one
        # did not exist, failed, or saw older data. Other values match nothing.
        for uid, loaded in state.current_sources.items():
            before = state.sources.get(uid)
            if loaded is not None and (before is None or loaded > before):
                matches.add(uid)
    return (n.unique_id for n in ctx.nodes if n.unique_id in matches)


def _version(ctx: SearchContext, arguments: tuple[str, ...], value: Any) -> Iterator[str]:
    wanted = str(value)
    tests: Mapping[str, Callable[[Node], bool]] = {
        "latest": lambda n: n.version is not None and n.version == n.latest_version,
        "prerelease": lambda n: _versions_compare(n.version, n.latest_version) > 0,
        "old": lambda n: _versions_compare(n.version, n.latest_version) < 0,
        "none": lambda n: n.version is None,
    }
    if wanted not in tests:
        raise SelectionError(
            f"{wanted!r} is not a version selector; use latest, prerelease, old or none."
        )
    test = tests[wanted]
    return (n.unique_id for n in ctx.of_types([ResourceType.MODEL]) if test(n))


def _versions_compare(version: str | None, latest: str | None) -> int:
    """-1, 0, 1 comparing as numbers where both are numeric, else as strings; 0 if one is unset."""
    if not version or not latest:
        return 0
    try:
        a: float | str = float(version)
        b: float | str = float(latest)
    except ValueError:
        a, b = version, latest
    return (a > b) - (a < b)  # type: ignore[operator]


METHODS: Mapping[MethodName, Method] = {
    MethodName.FQN: _fqn,
    MethodName.TAG: _tag,
    MethodName.GROUP: _group,
    MethodName.ACCESS: _access,
    MethodName.SOURCE: _source,
    MethodName.PATH: _path,
    MethodName.FILE: _file,
    MethodName.PACKAGE: _package,
    MethodName.CONFIG: _config,
    MethodName.TEST_NAME: _test_name,
    MethodName.TEST_TYPE: _test_type,
    MethodName.RESOURCE_TYPE: _resource_type,
    MethodName.STATE: _state,
    MethodName.EXPOSURE: _named(ResourceType.EXPOSURE),
    MethodName.METRIC: _named(ResourceType.METRIC),
    MethodName.RESULT: _result,
    MethodName.SOURCE_STATUS: _source_status,
    MethodName.VERSION: _version,
    MethodName.SEMANTIC_MODEL: _named(ResourceType.SEMANTIC_MODEL),
    MethodName.SAVED_QUERY: _named(ResourceType.SAVED_QUERY),
    MethodName.UNIT_TEST: _named(ResourceType.UNIT_TEST),
}
