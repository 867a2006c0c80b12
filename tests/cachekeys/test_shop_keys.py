"""Keys on the real shop project: each input changes the key of its node and of exactly its
descendants, and explain names the cause."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cachekeys.shop_helpers import copy_project, keys_for
from dbt_cachekeys import KeyRecord, KeySet, NodeKey, ProjectFiles, compute_keys, explain
from dbt_graph import Manifest

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)


def descendants(manifest: Manifest, roots: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        for child in manifest.child_map[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def record_of(node_key: NodeKey) -> KeyRecord:
    return KeyRecord(
        unique_id=node_key.unique_id,
        key=node_key.key,
        token="t",
        finished_at=NOW,
        components=node_key.components,
    )


def changed(before: KeySet, after: KeySet) -> set[str]:
    assert set(before) == set(after)
    return {uid for uid in before if before[uid].key != after[uid].key}


def assert_changes_exactly(
    manifest: Manifest, before: KeySet, after: KeySet, roots: set[str], reasons: tuple[str, ...]
) -> None:
    expected = roots | (descendants(manifest, roots) & set(before))
    assert changed(before, after) == expected
    for uid in roots:
        assert explain(after[uid], record_of(before[uid])) == reasons, uid
    for uid in expected - roots:
        why = explain(after[uid], record_of(before[uid]))
        assert why and all(r.startswith("upstream `") for r in why), (uid, why)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("variant", "roots", "reasons"),
    [
        ("sql", {"model.shop.stg_customers"}, ("SQL changed",)),
        ("config", {"model.shop.stg_orders"}, ("config changed",)),
        ("alias", {"model.shop.stg_customers"}, ("config changed", "relation changed")),
        ("schema", {"model.shop.orders"}, ("config changed", "relation changed")),
        (
            "macro_nested",
            {"model.shop.stg_orders", "model.shop.stg_payments"},
            ("macro `round_money` changed",),
        ),
        (
            "macro_direct",
            {"model.shop.stg_orders", "model.shop.stg_payments"},
            ("macro `cents_to_dollars` changed",),
        ),
        ("package_macro", {"model.shop.orders"}, ("macro `shop_utils.safe_divide` changed",)),
        ("snapshot_block", {"snapshot.shop.orders_snapshot"}, ("config changed",)),
    ],
)
def test_project_edit_changes_node_and_exactly_its_descendants(
    shop_manifest: Manifest,
    shop_keys: KeySet,
    shop_projects: dict[str, Path],
    variant: str,
    roots: set[str],
    reasons: tuple[str, ...],
) -> None:
    _, after = keys_for(shop_projects[variant])
    assert_changes_exactly(shop_manifest, shop_keys, after, roots, reasons)


@pytest.mark.slow
def test_upstream_change_is_named_through_an_ephemeral_model(
    shop_keys: KeySet, shop_projects: dict[str, Path]
) -> None:
    _, after = keys_for(shop_projects["macro_nested"])
    orders = "model.shop.orders"
    assert explain(after[orders], record_of(shop_keys[orders])) == (
        "upstream `int_order_payments` changed",
        "upstream `stg_orders` changed",
    )


@pytest.mark.slow
def test_snapshot_key_covers_its_own_block_not_the_whole_file(
    shop_keys: KeySet, shop_projects: dict[str, Path]
) -> None:
    _, after = keys_for(shop_projects["snapshot_block"])
    assert (
        after["snapshot.shop.customers_snapshot"] == shop_keys["snapshot.shop.customers_snapshot"]
    )


def test_seed_csv_change_changes_seed_and_exactly_its_descendants(
    shop_base: Path, shop_manifest: Manifest, shop_keys: KeySet, tmp_path: Path
) -> None:
    project = copy_project(shop_base, tmp_path / "shop")
    with (project / "seeds" / "raw_orders.csv").open("a") as csv:
        csv.write("999,1,2024-12-31 00:00:00,placed,100\n")
    reader = ProjectFiles(project, root_package="shop")
    after = compute_keys(shop_manifest, read_file=reader, target="dev")
    assert_changes_exactly(
        shop_manifest, shop_keys, after, {"seed.shop.raw_orders"}, ("CSV changed",)
    )


@pytest.mark.slow
def test_package_seed_is_read_from_its_package_root(shop_projects: dict[str, Path]) -> None:
    project = shop_projects["package_seed"]
    manifest, before = keys_for(project)
    seed = "seed.shop_utils.pkg_days"
    assert before[seed].problem is None
    with (project / "local_pkg" / "seeds" / "pkg_days.csv").open("a") as csv:
        csv.write("3\n")
    _, after = keys_for(project)
    assert_changes_exactly(manifest, before, after, {seed}, ("CSV changed",))


@pytest.mark.parametrize(
    ("option", "reason"),
    [
        ({"target": "prod"}, "target changed"),
        ({"vars": {"min_order_total": 5}}, "vars changed"),
        ({"full_refresh": True}, "full refresh"),
        ({"cli_args": ["--empty"]}, "dbt arguments changed"),
    ],
)
def test_invocation_inputs_change_every_key_and_are_named_once(
    shop_manifest: Manifest, shop_keys: KeySet, shop_base: Path, option: dict, reason: str
) -> None:
    reader = ProjectFiles(shop_base, root_package="shop")
    after = compute_keys(shop_manifest, read_file=reader, **{"target": "dev", **option})
    assert changed(shop_keys, after) == set(shop_keys)
    for uid in shop_keys:
        assert explain(after[uid], record_of(shop_keys[uid])) == (reason,)


def test_recomputing_gives_identical_keys(shop_manifest: Manifest, shop_base: Path) -> None:
    reader = ProjectFiles(shop_base, root_package="shop")
    vars_a = {"a": 1, "b": {"x": [1, 2]}}
    vars_b = {"b": {"x": [1, 2]}, "a": 1}
    one = compute_keys(shop_manifest, read_file=reader, target="dev", vars=vars_a)
    two = compute_keys(shop_manifest, read_file=reader, target="dev", vars=vars_b)
    assert {u: k.key for u, k in one.items()} == {u: k.key for u, k in two.items()}


def test_keys_are_identical_in_another_process(
    shop_build: tuple[dict[str, Path], dict[str, str]], shop_keys: KeySet
) -> None:
    _, keys_in_child = shop_build  # computed with another PYTHONHASHSEED
    assert keys_in_child == {uid: k.key for uid, k in shop_keys.items()}


def test_every_runnable_and_test_node_has_a_key(shop_manifest: Manifest, shop_keys: KeySet) -> None:
    for uid, node in shop_manifest.nodes.items():
        if node.is_executable or node.is_test or node.is_ephemeral:
            assert uid in shop_keys
    assert "exposure.shop.customer_dashboard" not in shop_keys
    assert "analysis.shop.order_counts" not in shop_keys
    assert all(k.problem is None for k in shop_keys.values())


def test_ephemeral_models_fold_into_children_as_data_parents(shop_keys: KeySet) -> None:
    orders = shop_keys["model.shop.orders"]
    assert orders.data_parents == ("model.shop.stg_orders", "model.shop.stg_payments")
    assert dict(orders.components.upstream).keys() == {
        "model.shop.stg_orders",
        "model.shop.int_order_payments",
    }
    assert orders.sources == ("source.shop.shop_app.orders", "source.shop.shop_app.payments")


def test_macros_are_transitive_and_include_the_materialization(shop_keys: KeySet) -> None:
    macros = dict(shop_keys["model.shop.stg_orders"].components.macros)
    assert {"macro.shop.cents_to_dollars", "macro.shop.round_money"} <= macros.keys()
    assert "macro.dbt.materialization_view_default" in macros
    assert "macro.shop_utils.safe_divide" in dict(shop_keys["model.shop.orders"].components.macros)
