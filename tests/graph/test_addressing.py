"""node_selector(): a --select argument that selects exactly one node."""

from __future__ import annotations

import gc
import shutil
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from dbt_graph import (
    Manifest,
    SelectionError,
    load_manifest,
    node_selector,
    parse_manifest,
    select,
)
from dbt_graph.testing import ManifestBuilder


def exactly(manifest: Manifest, selector: str) -> frozenset[str]:
    return select(manifest, selector, indirect_selection="empty", resource_types=["all"])


@pytest.fixture
def tricky() -> Manifest:
    """Names that collide under dbt's fqn rules."""
    b = (
        ManifestBuilder()
        .model("staging", path="models/staging.sql")  # fqn p.staging: a prefix of the next
        .model("stg_orders", path="models/staging/stg_orders.sql")
        .model("orders", path="models/marts/orders.sql")
        .unit_test("test_orders", model="orders", fqn=["p", "marts", "orders", "test_orders"])
        .snapshot("orders_snapshot", path="snapshots/snapshots.yml")
        .snapshot("customers_snapshot", path="snapshots/snapshots.yml")
        .model("util", package="utils", path="models/util.sql")
        .model("p", package="utils", path="models/p.sql")  # leaf "p", the root package name
        .test("not_null_orders_id", depends_on=["orders"], path="models/marts/marts.yml")
        .source("app", "orders")
        .exposure("dashboard", depends_on=["orders"])
    )
    for version in ("1", "2"):
        b.model(
            f"customers.v{version}",
            path=f"models/marts/customers_v{version}.sql",
            extra={
                "name": "customers",
                "version": int(version),
                "latest_version": 2,
                "fqn": ["p", "marts", "customers", f"v{version}"],
            },
        )
    return b.build()


@pytest.mark.parametrize(
    ("uid", "selector"),
    [
        ("model.p.staging", "fqn:p.staging,resource_type:model,file:staging.sql"),
        ("model.p.stg_orders", "fqn:p.staging.stg_orders"),
        ("model.p.orders", "fqn:p.marts.orders,resource_type:model"),
        ("unit_test.p.orders.test_orders", "fqn:p.marts.orders.test_orders"),
        ("snapshot.p.orders_snapshot", "fqn:p.orders_snapshot"),
        ("snapshot.p.customers_snapshot", "fqn:p.customers_snapshot"),
        ("model.utils.util", "fqn:utils.util"),
        ("model.p.customers.v1", "fqn:p.marts.customers.v1"),
        ("model.p.customers.v2", "fqn:p.marts.customers.v2"),
        ("test.p.not_null_orders_id", "fqn:p.marts.not_null_orders_id"),
        ("source.p.app.orders", "source:p.app.orders"),
        ("exposure.p.dashboard", "fqn:p.dashboard"),
    ],
)
def test_selector_is_the_shortest_exact_one(tricky: Manifest, uid: str, selector: str) -> None:
    assert node_selector(uid, tricky) == selector
    assert exactly(tricky, selector) == {uid}


def test_every_node_gets_an_exact_selector(tricky: Manifest) -> None:
    for uid, node in tricky.nodes.items():
        assert exactly(tricky, node_selector(node, tricky)) == {uid}


def test_identical_nodes_cannot_be_told_apart() -> None:
    b = ManifestBuilder().model("a")
    data = b.build_dict()
    twin = dict(data["nodes"]["model.p.a"], unique_id="model.p.a_twin")
    data["nodes"]["model.p.a_twin"] = twin
    m = parse_manifest(data)
    with pytest.raises(SelectionError, match=r"No selector singles out model\.p\.a"):
        node_selector("model.p.a", m)


def test_unknown_node_raises_key_error(tricky: Manifest) -> None:
    with pytest.raises(KeyError, match=r"model\.p\.nope"):
        node_selector("model.p.nope", tricky)


def test_a_manifest_addressed_once_is_freed_when_dropped() -> None:
    # The index node_selector keeps per manifest must not keep the manifest alive: a
    # long-lived process (a Prefect worker running build after build) would hold every
    # manifest it ever addressed.
    manifest = ManifestBuilder().model("a").model("b", depends_on=["a"]).build()
    assert node_selector("model.p.b", manifest) == "fqn:p.b"
    alive = weakref.ref(manifest)
    del manifest
    gc.collect()
    assert alive() is None


def test_addressing_every_node_of_a_large_project_is_fast() -> None:
    b = ManifestBuilder()
    for i in range(2000):
        b.model(
            f"m{i}", path=f"models/layer{i % 10}/m{i}.sql", depends_on=[f"m{i - 1}"] if i else []
        )
    m = b.build()
    start = time.perf_counter()
    selectors = {uid: node_selector(uid, m) for uid in m.nodes}
    assert time.perf_counter() - start < 2.0
    assert selectors["model.p.m7"] == "fqn:p.layer7.m7"


@pytest.mark.slow
def test_dbt_ls_lists_exactly_the_addressed_node(
    shop_parsed: Path, tmp_path: Path, run_dbt_ls: Callable[..., list[frozenset[str] | str]]
) -> None:
    # A copy, since dbt ls rewrites target/; the same DuckDB path keeps partial parsing on.
    project = Path(shutil.copytree(shop_parsed, tmp_path / "shop", symlinks=True))
    manifest = load_manifest(project / "target" / "manifest.json")
    nodes = list(manifest.nodes.values())
    selectors = {n.unique_id: node_selector(n, manifest) for n in nodes}
    invocations = []
    for n in nodes:
        sel = selectors[n.unique_id]
        # Exact on its own with indirect selection off, and in a command that runs only the
        # node's resource type (as `dbt run`/`seed`/`snapshot`/`test` do) with dbt's default.
        invocations.append(
            ["--select", sel, "--indirect-selection", "empty", "--resource-type", "all"]
        )
        invocations.append(["--select", sel, "--resource-type", n.resource_type.value])
    outcomes = run_dbt_ls(project, invocations, duckdb_path=shop_parsed / "shop.duckdb")
    wrong = {
        (n.unique_id, selectors[n.unique_id], i % 2): outcome
        for i, (n, outcome) in enumerate(
            zip([n for n in nodes for _ in (0, 1)], outcomes, strict=True)
        )
        if outcome != {n.unique_id}
    }
    assert wrong == {}
    kinds = {n.resource_type.value for n in nodes}
    assert {"model", "seed", "snapshot", "test", "unit_test"} <= kinds
