"""``select()``: dbt's node selection evaluated natively over a :class:`Manifest`.

A spec tree (:mod:`dbt_graph._selector_spec`, :mod:`dbt_graph._yaml_selectors`) is evaluated
bottom-up as dbt-core's ``NodeSelector`` does it. Each criterion yields *direct* nodes (what its
method matched, plus the graph operators' relatives, plus adjacent tests) and *indirect* ones
(tests held back by ``cautious``/``buildable`` until all their parents are known); set
operations combine both and let held-back tests in when the combined set allows it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import cached_property
from pathlib import Path

from dbt_graph._errors import SelectionError
from dbt_graph._manifest import Manifest
from dbt_graph._nodes import ResourceType
from dbt_graph._selector_methods import METHODS, SearchContext
from dbt_graph._selector_spec import (
    Combination,
    Criterion,
    IndirectSelection,
    Spec,
    parse_cli,
    split_terms,
)
from dbt_graph._state import SelectionState
from dbt_graph._state_compare import PARSED_TYPES
from dbt_graph._walks import ancestors, descendants
from dbt_graph._yaml_selectors import default_selector_name, yaml_selector_spec

#: Resource types ``dbt ls`` lists when ``--resource-type`` is not given.
DEFAULT_RESOURCE_TYPES = frozenset(
    {
        ResourceType.MODEL,
        ResourceType.SNAPSHOT,
        ResourceType.SEED,
        ResourceType.TEST,
        ResourceType.SOURCE,
        ResourceType.EXPOSURE,
        ResourceType.METRIC,
        ResourceType.SAVED_QUERY,
        ResourceType.SEMANTIC_MODEL,
        ResourceType.UNIT_TEST,
        ResourceType.FUNCTION,
    }
)
#: Resource types ``--resource-type all`` stands for.
ALL_RESOURCE_TYPES = DEFAULT_RESOURCE_TYPES | {ResourceType.ANALYSIS}

_TESTS = frozenset({ResourceType.TEST, ResourceType.UNIT_TEST})
# dbt re-examines held-back tests only among entries of manifest.nodes (not unit tests).
_NODES_SECTION = PARSED_TYPES - {ResourceType.FUNCTION}


def select(
    manifest: Manifest,
    select: str | Iterable[str] | None = None,
    exclude: str | Iterable[str] | None = None,
    *,
    selector: str | None = None,
    state: SelectionState | str | os.PathLike[str] | None = None,
    indirect_selection: IndirectSelection | str = IndirectSelection.EAGER,
    resource_types: Iterable[ResourceType | str] | None = None,
) -> frozenset[str]:
    """The unique_ids dbt selects for ``--select``/``--exclude``/``--selector``, without dbt.

    The result equals what ``dbt ls --output json --output-keys unique_id`` prints for the same
    arguments. Each of ``select``/``exclude`` is one string or several (like repeating the
    option); spaces separate unions, commas intersections. With no ``select``, ``exclude`` or
    ``selector``, the YAML selector marked ``default: true`` applies if there is one. As in
    dbt, a ``selector`` overrides ``select`` and ``exclude``.

    Args:
        manifest: The parsed manifest.
        select: Selection expression(s), e.g. ``"tag:nightly+ orders,config.materialized:table"``.
        exclude: Expression(s) whose nodes are removed.
        selector: The name of a YAML selector from ``selectors.yml``.
        state: For ``state:``, ``result:`` and ``source_status:``: a :class:`SelectionState`, or
            a dbt ``--state`` directory (the current ``sources.json`` is then read from the
            directory of the manifest's file).
        indirect_selection: ``eager`` (default), ``cautious``, ``buildable`` or ``empty``.
        resource_types: Keep only these types (``"all"`` and ``"default"`` work as in dbt's
            ``--resource-type``); ``None`` keeps dbt ls's default set (everything but analyses).

    Returns:
        The selected unique_ids.

    Raises:
        UnknownMethodError: The expression names a method dbt does not have.
        SelectionError: The expression, a method's value, a YAML selector or an argument is
            invalid; the message quotes the offending part.
        StateError: A state-based method lacks the artifact it compares against.

    Example:
        >>> from dbt_graph.testing import ManifestBuilder
        >>> m = (ManifestBuilder().seed("raw").model("stg", depends_on=["raw"], tags=["nightly"])
        ...      .test("not_null_stg", depends_on=["stg"]).model("mart", depends_on=["stg"])
        ...      .build())
        >>> sorted(select(m, "tag:nightly+"))
        ['model.p.mart', 'model.p.stg', 'test.p.not_null_stg']
        >>> sorted(select(m, "+mart", exclude="raw", indirect_selection="empty"))
        ['model.p.mart', 'model.p.stg']
    """
    mode = _indirect_selection(indirect_selection)
    wanted = _resource_types(resource_types)
    spec, expression = _spec(manifest, select, exclude, selector, mode)
    evaluator = _Evaluator(manifest, _state(state, manifest), expression)
    direct, _ = evaluator.evaluate(spec)
    nodes = manifest.nodes
    return frozenset(uid for uid in direct if nodes[uid].resource_type in wanted)


def _indirect_selection(value: IndirectSelection | str) -> IndirectSelection:
    try:
        return IndirectSelection(str(value).lower())
    except ValueError:
        modes = ", ".join(m.value for m in IndirectSelection)
        raise SelectionError(
            f"indirect_selection={value!r} is not a mode; use one of: {modes}.", part=str(value)
        ) from None


def _resource_types(values: Iterable[ResourceType | str] | None) -> frozenset[ResourceType]:
    items = [values] if isinstance(values, str) else list(values or ())
    if not items:
        return DEFAULT_RESOURCE_TYPES
    wanted: set[ResourceType] = set()
    for item in items:
        if item == "all":
            wanted |= ALL_RESOURCE_TYPES
        elif item == "default":
            wanted |= DEFAULT_RESOURCE_TYPES
        else:
            try:
                wanted.add(ResourceType(item))
            except ValueError:
                known = ", ".join(["all", "default", *sorted(t.value for t in ResourceType)])
                raise SelectionError(
                    f"{item!r} is not a resource type; use one of: {known}.", part=str(item)
                ) from None
    return frozenset(wanted)


def _state(
    state: SelectionState | str | os.PathLike[str] | None, manifest: Manifest
) -> SelectionState | None:
    if state is None or isinstance(state, SelectionState):
        return state
    target = manifest.path.parent if manifest.path is not None else None
    return SelectionState.load(Path(state), target_dir=target)


def _spec(
    manifest: Manifest,
    select: str | Iterable[str] | None,
    exclude: str | Iterable[str] | None,
    selector: str | None,
    mode: IndirectSelection,
) -> tuple[Spec, str]:
    """The spec tree to evaluate, and the expression to quote in errors."""
    included, excluded = split_terms(select), split_terms(exclude)
    if selector is None and included is None and excluded is None:
        selector = default_selector_name(manifest)
    if selector is not None:
        spec = yaml_selector_spec(manifest, selector, indirect_selection=mode)
        return spec, f"--selector {selector}"
    cli = parse_cli(included, excluded, indirect_selection=mode)
    return cli, cli.raw


class _Evaluator:
    def __init__(self, manifest: Manifest, state: SelectionState | None, expression: str) -> None:
        self.manifest = manifest
        self.nodes = manifest.nodes
        self.parents = manifest.parent_map
        self.children = manifest.child_map
        self.expression = expression
        self.context = SearchContext(manifest, state, tuple(manifest.nodes.values()))

    @cached_property
    def sources(self) -> frozenset[str]:
        return frozenset(
            uid for uid, n in self.nodes.items() if n.resource_type is ResourceType.SOURCE
        )

    def evaluate(self, spec: Spec) -> tuple[set[str], set[str]]:
        """(direct, indirect) unique_ids for a spec."""
        if isinstance(spec, Criterion):
            return self.criterion(spec)
        return self.combination(spec)

    def combination(self, spec: Combination) -> tuple[set[str], set[str]]:
        bundles = [self.evaluate(component) for component in spec.components]
        direct = spec.combine([d for d, _ in bundles])
        indirect = spec.combine([d | i for d, i in bundles])
        return self.incorporate(direct, indirect, spec.indirect_selection), indirect

    def criterion(self, spec: Criterion) -> tuple[set[str], set[str]]:
        try:
            collected = set(METHODS[spec.method](self.context, spec.arguments, spec.value))
        except SelectionError as exc:
            if exc.part is not None:
                raise
            raise type(exc)(
                f"{spec.raw!r}: {exc}", expression=self.expression, part=spec.raw
            ) from None
        selected = set(collected)
        if spec.childrens_parents:
            family = descendants(self.children, collected) | collected
            selected |= ancestors(self.parents, family) | family
        if spec.parents:
            selected |= ancestors(self.parents, collected, depth=spec.parents_depth)
        if spec.children:
            selected |= descendants(self.children, collected, depth=spec.children_depth)
        if spec.indirect_selection is IndirectSelection.EMPTY:
            return selected, set()
        return self.expand(selected, spec.indirect_selection)

    def expand(self, selected: set[str], mode: IndirectSelection) -> tuple[set[str], set[str]]:
        """Add the tests next to ``selected``; return them as direct or held back."""
        direct, held_back = set(selected), set()
        buildable: set[str] = set()
        if mode is IndirectSelection.BUILDABLE:
            buildable = selected | ancestors(self.parents, selected) | self.sources
        adjacent = {child for uid in selected for child in self.children.get(uid, ())}
        for uid in adjacent:
            node = self.nodes[uid]
            if node.resource_type not in _TESTS:
                continue
            parents = set(node.depends_on)
            if (
                mode is IndirectSelection.EAGER
                or parents <= selected
                or (mode is IndirectSelection.BUILDABLE and parents <= buildable)
            ):
                direct.add(uid)
            else:
                held_back.add(uid)
        return direct, held_back

    def incorporate(
        self, direct: set[str], indirect: set[str], mode: IndirectSelection
    ) -> set[str]:
        """Let in held-back tests whose parents the combined selection now covers."""
        if direct == indirect or mode not in (
            IndirectSelection.CAUTIOUS,
            IndirectSelection.BUILDABLE,
        ):
            return direct
        selected = set(direct)
        allowed = selected
        if mode is IndirectSelection.BUILDABLE:
            allowed = selected | ancestors(self.parents, selected)
        for uid in indirect:
            node = self.nodes[uid]
            if node.resource_type in _NODES_SECTION and set(node.depends_on) <= allowed:
                selected.add(uid)
        return selected
