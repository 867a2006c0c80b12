"""YAML selectors (``selectors.yml``, stored in the manifest) turned into spec trees.

A definition is a string (command-line syntax), a ``{method: value}`` or
``{method: ..., value: ..., parents: true, ...}`` dict, or a ``union``/``intersection`` list whose
items may include one ``exclude`` list. ``{method: selector, value: other}`` reuses a selector
defined earlier in the file. Groups built here use ``eager`` at the group level, as dbt's do;
each criterion takes ``indirect_selection`` from its own dict or from the caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dbt_graph._errors import SelectionError
from dbt_graph._manifest import Manifest
from dbt_graph._selector_spec import (
    Combination,
    Criterion,
    IndirectSelection,
    SetOperator,
    Spec,
    check_criterion,
    parse_criterion,
    parse_method,
)


def default_selector_name(manifest: Manifest) -> str | None:
    """The name of the selector marked ``default: true``, if any."""
    for name, selector in manifest.selectors.items():
        if selector.get("default") is True:
            return name
    return None


def yaml_selector_spec(
    manifest: Manifest, name: str, *, indirect_selection: IndirectSelection
) -> Spec:
    """The spec tree of the YAML selector ``name``.

    Args:
        manifest: The manifest holding the selectors.
        name: The selector's name.
        indirect_selection: The mode for criteria that do not set ``indirect_selection``.

    Raises:
        SelectionError: No such selector, or its definition is invalid (the message names the
            selector and the offending part).
    """
    if name not in manifest.selectors:
        known = ", ".join(sorted(manifest.selectors)) or "none"
        raise SelectionError(
            f"There is no YAML selector named {name!r} (defined: {known}). Check the name, or "
            "add it to selectors.yml and run `dbt parse` again.",
            expression=f"--selector {name}",
            part=name,
        )
    return _Parser(manifest.selectors, indirect_selection).selector(name, ())


class _Parser:
    def __init__(
        self, selectors: Mapping[str, Mapping[str, Any]], indirect_selection: IndirectSelection
    ) -> None:
        self.selectors = selectors
        self.order = list(selectors)
        self.indirect_selection = indirect_selection
        self.name = ""

    def error(self, problem: str, part: Any) -> SelectionError:
        return SelectionError(
            f"YAML selector {self.name!r}: {problem}. Fix selectors.yml and run `dbt parse` again.",
            expression=f"--selector {self.name}",
            part=str(part),
        )

    def selector(self, name: str, stack: tuple[str, ...]) -> Spec:
        outer, self.name = self.name, name
        try:
            definition = self.selectors[name]["definition"]
            return self.definition(definition, stack=(*stack, name), root=True)
        finally:
            self.name = outer

    def definition(self, definition: Any, *, stack: tuple[str, ...], root: bool = False) -> Spec:
        if isinstance(definition, str):
            return parse_criterion(
                definition,
                indirect_selection=self.indirect_selection,
                expression=f"--selector {self.name}",
            )
        if not isinstance(definition, dict):
            raise self.error(
                f"expected a union, an intersection, a string or a dict, got "
                f"{type(definition).__name__}",
                definition,
            )
        is_set = "union" in definition or "intersection" in definition
        if is_set and root and len(definition) > 1:
            keys = ", ".join(map(str, definition))
            raise self.error(
                f"a root definition holds a single 'union' or 'intersection' key, found {keys}",
                definition,
            )
        if "union" in definition:
            return self.set_operation(definition, "union", SetOperator.UNION, stack)
        if "intersection" in definition:
            return self.set_operation(definition, "intersection", SetOperator.INTERSECTION, stack)
        return self.criterion_dict(definition, stack)

    def items(self, definition: Mapping[str, Any], key: str) -> list[Any]:
        values = definition[key]
        if not isinstance(values, list):
            raise self.error(f"the value of {key!r} must be a list", definition)
        for value in values:
            if not isinstance(value, str | dict):
                raise self.error(
                    f"items of {key!r} must be strings or dicts, got {type(value).__name__}",
                    value,
                )
        return values

    def set_operation(
        self, definition: Mapping[str, Any], key: str, operator: SetOperator, stack: tuple[str, ...]
    ) -> Spec:
        included: list[Spec] = []
        excluded: Spec | None = None
        for item in self.items(definition, key):
            if isinstance(item, dict) and "exclude" in item:
                if excluded is not None:
                    raise self.error(f"only one 'exclude' is allowed in one {key!r} list", item)
                excluded = self.exclusions(item, stack)
            else:
                included.append(self.definition(item, stack=stack))
        combined = Combination(operator=operator, components=tuple(included), raw=str(definition))
        if excluded is None:
            return combined
        return Combination(
            operator=SetOperator.DIFFERENCE, components=(combined, excluded), raw=str(definition)
        )

    def exclusions(self, definition: Mapping[str, Any], stack: tuple[str, ...]) -> Spec | None:
        parsed = [self.definition(item, stack=stack) for item in self.items(definition, "exclude")]
        if not parsed:
            return None
        if len(parsed) == 1:
            return parsed[0]
        return Combination(
            operator=SetOperator.UNION, components=tuple(parsed), raw=str(definition)
        )

    def criterion_dict(self, definition: Mapping[str, Any], stack: tuple[str, ...]) -> Spec:
        excluded: Spec | None = None
        if len(definition) == 1:
            ((key, value),) = definition.items()
            if not isinstance(key, str):
                raise self.error(f"a method name must be a string, got {key!r}", definition)
            fields: Mapping[str, Any] = {"method": key, "value": value}
        elif definition.get("method") == "selector":
            return self.reference(definition, stack)
        elif "method" in definition and "value" in definition:
            fields = {k: v for k, v in definition.items() if k != "exclude"}
            if "exclude" in definition:
                excluded = self.exclusions(definition, stack)
        else:
            raise self.error(
                f"expected one key, or 'method' and 'value' keys, got {list(definition)}",
                definition,
            )
        base = self.criterion(definition, fields)
        if excluded is None:
            return base
        return Combination(
            operator=SetOperator.DIFFERENCE, components=(base, excluded), raw=str(definition)
        )

    def reference(self, definition: Mapping[str, Any], stack: tuple[str, ...]) -> Spec:
        target = definition.get("value")
        position = self.order.index(stack[-1])
        if not isinstance(target, str) or target not in self.order[:position]:
            raise self.error(
                f"'method: selector' refers to {target!r}, which is not a selector defined "
                "before this one",
                definition,
            )
        return self.selector(target, stack)

    def criterion(self, raw: Mapping[str, Any], fields: Mapping[str, Any]) -> Criterion:
        if "value" not in fields:
            raise self.error("the criterion has no 'value'", raw)
        value = fields["value"]
        if isinstance(value, list | dict) or value is None:
            raise self.error(f"a criterion's value must be a scalar, got {value!r}", raw)
        method = fields.get("method")
        if method is not None and not isinstance(method, str):
            raise self.error(f"a method name must be a string, got {method!r}", raw)
        expression = f"--selector {self.name}"
        name, arguments = parse_method(method, value, part=str(raw), expression=expression)
        mode = fields.get("indirect_selection", self.indirect_selection)
        try:
            indirect = IndirectSelection(mode)
        except ValueError:
            modes = ", ".join(m.value for m in IndirectSelection)
            raise self.error(f"indirect_selection {mode!r} is not one of {modes}", raw) from None
        criterion = Criterion(
            raw=str(dict(raw)),
            method=name,
            arguments=arguments,
            value=value,
            parents=bool(fields.get("parents")),
            parents_depth=self.depth(raw, fields.get("parents_depth")),
            children=bool(fields.get("children")),
            children_depth=self.depth(raw, fields.get("children_depth")),
            childrens_parents=bool(fields.get("childrens_parents")),
            indirect_selection=indirect,
        )
        check_criterion(criterion, expression=expression)
        return criterion

    def depth(self, raw: Mapping[str, Any], value: Any) -> int | None:
        # dbt reads 0 (and any falsy depth) as "no limit".
        if not value:
            return None
        try:
            return int(value)
        except (TypeError, ValueError):
            raise self.error(f"a depth must be a whole number, got {value!r}", raw) from None
