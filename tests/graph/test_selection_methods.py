"""Every selector method on a small manifest (indirect selection off: only what methods match)."""

from __future__ import annotations

from typing import Any

import pytest
from dbt_graph import Manifest, parse_manifest, select
from dbt_graph._path_glob import PathIndex
from dbt_graph.testing import ManifestBuilder


def _semantic(kind: str, name: str, depends_on: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "unique_id": f"{kind}.p.{name}",
        "name": name,
        "resource_type": kind,
        "package_name": "p",
        "original_file_path": "models/marts/semantic.yml",
        "path": "marts/semantic.yml",
        "fqn": ["p", "marts", name],
        "config": {"enabled": True, "group": None, "meta": {}},
        "depends_on": {"nodes": depends_on, "macros": []},
        **extra,
    }


@pytest.fixture(scope="module")
def shop() -> Manifest:
    """A project with two packages, versions, groups, configs and every resource type."""
    b = (
        ManifestBuilder()
        .seed("raw_orders", path="seeds/raw_orders.csv")
        .source("app", "orders")
        .model(
            "stg_orders",
            depends_on=["raw_orders"],
            path="models/staging/stg_orders.sql",
            tags=["staging", "daily"],
            extra={"patch_path": "p://models/staging/staging.yml"},
        )
        .model(
            "orders",
            depends_on=["stg_orders"],
            materialized="table",
            path="models/marts/orders.sql",
            tags=["finance"],
            config={
                "group": "finance",
                "meta": {"owner": "finance@example.com"},
                "contract": {"enforced": False},
                "docs": {"show": True},
                "grants": {"select": ["reporter", "analyst"]},
                "limit": 5,
            },
            extra={"access": "public", "patch_path": "p://models/marts/marts.yml"},
        )
        .model("util", package="utils", path="models/util.sql")
        .model("helper", package="utils", path="models/staging/helper.sql")
        .test(
            "not_null_stg_orders_id",
            depends_on=["stg_orders"],
            path="models/staging/staging.yml",
            severity="warn",
        )
        .test(
            "relationships_orders",
            depends_on=["orders", "stg_orders"],
            test_name="relationships",
            path="models/marts/marts.yml",
        )
        .test(
            "assert_positive",
            depends_on=["orders"],
            test_name=None,
            path="tests/assert_positive.sql",
        )
        .unit_test(
            "test_orders",
            model="orders",
            fqn=["p", "marts", "orders", "test_orders"],
            original_file_path="models/marts/marts.yml",
        )
        .exposure("dashboard", depends_on=["orders"])
    )
    for version in ("1", "2", "3"):
        b.model(
            f"customers.v{version}",
            depends_on=["stg_orders"],
            path=f"models/marts/customers_v{version}.sql",
            config={"materialized": "table"},
            extra={
                "name": "customers",
                "version": int(version),
                "latest_version": 2,
                "access": "protected",
                "fqn": ["p", "marts", "customers", f"v{version}"],
            },
        )
    data = b.build_dict()
    data["semantic_models"] = {
        "semantic_model.p.orders_sm": _semantic("semantic_model", "orders_sm", ["model.p.orders"])
    }
    data["metrics"] = {
        "metric.p.revenue": _semantic(
            "metric",
            "revenue",
            ["semantic_model.p.orders_sm"],
            config={"enabled": True, "group": "finance", "meta": {}},
        )
    }
    data["saved_queries"] = {
        "saved_query.p.daily_revenue": _semantic(
            "saved_query", "daily_revenue", ["metric.p.revenue"]
        )
    }
    return parse_manifest(data)


