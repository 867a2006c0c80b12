from __future__ import annotations

import gc
import json
import pickle
import weakref
from pathlib import Path

import pytest
from dbt_graph import ManifestError, ResourceType, load_manifest, parse_manifest
from dbt_graph.testing import ManifestBuilder


def test_shop_manifest_reads_every_resource_type(shop_manifest_path: Path) -> None:
    m = load_manifest(shop_manifest_path)
    types = {n.resource_type for n in m.nodes.values()}
    assert {
        ResourceType.MODEL,
        ResourceType.SEED,
        ResourceType.SNAPSHOT,
        ResourceType.TEST,
        ResourceType.UNIT_TEST,
        ResourceType.SOURCE,
        ResourceType.EXPOSURE,
        ResourceType.ANALYSIS,
    } <= types
    assert m.project_name == "shop" and m.adapter_type == "duckdb"
    assert "macro.shop.cents_to_dollars" in m.macros
    assert "macro.shop_utils.safe_divide" in m.macros
    assert "everything_but_deprecated" in m.selectors
    assert "group.shop.finance" in m.groups
    v2 = m.node("model.shop.customers.v2")
    assert (v2.version, v2.latest_version, v2.display_name) == ("2", "2", "customers.v2")
    src = m.node("source.shop.shop_app.orders")
    assert src.freshness_warn_after is not None and src.freshness_warn_after.count == 3650
    assert m.node("model.shop.int_order_payments").is_ephemeral
    assert m.parent_map["unit_test.shop.orders.test_orders_paid_ratio"] == ("model.shop.orders",)


def test_manifest_nodes_pickle(shop_manifest_path: Path) -> None:
    m = load_manifest(shop_manifest_path)
    node = m.node("model.shop.orders")
    assert pickle.loads(pickle.dumps(node)) == node
    assert hash(node) == hash(pickle.loads(pickle.dumps(node)))


def test_missing_file_says_to_run_dbt_parse(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="dbt parse") as info:
        load_manifest(tmp_path / "manifest.json")
    assert info.value.path == str(tmp_path / "manifest.json")


def test_truncated_file_is_reported_as_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text('{"metadata": {')
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_manifest(path)


def test_what_fast_json_refuses_still_loads(tmp_path: Path) -> None:
    # dbt writes a YAML `.nan` in meta as NaN: not strict JSON, which the fast decoder
    # refuses; the manifest must load anyway.
    data = ManifestBuilder().model("m", config={"meta": {"ratio": float("nan")}}).build_dict()
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(data))
    assert "NaN" in path.read_text()
    manifest = load_manifest(path)
    assert manifest.node("model.p.m").name == "m"


@pytest.mark.parametrize("version", [9, 13])
def test_unsupported_schema_version_is_refused(version: int) -> None:
    data = ManifestBuilder().build_dict()
    data["metadata"]["dbt_schema_version"] = (
        f"https://schemas.getdbt.com/dbt/manifest/v{version}.json"
    )
    with pytest.raises(ManifestError, match=f"v{version} is not supported") as info:
        parse_manifest(data, path="m.json")
    assert info.value.field == "metadata.dbt_schema_version"


def test_malformed_node_names_the_field() -> None:
    data = ManifestBuilder().model("a").build_dict()
    data["nodes"]["model.p.a"]["depends_on"] = {"nodes": "model.p.x"}
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, path="m.json")
    assert info.value.field == "nodes['model.p.a'].depends_on.nodes"
    assert "m.json" in str(info.value)


def test_unknown_resource_type_is_an_error_not_a_model() -> None:
    data = ManifestBuilder().model("a").build_dict()
    data["nodes"]["model.p.a"]["resource_type"] = "hologram"
    with pytest.raises(ManifestError, match="unknown resource type 'hologram'"):
        parse_manifest(data)


def test_not_a_manifest_at_all(tmp_path: Path) -> None:
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(ManifestError, match="JSON object"):
        load_manifest(path)


def test_a_file_loaded_again_while_its_manifest_is_in_use_is_not_parsed_again(
    tmp_path: Path,
) -> None:
    # The orchestrator and the executor of one build both load the file: one copy, not two.
    path = ManifestBuilder().model("a").write(tmp_path)
    first = load_manifest(path)
    assert load_manifest(path) is first
    assert load_manifest(str(path)) is first


def test_a_changed_file_is_parsed_again(tmp_path: Path) -> None:
    path = ManifestBuilder().model("a").write(tmp_path)
    first = load_manifest(path)
    ManifestBuilder().model("a").model("b").write(tmp_path)
    second = load_manifest(path)
    assert second is not first
    assert set(second.nodes) == {"model.p.a", "model.p.b"}


def test_a_manifest_no_longer_in_use_is_freed_and_parsed_again(tmp_path: Path) -> None:
    path = ManifestBuilder().model("a").write(tmp_path)
    first = load_manifest(path)
    alive = weakref.ref(first)
    del first
    gc.collect()
    assert alive() is None
    assert load_manifest(path).node("model.p.a").name == "a"
