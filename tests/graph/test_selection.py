"""select(): grammar, graph operators, set operations, indirect selection, YAML selectors."""

from __future__ import annotations

from typing import Any

import dbt_graph
import pytest
from dbt_graph import (
    IndirectSelection,
    Manifest,
    ResourceType,
    SelectionError,
    UnknownMethodError,
    select,
)
from dbt_graph._selector_spec import MethodName, parse_criterion
from dbt_graph.testing import ManifestBuilder


def ids(*names: str) -> frozenset[str]:
    """Short names to unique_ids of the ``dag`` fixture (``raw`` -> ``seed.p.raw``)."""
    tests = {"not_null_stg", "rel_mart_b", "assert_mart", "rel_mart_other"}
    return frozenset(
        name
        if "." in name
        else f"{'seed' if name == 'raw' else 'test' if name in tests else 'model'}.p.{name}"
        for name in names
    )


@pytest.fixture
def dag() -> Manifest:
    """raw -> stg -> mart <- stg_b <- source app.orders; tests and a unit test around them::

    not_null_stg on stg; rel_mart_b on mart and stg_b; assert_mart (singular) on mart;
    unit test test_mart on mart; exposure dash on mart; other <- mart.
    """
    return (
        ManifestBuilder()
        .seed("raw")
        .source("app", "orders")
        .model("stg", depends_on=["raw"], path="models/staging/stg.sql", tags=["staging"])
        .model("stg_b", depends_on=["app.orders"], path="models/staging/stg_b.sql")
        .model("mart", depends_on=["stg", "stg_b"], path="models/marts/mart.sql", tags=["daily"])
        .model("other", depends_on=["mart"], path="models/marts/other.sql")
        .test("not_null_stg", depends_on=["stg"])
        .test("rel_mart_b", depends_on=["mart", "stg_b"], test_name="relationships")
        .test("assert_mart", depends_on=["mart"], test_name=None)
        .unit_test("test_mart", model="mart", fqn=["p", "marts", "mart", "test_mart"])
        .exposure("dash", depends_on=["mart"])
        .build()
    )


