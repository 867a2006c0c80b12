from __future__ import annotations

import pytest
from dbt_graph import CycleError, TestStrategy, build_plan, executable_parents, load_manifest
from dbt_graph.testing import ManifestBuilder


def waves(plan) -> list[list[str]]:
    return [[uid.split(".", 2)[2] for uid in w.node_ids] for w in plan.waves]


def test_empty_manifest_has_no_waves() -> None:
    plan = build_plan(ManifestBuilder().build())
    assert plan.waves == () and plan.node_count == 0 and plan.estimated_parallelism == 0


def test_single_node_is_one_wave() -> None:
    plan = build_plan(ManifestBuilder().model("a").build())
    assert waves(plan) == [["a"]]
    assert plan.dependencies == {"model.p.a": ()}


def test_disconnected_nodes_share_the_first_wave_in_manifest_order() -> None:
    plan = build_plan(ManifestBuilder().model("b").model("a").seed("s").build())
    assert waves(plan) == [["b", "a", "s"]]
    assert plan.estimated_parallelism == 3


def test_diamond_has_three_waves() -> None:
    m = (
        ManifestBuilder()
        .model("a")
        .model("b", depends_on=["a"])
        .model("c", depends_on=["a"])
        .model("d", depends_on=["b", "c"])
        .build()
    )
    assert waves(build_plan(m)) == [["a"], ["b", "c"], ["d"]]


def test_ephemeral_parents_are_passed_through_nested() -> None:
    m = (
        ManifestBuilder()
        .seed("raw")
        .model("e1", materialized="ephemeral", depends_on=["raw"])
        .model("e2", materialized="ephemeral", depends_on=["e1"])
        .model("mart", depends_on=["e2"])
        .build()
    )
    plan = build_plan(m)
    assert waves(plan) == [["raw"], ["mart"]]
    assert plan.dependencies["model.p.mart"] == ("seed.p.raw",)
    assert executable_parents(m)["model.p.mart"] == ("seed.p.raw",)


def test_sources_and_exposures_are_never_executed() -> None:
    m = (
        ManifestBuilder()
        .source("app", "orders")
        .model("stg", depends_on=["app.orders"])
        .exposure("dash", depends_on=["stg"])
        .build()
    )
    plan = build_plan(m)
    assert list(plan.nodes) == ["model.p.stg"]
    assert plan.dependencies["model.p.stg"] == ()


def test_true_cycle_raises_listing_the_cycle() -> None:
    m = (
        ManifestBuilder()
        .model("a", depends_on=["model.p.c"])
        .model("b", depends_on=["a"])
        .model("c", depends_on=["b"])
        .build()
    )
    with pytest.raises(CycleError) as info:
        build_plan(m)
    assert set(info.value.cycle) == {"model.p.a", "model.p.b", "model.p.c"}
    assert "model.p.a" in str(info.value) and "->" in str(info.value)


def test_immediate_test_runs_after_its_parent_and_before_its_children() -> None:
    m = (
        ManifestBuilder()
        .model("a")
        .test("t_a", depends_on=["a"])
        .model("b", depends_on=["a"])
        .build()
    )
    plan = build_plan(m, test_strategy=TestStrategy.IMMEDIATE)
    assert waves(plan) == [["a"], ["t_a"], ["b"]]
    assert plan.dependencies["model.p.b"] == ("model.p.a", "test.p.t_a")


def test_multi_parent_relationship_test_on_a_chain_adds_no_cycle() -> None:
    # rel(b -> a): parents a and b, b is a child of a; b must not wait for the test.
    m = (
        ManifestBuilder()
        .model("a")
        .model("b", depends_on=["a"])
        .test("rel_b_a", depends_on=["b", "a"], test_name="relationships")
        .model("c", depends_on=["b"])
        .model("d", depends_on=["a"])
        .build()
    )
    plan = build_plan(m)
    assert "test.p.rel_b_a" not in plan.dependencies["model.p.b"]
    assert "test.p.rel_b_a" in plan.dependencies["model.p.c"]
    # d is a child of a but not a descendant of b: dbt does not make it wait for the test.
    assert "test.p.rel_b_a" not in plan.dependencies["model.p.d"]


def test_unit_test_runs_before_the_model_it_tests() -> None:
    m = (
        ManifestBuilder()
        .seed("raw")
        .model("m", depends_on=["raw"])
        .unit_test("ut", model="m")
        .build()
    )
    plan = build_plan(m)
    assert waves(plan) == [["raw"], ["m.ut"], ["m"]]


