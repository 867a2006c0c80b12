"""Graph walks: edge cases by name, deep chains, and the manifest helpers built on them."""

from __future__ import annotations

import pytest
from dbt_graph import (
    CycleError,
    ancestors,
    descendants,
    drop_fed_by,
    nearest_ancestors,
    topological_generations,
    topological_order,
    upstream_sources,
)
from dbt_graph.testing import ManifestBuilder

DEEP = 20_000  # far past Python's recursion limit


def chain(n: int) -> dict[str, list[str]]:
    """n0 <- n1 <- ... : each node depends on the one before."""
    return {f"n{i}": [f"n{i - 1}"] if i else [] for i in range(n)}


def test_empty_graph() -> None:
    assert ancestors({}, "x") == frozenset()
    assert topological_generations({}) == []


def test_single_node() -> None:
    assert ancestors({"a": []}, "a") == frozenset()
    assert topological_generations({"a": []}) == [("a",)]


def test_disconnected_nodes_share_generation_zero_in_mapping_order() -> None:
    assert topological_generations({"b": [], "a": [], "c": []}) == [("b", "a", "c")]


def test_key_orders_each_generation() -> None:
    deps = {"b": [], "a": [], "d": ["a"], "c": ["a"]}
    assert topological_generations(deps, key=str) == [("a", "b"), ("c", "d")]


def test_dependencies_outside_the_mapping_are_ignored() -> None:
    assert topological_order({"stg": ["source.x"], "mart": ["stg"]}) == ["stg", "mart"]


def test_depth_limits_the_walk() -> None:
    parents = chain(5)
    assert ancestors(parents, "n4", depth=2) == {"n3", "n2"}
    assert ancestors(parents, "n4", depth=0) == frozenset()


def test_start_nodes_count_only_when_reachable_from_another() -> None:
    children = {"a": ["b"], "b": ["c"], "x": []}
    assert descendants(children, ["a", "b", "x"]) == {"b", "c"}


@pytest.mark.parametrize(
    ("deps", "members"),
    [
        ({"a": ["a"]}, {"a"}),
        ({"a": ["c"], "b": ["a"], "c": ["b"], "d": []}, {"a", "b", "c"}),
        ({"root": [], "x": ["root", "y"], "y": ["x"], "z": ["y"]}, {"x", "y"}),
    ],
    ids=["self", "triangle", "cycle-below-a-root"],
)
def test_a_cycle_is_named_upstream_first(deps, members) -> None:
    with pytest.raises(CycleError) as info:
        topological_generations(deps)
    cycle = info.value.cycle
    assert set(cycle) == members
    # Each node feeds the next one, and the last feeds the first.
    for upstream, downstream in zip(cycle, [*cycle[1:], cycle[0]], strict=True):
        assert upstream in deps[downstream]


def test_deep_chains_need_no_recursion() -> None:
    parents = chain(DEEP)
    assert len(ancestors(parents, f"n{DEEP - 1}")) == DEEP - 1
    assert topological_order(parents)[:3] == ["n0", "n1", "n2"]
    through = nearest_ancestors(
        parents, [f"n{DEEP - 1}"], keep=lambda u: u == "n0", through=lambda u: True
    )
    assert through == {f"n{DEEP - 1}": ("n0",)}


def test_nearest_ancestors_looks_through_and_stops() -> None:
    parents = {
        "mart": ["eph1", "stg", "exposure"],
        "eph1": ["eph2", "stg"],
        "eph2": ["raw"],
        "exposure": ["raw"],
        "stg": ["raw"],
        "raw": [],
    }
    found = nearest_ancestors(
        parents,
        ["mart"],
        keep=lambda u: u in {"stg", "raw"},
        through=lambda u: u.startswith("eph"),
    )
    # eph1 stands for raw (through eph2) and stg; the exposure ends the walk.
    assert found == {"mart": ("raw", "stg")}


def test_nearest_ancestors_survives_a_cycle_of_looked_through_nodes() -> None:
    parents = {"m": ["e1"], "e1": ["e2", "a"], "e2": ["e1"], "a": []}
    found = nearest_ancestors(parents, ["m"], keep=lambda u: u == "a", through=lambda u: True)
    assert found == {"m": ("a",)}


def shop_like():
    return (
        ManifestBuilder()
        .source("app", "orders")
        .source("app", "payments")
        .model("stg_orders", depends_on=["app.orders"])
        .model("stg_payments", depends_on=["app.payments"])
        .test("not_null_stg_orders", depends_on=["stg_orders"])
        .model("orders", depends_on=["stg_orders", "stg_payments"])
        .model("other")
        .build()
    )


def test_upstream_sources_of_what_runs_only() -> None:
    m = shop_like()
    assert upstream_sources(m, ["model.p.stg_orders"]) == {"source.p.app.orders"}
    assert upstream_sources(m, ["model.p.orders", "model.p.other"]) == {
        "source.p.app.orders",
        "source.p.app.payments",
    }
    # A selected source is not "upstream" of itself.
    assert upstream_sources(m, ["source.p.app.orders"]) == frozenset()


def test_drop_fed_by_removes_runners_downstream_and_names_their_sources() -> None:
    m = shop_like()
    kept, dropped = drop_fed_by(m, m.nodes, ["source.p.app.orders"])
    assert dropped == {
        "model.p.stg_orders": ("source.p.app.orders",),
        "test.p.not_null_stg_orders": ("source.p.app.orders",),
        "model.p.orders": ("source.p.app.orders",),
    }
    assert "model.p.stg_payments" in kept and "model.p.other" in kept
    assert "source.p.app.orders" in kept  # sources do not run; they are never dropped


def test_drop_fed_by_nothing_keeps_everything() -> None:
    m = shop_like()
    assert drop_fed_by(m, ["model.p.orders"], []) == (frozenset({"model.p.orders"}), {})