TESTS = ("not_null_stg", "rel_mart_b", "assert_mart", "unit_test.p.mart.test_mart")
DAG_IDS = ids(
    "raw", "stg", "stg_b", "mart", "other", "source.p.app.orders", "exposure.p.dash", *TESTS
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a", {"value": "a"}),
        ("+a", {"parents": True, "parents_depth": None}),
        ("2+a", {"parents": True, "parents_depth": 2}),
        ("a+", {"children": True, "children_depth": None}),
        ("a+3", {"children": True, "children_depth": 3}),
        ("@a", {"childrens_parents": True}),
        ("1+tag:x+2", {"method": MethodName.TAG, "value": "x", "parents_depth": 1}),
        ("config.meta.owner:x", {"method": MethodName.CONFIG, "arguments": ("meta", "owner")}),
        ("a+b", {"value": "a+b", "children": False}),
        ("models/staging", {"method": MethodName.PATH}),
        ("orders.sql", {"method": MethodName.FILE}),
        ("Orders.CSV", {"method": MethodName.FILE}),
        ("orders", {"method": MethodName.FQN}),
    ],
)
def test_term_parses_like_dbt(raw: str, expected: dict[str, Any]) -> None:
    criterion = parse_criterion(raw)
    assert {k: getattr(criterion, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("expression", "part"),
    [("tg:nightly", "tg:nightly"), ("orders tagz:x+", "tagz:x+"), ("my-method:x", "my-method:x")],
)
def test_unknown_method_raises_and_points_at_the_term(
    dag: Manifest, expression: str, part: str
) -> None:
    with pytest.raises(UnknownMethodError) as info:
        select(dag, expression)
    assert info.value.part == part
    assert "fqn, tag, group" in str(info.value)


def test_unknown_method_suggests_the_closest_one(dag: Manifest) -> None:
    with pytest.raises(UnknownMethodError, match="Did you mean 'tag'"):
        select(dag, "tags:nightly")


@pytest.mark.parametrize(
    ("expression", "part", "hint"),
    [
        ("@stg+", "@stg+", "cannot be combined"),
        ("stg,,mart", "stg,,mart", "empty part"),
        ("stg,", "stg,", "empty part"),
        ("config:table", "config:table", "needs a key"),
        ("tag.x:y", "tag.x:y", "takes no"),
        ("version:newest", "version:newest", "latest, prerelease"),
        ("test_type:smoke", "test_type:smoke", "generic, singular"),
        ("resource_type:widget", "resource_type:widget", "not a resource type"),
        ("source:a.b.c.d", "source:a.b.c.d", "<package>.<source>.<table>"),
        ("exposure:a.b.c", "exposure:a.b.c", "<package>.<name>"),
        ("path:/abs", "path:/abs", "relative"),
        ("path:a**", "path:a**", "entire path component"),
    ],
)
def test_malformed_expression_raises_with_the_offending_part(
    dag: Manifest, expression: str, part: str, hint: str
) -> None:
    with pytest.raises(SelectionError) as info:
        select(dag, expression)
    assert info.value.part == part
    assert hint in str(info.value)


def test_value_errors_surface_even_inside_a_longer_expression(dag: Manifest) -> None:
    with pytest.raises(SelectionError) as info:
        select(dag, ["stg", "tag:daily,version:newest"], exclude="mart")
    assert info.value.part == "version:newest"
    assert "version:newest" in str(info.value)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("+mart", ids("raw", "stg", "stg_b", "mart", "source.p.app.orders")),
        ("1+mart", ids("stg", "stg_b", "mart")),
        ("stg+", ids("stg", "mart", "other", "exposure.p.dash", *TESTS)),
        ("stg+1", ids("stg", "mart", "not_null_stg")),
        ("@stg", frozenset(DAG_IDS)),
        (
            "+exposure:dash",
            ids("raw", "stg", "stg_b", "mart", "source.p.app.orders", "exposure.p.dash"),
        ),
        ("stg mart", ids("stg", "mart")),
        ("+mart,stg+", ids("stg", "mart")),
        ("0+mart", ids("mart")),
    ],
)
def test_graph_operators_and_set_operations(
    dag: Manifest, expression: str, expected: frozenset[str]
) -> None:
    assert select(dag, expression, indirect_selection="empty") == expected


def test_start_nodes_count_as_parents_only_when_reached_from_another(dag: Manifest) -> None:
    assert select(dag, "1+stg 1+mart", indirect_selection="empty") == ids(
        "raw", "stg", "stg_b", "mart"
    )


def test_exclude_also_removes_the_tests_of_excluded_nodes(dag: Manifest) -> None:
    # Like the selection, the exclusion takes adjacent tests eagerly: rel_mart_b goes with stg_b.
    selected = select(dag, "+mart", exclude=["stg_b raw", "source:*"])
    assert selected == ids(
        "stg", "mart", "not_null_stg", "assert_mart", "unit_test.p.mart.test_mart"
    )


def test_exclude_alone_starts_from_dbt_default_includes(dag: Manifest) -> None:
    assert select(dag, exclude="mart+") == ids(
        "raw", "stg", "stg_b", "not_null_stg", "source.p.app.orders"
    )


def test_no_arguments_select_everything_but_analyses(dag: Manifest) -> None:
    everything = frozenset(dag.nodes)
    assert select(dag) == everything
    assert select(dag, []) == everything


def test_empty_select_string_selects_nothing(dag: Manifest) -> None:
    assert select(dag, "") == frozenset()


@pytest.mark.parametrize(
    ("mode", "expected_tests"),
    [
        ("eager", {"rel_mart_b", "assert_mart", "unit_test.p.mart.test_mart"}),
        ("cautious", {"assert_mart", "unit_test.p.mart.test_mart"}),
        ("buildable", {"rel_mart_b", "assert_mart", "unit_test.p.mart.test_mart"}),
        ("empty", set()),
    ],
)
def test_indirect_selection_modes(dag: Manifest, mode: str, expected_tests: set[str]) -> None:
    # rel_mart_b also depends on stg_b: eager takes it, cautious does not, buildable does
    # because stg_b is an ancestor of mart. not_null_stg hangs off stg, not off mart.
    assert select(dag, "mart", indirect_selection=mode) == ids("mart", *expected_tests)


