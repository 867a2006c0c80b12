"""Key computation on built manifests: edge cases of texts, macros, configs and graphs."""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from dbt_cachekeys import KeyRecord, NodeKey, compute_keys, explain
from dbt_graph import CycleError, Manifest, Node, parse_manifest
from dbt_graph.testing import ManifestBuilder

NOW = datetime(2025, 6, 1, tzinfo=UTC)


def record_of(node_key: NodeKey) -> KeyRecord:
    return KeyRecord(
        unique_id=node_key.unique_id,
        key=node_key.key,
        token="t",
        finished_at=NOW,
        components=node_key.components,
    )


def csv_reader(files: dict[str, bytes]) -> Callable[[Node], bytes]:
    def read(node: Node) -> bytes:
        try:
            return files[node.original_file_path]
        except KeyError:
            raise FileNotFoundError(node.original_file_path) from None

    return read


def test_config_key_order_does_not_matter() -> None:
    a = ManifestBuilder().model("m", config={"x": 1, "y": {"b": 2, "a": 1}}).build()
    b = ManifestBuilder().model("m", config={"y": {"a": 1, "b": 2}, "x": 1}).build()
    assert compute_keys(a)["model.p.m"].key == compute_keys(b)["model.p.m"].key


def test_each_seed_file_is_read_once() -> None:
    calls: list[str] = []

    def read(node: Node) -> bytes:
        calls.append(node.unique_id)
        return b"id\n1\n"

    m = ManifestBuilder().seed("a").seed("b").model("m", depends_on=["a", "b"]).build()
    compute_keys(m, read_file=read)
    assert sorted(calls) == ["seed.p.a", "seed.p.b"]


def test_unreadable_seed_is_never_a_hit_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    m = ManifestBuilder().seed("raw").model("stg", depends_on=["raw"]).build()
    with caplog.at_level(logging.WARNING, logger="dbt_cachekeys"):
        keys = compute_keys(m, read_file=csv_reader({}))
    assert keys["seed.p.raw"].problem is not None
    assert "seeds/raw.csv" in keys["seed.p.raw"].problem
    assert "seeds/raw.csv" in caplog.text
    assert keys["model.p.stg"].problem is None


def test_without_reader_seeds_use_dbt_sha256_checksum() -> None:
    def manifest(checksum: str) -> Manifest:
        b = ManifestBuilder().seed("raw")
        data = b.build_dict()
        data["nodes"]["seed.p.raw"]["checksum"] = {"name": "sha256", "checksum": checksum}
        return parse_manifest(data)

    one, two = "a" * 64, "b" * 64
    k1 = compute_keys(manifest(one))["seed.p.raw"]
    k2 = compute_keys(manifest(two))["seed.p.raw"]
    assert k1.problem is None and k1.key != k2.key
    assert explain(k2, record_of(k1)) == ("CSV changed",)


def test_without_reader_a_path_checksum_is_a_problem() -> None:
    data = ManifestBuilder().seed("big").build_dict()
    data["nodes"]["seed.p.big"]["checksum"] = {"name": "path", "checksum": "seeds/big.csv"}
    assert compute_keys(parse_manifest(data))["seed.p.big"].problem is not None


def test_unit_test_definition_is_its_checksum() -> None:
    def manifest(checksum: str) -> Manifest:
        return ManifestBuilder().model("m").unit_test("t", model="m", checksum=checksum).build()

    uid = "unit_test.p.m.t"
    before = compute_keys(manifest("one"))[uid]
    after = compute_keys(manifest("two"))[uid]
    assert explain(after, record_of(before)) == ("unit test definition changed",)


def test_python_model_text_is_called_python_code() -> None:
    def manifest(code: str) -> Manifest:
        data = ManifestBuilder().model("m", code=code).build_dict()
        data["nodes"]["model.p.m"]["language"] = "python"
        return parse_manifest(data)

    before = compute_keys(manifest("def model(dbt, s): return 1"))["model.p.m"]
    after = compute_keys(manifest("def model(dbt, s): return 2"))["model.p.m"]
    assert explain(after, record_of(before)) == ("Python code changed",)


def test_enforced_contract_checksum_is_part_of_config() -> None:
    def manifest(checksum: str) -> Manifest:
        data = ManifestBuilder().model("m").build_dict()
        data["nodes"]["model.p.m"]["contract"] = {"enforced": True, "checksum": checksum}
        return parse_manifest(data)

    before = compute_keys(manifest("c1"))["model.p.m"]
    after = compute_keys(manifest("c2"))["model.p.m"]
    assert explain(after, record_of(before)) == ("config changed",)


def _macro_manifest(macros: dict[str, tuple[str, list[str]]], roots: list[str]) -> Manifest:
    """Macros by unique_id (``macro.<package>.<name>``) and a model calling ``roots``."""
    data = ManifestBuilder().model("m", macros=roots).build_dict()
    for uid, (sql, deps) in macros.items():
        _, package, name = uid.split(".")
        data["macros"][uid] = {
            "unique_id": uid,
            "name": name,
            "package_name": package,
            "original_file_path": f"macros/{name}.sql",
            "macro_sql": sql,
            "depends_on": {"macros": deps},
        }
    return parse_manifest(data)


