"""The selection grammar as a tree of specs: parsing ``--select``/``--exclude`` strings.

A *criterion* is one ``[@][n+]method[.arg...]:value[+n]`` term. Criteria are combined into a tree
of set operations, exactly as dbt does on the command line::

    --select "a b,c" --exclude "d"   ->   difference(union(a, intersection(b, c)), union(d))

Spaces make unions, commas make intersections, ``--exclude`` a difference. Evaluation lives in
:mod:`dbt_graph._selection`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeAlias

from dbt_graph._errors import SelectionError, UnknownMethodError


class MethodName(StrEnum):
    """The selector methods dbt defines (``tag:``, ``path:``, ...)."""

    FQN = "fqn"
    TAG = "tag"
    GROUP = "group"
    ACCESS = "access"
    SOURCE = "source"
    PATH = "path"
    FILE = "file"
    PACKAGE = "package"
    CONFIG = "config"
    TEST_NAME = "test_name"
    TEST_TYPE = "test_type"
    RESOURCE_TYPE = "resource_type"
    STATE = "state"
    EXPOSURE = "exposure"
    METRIC = "metric"
    RESULT = "result"
    SOURCE_STATUS = "source_status"
    VERSION = "version"
    SEMANTIC_MODEL = "semantic_model"
    SAVED_QUERY = "saved_query"
    UNIT_TEST = "unit_test"


class IndirectSelection(StrEnum):
    """How tests next to selected nodes are pulled in (dbt's ``--indirect-selection``).

    * ``eager``: a test is selected when any of its parents is.
    * ``cautious``: only when all of its parents are selected.
    * ``buildable``: when all of its parents are selected or are ancestors of selected nodes.
    * ``empty``: never; only what the expression names is selected.
    """

    EAGER = "eager"
    CAUTIOUS = "cautious"
    BUILDABLE = "buildable"
    EMPTY = "empty"


class SetOperator(StrEnum):
    """How a :class:`Combination` joins the sets of its components."""

    UNION = "union"
    INTERSECTION = "intersection"
    DIFFERENCE = "difference"


@dataclass(frozen=True, kw_only=True)
class Criterion:
    """One selection term such as ``2+tag:nightly+`` or ``config.materialized:table``.

    Attributes:
        raw: The term as written (for error messages).
        method: The selector method.
        arguments: Dotted arguments after the method (``("materialized",)`` for ``config``).
        value: The value after the colon; a string on the command line, any YAML scalar in
            YAML selectors.
        parents: Whether ancestors are added (``+x``); ``parents_depth`` limits them (``2+x``).
        children: Whether descendants are added (``x+``); ``children_depth`` limits them.
        childrens_parents: ``@x``: descendants and all their ancestors.
        indirect_selection: How adjacent tests are pulled in.
    """

    raw: str
    method: MethodName
    arguments: tuple[str, ...] = ()
    value: Any
    parents: bool = False
    parents_depth: int | None = None
    children: bool = False
    children_depth: int | None = None
    childrens_parents: bool = False
    indirect_selection: IndirectSelection = IndirectSelection.EAGER


@dataclass(frozen=True, kw_only=True)
class Combination:
    """A set operation over child specs.

    ``indirect_selection`` matters for ``cautious`` and ``buildable``: tests held back by a
    component are re-examined once the combined set is known (a test on two models, each
    selected by a different part of a union, is selected by the union).
    """

    operator: SetOperator
    components: tuple[Spec, ...]
    indirect_selection: IndirectSelection = IndirectSelection.EAGER
    raw: str = ""

    def combine(self, sets: Sequence[set[str]]) -> set[str]:
        """Apply the operator to the component sets (the empty list gives the empty set)."""
        if not sets:
            return set()
        if self.operator is SetOperator.UNION:
            return set().union(*sets)
        if self.operator is SetOperator.INTERSECTION:
            return set(sets[0]).intersection(*sets[1:])
        return set(sets[0]).difference(*sets[1:])


Spec: TypeAlias = Criterion | Combination

#: What dbt selects when ``--select`` is not given.
DEFAULT_INCLUDES = ("fqn:*", "source:*", "exposure:*", "metric:*", "semantic_model:*")

_TERM = re.compile(
    r"\A(?P<childrens_parents>@)?"
    r"(?:(?P<parents_depth>\d*)(?P<parents>\+))?"
    r"(?:(?P<method>[\w.]+):)?"
    r"(?P<value>.*?)"
    r"(?:(?P<children>\+)(?P<children_depth>\d*))?\Z",
    re.DOTALL,
)
_FILE_SUFFIXES = (".sql", ".py", ".csv")
_METHODS_HELP = ", ".join(m.value for m in MethodName)


def default_method(value: str) -> MethodName:
    """The method dbt uses for a bare value: ``path`` for paths, ``file`` for file names.

    >>> default_method("models/staging"), default_method("orders.sql"), default_method("orders")
    (<MethodName.PATH: 'path'>, <MethodName.FILE: 'file'>, <MethodName.FQN: 'fqn'>)
    """
    if "/" in value:
        return MethodName.PATH
    if value.lower().endswith(_FILE_SUFFIXES):
        return MethodName.FILE
    return MethodName.FQN


def parse_method(
    method: str | None, value: Any, *, part: str, expression: str | None
) -> tuple[MethodName, tuple[str, ...]]:
    """Resolve ``method[.arg...]`` (or the default method for a bare value).

    Raises:
        UnknownMethodError: The method does not exist.
        SelectionError: Arguments where the method takes none, or ``config`` without a key.
    """
    if method is None:
        return default_method(str(value)), ()
    name, *arguments = method.split(".")
    try:
        resolved = MethodName(name)
    except ValueError:
        raise _unknown_method(name, part, expression) from None
    if resolved is MethodName.CONFIG and (not arguments or "" in arguments):
        raise SelectionError(
            f"{part!r}: the config method needs a key, e.g. 'config.materialized:table'.",
            expression=expression,
            part=part,
        )
    if resolved is not MethodName.CONFIG and arguments:
        raise SelectionError(
            f"{part!r}: the {name} method takes no '.{'.'.join(arguments)}' argument. Only "
            "config has dotted keys; for state use 'state:modified.body'.",
            expression=expression,
            part=part,
        )
    return resolved, tuple(arguments)


def parse_criterion(
    raw: str,
    *,
    indirect_selection: IndirectSelection = IndirectSelection.EAGER,
    expression: str | None = None,
) -> Criterion:
    """Parse one command-line term such as ``+tag:nightly`` or ``orders+2``.

    Args:
        raw: The term.
        indirect_selection: The mode for tests adjacent to what the term selects.
        expression: The whole expression, for error messages.

    Raises:
        UnknownMethodError: The method does not exist.
        SelectionError: The term is malformed (``@x+``, or a method name with odd characters).

    Example:
        >>> c = parse_criterion("2+config.materialized:table+")
        >>> c.method.value, c.arguments, c.value, c.parents_depth, c.children
        ('config', ('materialized',), 'table', 2, True)
    """
    match = _TERM.match(raw)
    assert match is not None  # every string matches: the value part takes what is left
    groups = match.groupdict()
    value = groups["value"]
    if groups["method"] is None and ":" in value and default_method(value) is MethodName.FQN:
        raise _unknown_method(value.split(":", 1)[0], raw, expression)
    method, arguments = parse_method(groups["method"], value, part=raw, expression=expression)
    criterion = Criterion(
        raw=raw,
        method=method,
        arguments=arguments,
        value=value,
        parents=bool(groups["parents"]),
        parents_depth=int(groups["parents_depth"]) if groups["parents_depth"] else None,
        children=bool(groups["children"]),
        children_depth=int(groups["children_depth"]) if groups["children_depth"] else None,
        childrens_parents=bool(groups["childrens_parents"]),
        indirect_selection=indirect_selection,
    )
    check_criterion(criterion, expression=expression)
    return criterion


def _unknown_method(name: str, part: str, expression: str | None) -> UnknownMethodError:
    close = difflib.get_close_matches(name, [m.value for m in MethodName], n=1)
    hint = f"Did you mean '{close[0]}'? " if close else ""
    return UnknownMethodError(
        f"'{name}' is not a selector method (in {part!r}). {hint}Use one of: {_METHODS_HELP}.",
        expression=expression,
        part=part,
    )


def check_criterion(criterion: Criterion, *, expression: str | None) -> None:
    """Reject operator combinations dbt rejects.

    Raises:
        SelectionError: ``@`` combined with a ``+`` suffix.
    """
    if criterion.childrens_parents and criterion.children:
        raise SelectionError(
            f"{criterion.raw!r}: the '@' prefix and a '+' suffix cannot be combined. Use "
            "'@x' (x, its descendants and their ancestors) or 'x+' (x and its descendants).",
            expression=expression,
            part=criterion.raw,
        )


def split_terms(arguments: str | Iterable[str] | None) -> tuple[str, ...] | None:
    """Split ``--select``-style arguments into space-separated terms.

    ``None`` and an empty list mean "not given"; an empty string is given and selects nothing.

    >>> split_terms(["tag:a tag:b", "c"]), split_terms(None), split_terms([])
    (('tag:a', 'tag:b', 'c'), None, None)
    """
    if arguments is None:
        return None
    items = [arguments] if isinstance(arguments, str) else list(arguments)
    if not items:
        return None
    return tuple(term for item in items for term in item.split())


def parse_union(
    terms: Sequence[str], *, indirect_selection: IndirectSelection, expression: str
) -> Combination:
    """A union of intersections: ``("a,b", "c")`` -> ``union(intersection(a, b), c)``.

    Raises:
        SelectionError: A term has an empty part (``"a,,b"``, ``"a,"``), or a criterion is invalid.
    """
    parts: list[Spec] = []
    for term in terms:
        pieces = term.split(",")
        if "" in pieces:
            raise SelectionError(
                f"{term!r} has an empty part around a comma. Write intersections as "
                "'a,b' with no spaces or trailing commas.",
                expression=expression,
                part=term,
            )
        parts.append(
            Combination(
                operator=SetOperator.INTERSECTION,
                components=tuple(
                    parse_criterion(
                        piece, indirect_selection=indirect_selection, expression=expression
                    )
                    for piece in pieces
                ),
                indirect_selection=indirect_selection,
                raw=term,
            )
        )
    return Combination(
        operator=SetOperator.UNION,
        components=tuple(parts),
        indirect_selection=indirect_selection,
        raw=" ".join(terms),
    )


def parse_cli(
    select: Sequence[str] | None,
    exclude: Sequence[str] | None,
    *,
    indirect_selection: IndirectSelection,
) -> Combination:
    """The spec for ``--select``/``--exclude`` terms (``None``: the option was not given).

    Without ``--select`` dbt selects :data:`DEFAULT_INCLUDES`.

    Example:
        >>> spec = parse_cli(["tag:a,tag:b"], None, indirect_selection=IndirectSelection.EAGER)
        >>> spec.operator.value, [c.operator.value for c in spec.components]
        ('difference', ['union', 'union'])
    """
    expression = (
        " ".join([*(select or ()), *(f"--exclude {t}" for t in exclude or ())])
        or "(default selection)"
    )
    included = parse_union(
        DEFAULT_INCLUDES if select is None else select,
        indirect_selection=indirect_selection,
        expression=expression,
    )
    excluded = parse_union(
        exclude or (), indirect_selection=indirect_selection, expression=expression
    )
    return Combination(
        operator=SetOperator.DIFFERENCE, components=(included, excluded), raw=expression
    )