def test_cautious_union_lets_in_a_test_whose_parents_come_from_both_sides(dag: Manifest) -> None:
    assert ids("rel_mart_b") <= select(dag, "mart stg_b", indirect_selection="cautious")
    assert ids("rel_mart_b").isdisjoint(select(dag, "mart", indirect_selection="cautious"))


def test_indirect_selection_accepts_the_enum(dag: Manifest) -> None:
    assert select(dag, "stg", indirect_selection=IndirectSelection.EMPTY) == ids("stg")


def test_unknown_indirect_selection_mode_raises(dag: Manifest) -> None:
    with pytest.raises(SelectionError, match="eager, cautious, buildable, empty"):
        select(dag, "stg", indirect_selection="lazy")


@pytest.mark.parametrize(
    ("resource_types", "expected"),
    [
        (["model"], ids("stg", "mart")),
        (
            [ResourceType.TEST, "unit_test"],
            ids("not_null_stg", "rel_mart_b", "assert_mart", "unit_test.p.mart.test_mart"),
        ),
        ("seed", frozenset()),
        (["all"], ids("stg", "mart", *TESTS)),
        (["default", "model"], ids("stg", "mart", *TESTS)),
    ],
)
def test_resource_types_filter_the_result(
    dag: Manifest, resource_types: Any, expected: frozenset[str]
) -> None:
    assert select(dag, "stg mart", resource_types=resource_types) == expected


def test_analyses_are_listed_only_when_asked_for() -> None:
    m = ManifestBuilder().model("a")._add("analysis", "report", depends_on=["a"]).build()
    assert select(m, "a+") == ids("a")
    assert select(m, "a+", resource_types=["all"]) == ids("a", "analysis.p.report")


def test_unknown_resource_type_raises(dag: Manifest) -> None:
    with pytest.raises(SelectionError, match="'widgets' is not a resource type"):
        select(dag, "stg", resource_types=["widgets"])


def yaml_manifest(**selectors: Any) -> Manifest:
    builder = (
        ManifestBuilder()
        .seed("raw")
        .model("stg", depends_on=["raw"], tags=["nightly"])
        .model("mart", depends_on=["stg"], tags=["nightly", "finance"])
        .model("other", depends_on=["mart"])
        .test("not_null_stg", depends_on=["stg"])
        .test("rel_mart_other", depends_on=["mart", "other"], test_name="relationships")
    )
    for name, definition in selectors.items():
        default = isinstance(definition, tuple)
        builder.selector(name, definition[0] if default else definition, default=default)
    return builder.build()


@pytest.mark.parametrize(
    ("definition", "expected"),
    [
        ("tag:nightly", ids("stg", "mart", "not_null_stg", "rel_mart_other")),
        ({"tag": "finance"}, ids("mart", "rel_mart_other")),
        (
            {"method": "fqn", "value": "mart", "parents": True},
            ids("raw", "stg", "mart", "not_null_stg", "rel_mart_other"),
        ),
        (
            {
                "method": "fqn",
                "value": "mart",
                "parents": True,
                "parents_depth": 1,
                "indirect_selection": "empty",
            },
            ids("stg", "mart"),
        ),
        (
            {
                "method": "fqn",
                "value": "mart",
                "parents": True,
                "parents_depth": 0,
                "indirect_selection": "empty",
            },
            ids("raw", "stg", "mart"),
        ),
        (
            {
                "method": "fqn",
                "value": "stg",
                "children": True,
                "children_depth": 1,
                "indirect_selection": "cautious",
            },
            ids("stg", "mart", "not_null_stg"),
        ),
        (
            {
                "method": "fqn",
                "value": "other",
                "childrens_parents": True,
                "indirect_selection": "empty",
            },
            ids("raw", "stg", "mart", "other", "rel_mart_other"),
        ),
        (
            {"union": [{"method": "tag", "value": "nightly"}, {"exclude": ["mart"]}]},
            ids("stg", "not_null_stg"),
        ),
        (
            {
                "intersection": [
                    "tag:nightly",
                    {"method": "config.materialized", "value": "view"},
                    {"exclude": [{"tag": "finance"}, "raw"]},
                ]
            },
            ids("stg", "not_null_stg"),
        ),
        ({"method": "tag", "value": "nightly", "exclude": ["mart"]}, ids("stg", "not_null_stg")),
        (
            {"union": [{"method": "fqn", "value": "mart", "indirect_selection": "empty"}, "stg"]},
            ids("mart", "stg", "not_null_stg"),
        ),
    ],
)
def test_yaml_selector_definitions(definition: Any, expected: frozenset[str]) -> None:
    m = yaml_manifest(chosen=definition)
    assert select(m, selector="chosen") == expected