def test_nested_macro_change_is_named_by_the_nested_macro() -> None:
    def macros(inner: str) -> dict[str, tuple[str, list[str]]]:
        return {"macro.p.outer": ("outer", ["macro.p.inner"]), "macro.p.inner": (inner, [])}

    before = compute_keys(_macro_manifest(macros("v1"), ["macro.p.outer"]))["model.p.m"]
    after = compute_keys(_macro_manifest(macros("v2"), ["macro.p.outer"]))["model.p.m"]
    assert explain(after, record_of(before)) == ("macro `inner` changed",)


def test_macro_cycles_are_followed_without_looping() -> None:
    def macros(b_sql: str) -> dict[str, tuple[str, list[str]]]:
        return {
            "macro.p.a": ("a", ["macro.p.b"]),
            "macro.p.b": (b_sql, ["macro.p.c", "macro.p.a"]),
            "macro.p.c": ("c", ["macro.p.b", "macro.p.c"]),
        }

    before = compute_keys(_macro_manifest(macros("b1"), ["macro.p.a"]))["model.p.m"]
    after = compute_keys(_macro_manifest(macros("b2"), ["macro.p.a"]))["model.p.m"]
    assert dict(before.components.macros).keys() == {"macro.p.a", "macro.p.b", "macro.p.c"}
    assert explain(after, record_of(before)) == ("macro `b` changed",)


def test_macro_missing_from_manifest_does_not_fail() -> None:
    keys = compute_keys(_macro_manifest({}, ["macro.p.gone"]))
    assert "macro.p.gone" in dict(keys["model.p.m"].components.macros)


def test_adapter_dispatch_implementations_count() -> None:
    def macros(duckdb_sql: str) -> dict[str, tuple[str, list[str]]]:
        return {
            "macro.dbt.concat": ("dispatch", ["macro.dbt.default__concat"]),
            "macro.dbt.default__concat": ("default", []),
            "macro.dbt_duckdb.duckdb__concat": (duckdb_sql, []),
        }

    before = compute_keys(_macro_manifest(macros("d1"), ["macro.dbt.concat"]))["model.p.m"]
    after = compute_keys(_macro_manifest(macros("d2"), ["macro.dbt.concat"]))["model.p.m"]
    assert explain(after, record_of(before)) == ("macro `dbt_duckdb.duckdb__concat` changed",)


def test_project_override_of_a_builtin_macro_counts() -> None:
    def macros(override: str) -> dict[str, tuple[str, list[str]]]:
        return {
            "macro.dbt.create_table_as": ("builtin", []),
            "macro.p.create_table_as": (override, []),
        }

    roots = ["macro.dbt.create_table_as"]
    before = compute_keys(_macro_manifest(macros("o1"), roots))["model.p.m"]
    after = compute_keys(_macro_manifest(macros("o2"), roots))["model.p.m"]
    assert explain(after, record_of(before)) == ("macro `create_table_as` changed",)


def test_materialization_macro_counts_though_no_node_names_it() -> None:
    def macros(sql: str) -> dict[str, tuple[str, list[str]]]:
        return {
            "macro.dbt.materialization_view_default": (sql, []),
            "macro.dbt.materialization_table_default": ("table", []),
        }

    before = compute_keys(_macro_manifest(macros("v1"), []))["model.p.m"]
    after = compute_keys(_macro_manifest(macros("v2"), []))["model.p.m"]
    assert explain(after, record_of(before)) == (
        "macro `dbt.materialization_view_default` changed",
    )
    assert "macro.dbt.materialization_table_default" not in dict(before.components.macros)


def test_dependency_cycle_raises_cycle_error() -> None:
    data = ManifestBuilder().model("a").model("b", depends_on=["a"]).build_dict()
    data["nodes"]["model.p.a"]["depends_on"]["nodes"] = ["model.p.b"]
    with pytest.raises(CycleError):
        compute_keys(parse_manifest(data))


def test_keys_are_in_topological_order() -> None:
    b = ManifestBuilder().model("a").model("b", depends_on=["a"]).model("c", depends_on=["b"])
    data = b.build_dict()
    data["nodes"] = dict(reversed(list(data["nodes"].items())))
    assert list(compute_keys(parse_manifest(data))) == ["model.p.a", "model.p.b", "model.p.c"]


def test_empty_manifest_has_no_keys() -> None:
    assert len(compute_keys(ManifestBuilder().build())) == 0


def test_unkeyed_node_lookup_says_why() -> None:
    keys = compute_keys(ManifestBuilder().model("m").exposure("e", depends_on=["m"]).build())
    with pytest.raises(KeyError, match="never cached"):
        keys["exposure.p.e"]


def test_source_definition_change_reaches_children() -> None:
    def manifest(identifier: str) -> Manifest:
        data = (
            ManifestBuilder()
            .source("app", "orders")
            .model("stg", depends_on=["app.orders"])
            .build_dict()
        )
        data["sources"]["source.p.app.orders"]["relation_name"] = f'"db"."raw"."{identifier}"'
        return parse_manifest(data)

    before = compute_keys(manifest("orders"))
    after = compute_keys(manifest("orders_v2"))
    assert explain(after["model.p.stg"], record_of(before["model.p.stg"])) == (
        "upstream `app.orders` changed",
    )


def test_keys_pickle_for_worker_processes() -> None:
    keys = compute_keys(ManifestBuilder().model("a").model("b", depends_on=["a"]).build())
    copy = pickle.loads(pickle.dumps(keys))
    assert {u: k.key for u, k in copy.items()} == {u: k.key for u, k in keys.items()}
    assert copy["model.p.b"] == keys["model.p.b"]