def test_deferred_runs_all_tests_in_one_final_phase() -> None:
    m = (
        ManifestBuilder()
        .model("a")
        .test("t_a", depends_on=["a"])
        .model("b", depends_on=["a"])
        .test("t_b", depends_on=["b"])
        .unit_test("ut", model="b")
        .build()
    )
    plan = build_plan(m, test_strategy="deferred")
    assert waves(plan) == [["a"], ["b"], ["t_a", "t_b", "b.ut"]]
    assert len(plan.phases) == 2
    assert plan.phases[1] == ("test.p.t_a", "test.p.t_b", "unit_test.p.b.ut")


def test_skip_drops_every_test() -> None:
    m = ManifestBuilder().model("a").test("t_a", depends_on=["a"]).unit_test("u", model="a").build()
    assert waves(build_plan(m, test_strategy=TestStrategy.SKIP)) == [["a"]]


def test_unselected_middle_node_keeps_order_across_it() -> None:
    m = (
        ManifestBuilder()
        .model("a")
        .model("b", depends_on=["a"])
        .model("c", depends_on=["b"])
        .build()
    )
    plan = build_plan(m, {"model.p.a", "model.p.c"})
    assert waves(plan) == [["a"], ["c"]]
    assert plan.dependencies["model.p.c"] == ("model.p.a",)


def test_plan_ignores_selected_ids_that_are_not_executable() -> None:
    m = ManifestBuilder().source("app", "o").model("a", depends_on=["app.o"]).build()
    plan = build_plan(m, {"source.p.app.o", "model.p.a", "model.p.missing"})
    assert list(plan.nodes) == ["model.p.a"]


def test_shop_project_plan_matches_dbt_build_placement(shop_manifest_path) -> None:
    m = load_manifest(shop_manifest_path)
    plan = build_plan(m)
    deps = plan.dependencies
    # The unit test on orders runs before orders, after orders' parents.
    assert "unit_test.shop.orders.test_orders_paid_ratio" in deps["model.shop.orders"]
    # Ephemeral int_order_payments is looked through: orders waits for stg_payments.
    assert "model.shop.int_order_payments" not in plan.nodes
    order = {uid: w.number for w in plan.waves for uid in w.node_ids}
    assert order["model.shop.stg_payments"] < order["model.shop.orders"]
    # Two YAML snapshots from one file are two nodes.
    assert {"snapshot.shop.orders_snapshot", "snapshot.shop.customers_snapshot"} <= set(order)
    # Every dependency is planned in an earlier wave.
    for uid, parents in deps.items():
        assert all(order[p] < order[uid] for p in parents)
    # Deterministic.
    assert [w.node_ids for w in build_plan(m).waves] == [w.node_ids for w in plan.waves]


def test_deep_chains_plan_without_recursion() -> None:
    """Ephemerals looked through, tests placed and waves cut on chains past the recursion limit."""
    builder = ManifestBuilder().seed("raw")
    previous = "raw"
    for i in range(1500):
        builder.model(f"e{i}", materialized="ephemeral", depends_on=[previous])
        previous = f"e{i}"
    builder.model("m0", depends_on=[previous]).test("t0", depends_on=["m0"])
    for i in range(1, 1500):
        builder.model(f"m{i}", depends_on=[f"m{i - 1}"])
    plan = build_plan(builder.build())
    assert plan.dependencies["model.p.m0"] == ("seed.p.raw",)
    assert plan.dependencies["model.p.m1"] == ("model.p.m0", "test.p.t0")
    assert len(plan.waves) == 1 + 1 + 1 + 1499


def test_multi_parent_tests_on_a_deep_chain_are_placed_without_recursion() -> None:
    builder = ManifestBuilder().model("m0")
    for i in range(1, 2000):
        builder.model(f"m{i}", depends_on=[f"m{i - 1}"])
        builder.test(f"rel{i}", depends_on=[f"m{i}", f"m{i - 1}"], test_name="relationships")
    plan = build_plan(builder.build())
    # The next model waits for the test between its parent and grandparent, as in dbt build.
    assert plan.dependencies["model.p.m1500"] == ("model.p.m1499", "test.p.rel1499")
    assert plan.dependencies["test.p.rel1500"] == ("model.p.m1499", "model.p.m1500")