def test_yaml_groups_incorporate_eagerly_like_dbt() -> None:
    # Criteria take the caller's mode, but a YAML union itself is "eager": it does not let in
    # tests that each side held back, whereas the same union on the command line does.
    m = yaml_manifest(both={"union": ["mart", "other"]})
    assert ids("rel_mart_other").isdisjoint(
        select(m, selector="both", indirect_selection="cautious")
    )
    assert ids("rel_mart_other") <= select(m, "mart other", indirect_selection="cautious")


def test_default_yaml_selector_applies_only_without_select_and_exclude() -> None:
    m = yaml_manifest(nightly=("tag:finance",))
    assert select(m) == ids("mart", "rel_mart_other")
    assert select(m, "stg") == ids("stg", "not_null_stg")
    assert select(m, exclude="stg") == ids("raw", "mart", "other", "rel_mart_other")


def test_selector_overrides_select_and_exclude_like_dbt() -> None:
    m = yaml_manifest(finance="tag:finance")
    assert select(m, "raw", exclude="mart", selector="finance") == ids("mart", "rel_mart_other")


def test_yaml_selector_can_reuse_an_earlier_one() -> None:
    m = yaml_manifest(
        base="tag:finance", reuse={"union": [{"method": "selector", "value": "base"}, "raw"]}
    )
    assert select(m, selector="reuse") == ids("raw", "mart", "rel_mart_other")


@pytest.mark.parametrize(
    ("definition", "hint"),
    [
        ({"union": ["stg"], "description": "x"}, "single 'union' or 'intersection'"),
        ({"union": ["stg"], "indirect_selection": "empty"}, "single 'union' or 'intersection'"),
        ({"union": [{"exclude": ["a"]}, {"exclude": ["b"]}]}, "only one 'exclude'"),
        ({"union": "stg"}, "must be a list"),
        ({"union": [3]}, "strings or dicts"),
        ({"method": "tag", "parents": True}, "'method' and 'value'"),
        ({"method": "tag", "value": "x", "parents_depth": "two", "parents": True}, "whole number"),
        ({"method": "tag", "value": "x", "indirect_selection": "lazy"}, "indirect_selection"),
        ({"method": "selector", "value": "later"}, "defined before this one"),
        ({"tag": ["a", "b"]}, "scalar"),
        (["stg"], "got list"),
        ({"method": "tags", "value": "x"}, "not a selector method"),
    ],
)
def test_invalid_yaml_selector_raises_naming_the_selector(definition: Any, hint: str) -> None:
    m = yaml_manifest(broken=definition, later="stg")
    with pytest.raises(SelectionError) as info:
        select(m, selector="broken")
    assert hint in str(info.value)
    assert info.value.expression == "--selector broken"


def test_unknown_yaml_selector_lists_the_known_ones() -> None:
    m = yaml_manifest(a="stg", b="mart")
    with pytest.raises(SelectionError, match="defined: a, b"):
        select(m, selector="c")


@pytest.mark.parametrize("name", ["select", "node_selector", "SelectionState", "IndirectSelection"])
def test_selection_api_is_public_and_documented(name: str) -> None:
    assert name in dbt_graph.__all__
    assert getattr(dbt_graph, name).__doc__