def short(uid: str) -> str:
    """``model.p.orders`` -> ``orders``; ``model.utils.util`` -> ``utils.util``."""
    _, package, *rest = uid.split(".")
    name = ".".join(rest)
    return name if package == "p" else f"{package}.{name}"


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # fqn and bare names
        ("orders", {"orders"}),
        ("fqn:p.marts.orders", {"orders", "orders.test_orders"}),
        ("p.staging", {"stg_orders", "not_null_stg_orders_id"}),
        ("staging", {"stg_orders", "not_null_stg_orders_id", "utils.helper"}),
        ("utils", {"utils.util", "utils.helper"}),
        ("stg_*", {"stg_orders"}),
        ("*.orders.*", {"orders.test_orders"}),
        ("customers", {"customers.v1", "customers.v2", "customers.v3"}),
        ("customers_v2", {"customers.v2"}),
        ("customers.v3", {"customers.v3"}),
        ("custom*", {"customers.v1", "customers.v2", "customers.v3"}),
        ("fqn:*", None),
        # tags, groups, access, packages
        ("tag:daily", {"stg_orders"}),
        ("tag:fin*", {"orders"}),
        ("group:finance", {"orders", "revenue"}),
        ("access:public", {"orders"}),
        ("access:protected", {"customers.v1", "customers.v2", "customers.v3"}),
        ("package:utils", {"utils.util", "utils.helper"}),
        ("package:this", None),
        ("package:util*", {"utils.util", "utils.helper"}),
        # paths and files
        ("path:models/staging", {"stg_orders", "not_null_stg_orders_id", "utils.helper"}),
        ("models/staging/stg_orders.sql", {"stg_orders"}),
        ("path:models/marts/marts.yml", {"orders", "relationships_orders", "orders.test_orders"}),
        ("path:models/*/customers_v?.sql", {"customers.v1", "customers.v2", "customers.v3"}),
        ("path:models/**/orders.sql", {"orders"}),
        ("path:models/does_not_exist", set()),
        ("path:tests", {"assert_positive"}),
        ("file:orders.sql", {"orders"}),
        ("orders.sql", {"orders"}),
        ("file:customers_v*", {"customers.v1", "customers.v2", "customers.v3"}),
        ("file:marts", {"relationships_orders", "orders.test_orders"}),
        # config
        ("config.materialized:table", {"orders", "customers.v1", "customers.v2", "customers.v3"}),
        ("config.meta.owner:finance@example.com", {"orders"}),
        ("config.grants.select:analyst", {"orders"}),
        ("config.tags:daily", {"stg_orders"}),
        ("config.contract.enforced:false", {"orders"}),
        ("config.docs.show:TRUE", {"orders"}),
        ("config.severity:WARN", {"not_null_stg_orders_id"}),
        ("config.severity:error", {"relationships_orders", "assert_positive"}),
        ("config.limit:5", set()),
        ("config.enabled:true", None),
        # resource types and tests
        ("resource_type:seed", {"raw_orders"}),
        ("resource_type:rpc", set()),
        ("test_type:generic", {"not_null_stg_orders_id", "relationships_orders"}),
        ("test_type:schema", {"not_null_stg_orders_id", "relationships_orders"}),
        ("test_type:singular", {"assert_positive"}),
        ("test_type:sing", {"assert_positive"}),
        ("test_type:data", {"not_null_stg_orders_id", "relationships_orders", "assert_positive"}),
        ("test_type:unit", {"orders.test_orders"}),
        ("test_name:relation*", {"relationships_orders"}),
        ("test_name:test_orders", {"orders.test_orders"}),
        ("unit_test:test_*", {"orders.test_orders"}),
        ("unit_test:p.test_orders", {"orders.test_orders"}),
        ("unit_test:other.test_orders", set()),
        # sources and other named resources
        ("source:app", {"app.orders"}),
        ("source:app.ord*", {"app.orders"}),
        ("source:p.app.orders", {"app.orders"}),
        ("source:utils.app.orders", set()),
        ("exposure:dashboard", {"dashboard"}),
        ("exposure:p.*", {"dashboard"}),
        ("metric:revenue", {"revenue"}),
        ("semantic_model:orders_sm", {"orders_sm"}),
        ("saved_query:p.daily_revenue", {"daily_revenue"}),
        # versions
        ("version:latest", {"customers.v2"}),
        ("version:prerelease", {"customers.v3"}),
        ("version:old", {"customers.v1"}),
        ("version:none", {"stg_orders", "orders", "utils.util", "utils.helper"}),
    ],
)
def test_method_matches(shop: Manifest, expression: str, expected: set[str] | None) -> None:
    selected = select(shop, expression, indirect_selection="empty", resource_types=["all"])
    if expected is None:  # everything of the relevant kinds; spot-check instead
        assert len(selected) > 10
    else:
        assert {short(uid) for uid in selected} == expected


def test_package_this_means_the_root_project(shop: Manifest) -> None:
    assert select(shop, "package:this", indirect_selection="empty") == select(
        shop, "package:p", indirect_selection="empty"
    )


def test_fqn_star_matches_everything_but_sources(shop: Manifest) -> None:
    selected = select(shop, "fqn:*", indirect_selection="empty", resource_types=["all"])
    assert selected == frozenset(uid for uid in shop.nodes if not uid.startswith("source."))


def test_yaml_config_values_keep_their_type() -> None:
    m = (
        ManifestBuilder()
        .model("a", config={"limit": 5, "full_refresh": True})
        .model("b", config={"limit": "5"})
        .selector("five", {"method": "config.limit", "value": 5})
        .selector("refresh", {"method": "config.full_refresh", "value": True})
        .build()
    )
    assert select(m, selector="five", indirect_selection="empty") == {"model.p.a"}
    assert select(m, "config.limit:5", indirect_selection="empty") == {"model.p.b"}
    assert select(m, selector="refresh") == {"model.p.a"}


def test_path_patterns_follow_pathlib_glob() -> None:
    index = PathIndex(
        files=frozenset({"models/a.sql", "models/sub/b.sql", "models/sub/b.yml"}),
        directories=frozenset({"models", "models/sub"}),
    )
    assert index.glob("models/**") == {"models", "models/sub"}
    assert index.glob("models/**/*.sql") == {"models/a.sql", "models/sub/b.sql"}
    assert index.glob("models/*") == {"models/a.sql", "models/sub"}
    assert index.glob("./models/sub/") == {"models/sub"}
    assert index.glob("models/../models") == frozenset()
    assert index.glob("Models") == frozenset()


def test_path_index_knows_only_root_project_files(shop: Manifest) -> None:
    index = PathIndex.from_manifest(shop)
    assert "models/util.sql" not in index.files
    assert {"models/staging/staging.yml", "models/marts/marts.yml"} <= index.files
    assert {"models", "models/staging", "seeds", "tests"} <= index.directories
