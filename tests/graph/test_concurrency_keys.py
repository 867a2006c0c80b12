from __future__ import annotations

import pickle

import pytest
from dbt_graph import ConcurrencyKey, ConcurrencyKeyError, Manifest, keys_by_node
from dbt_graph.testing import ManifestBuilder


@pytest.fixture
def manifest() -> Manifest:
    return (
        ManifestBuilder()
        .seed("raw")
        .model("heavy_table", depends_on=["raw"], materialized="table", tags=["heavy", "daily"])
        .model("light_view", depends_on=["raw"], tags=["daily"])
        .model(
            "events",
            depends_on=["raw"],
            materialized="incremental",
            config={"meta": {"pool": "large", "owner": {"team": "core"}, "critical": True}},
        )
        .model("small_pool", depends_on=["raw"], config={"meta": {"pool": "small"}})
        .snapshot("snap_a", depends_on=["raw"])
        .snapshot("snap_b", depends_on=["raw"], tags=["heavy"])
        .test("not_null_heavy_table", depends_on=["heavy_table"])
    ).build()


def held(manifest: Manifest, *keys: ConcurrencyKey, nodes: list[str] | None = None) -> dict:
    mapping = keys_by_node(manifest, list(keys), nodes)
    return {uid: [k.selector for k in ks] for uid, ks in mapping.items()}


@pytest.mark.parametrize(
    ("selector", "nodes"),
    [
        ("tag:heavy", ["model.p.heavy_table", "snapshot.p.snap_b"]),
        ("tag:dai*", ["model.p.heavy_table", "model.p.light_view"]),
        ("resource_type:snapshot", ["snapshot.p.snap_a", "snapshot.p.snap_b"]),
        ("resource_type:seed", ["seed.p.raw"]),
        ("config.materialized:incremental", ["model.p.events"]),
        ("config.materialized:table", ["model.p.heavy_table"]),
        ("config.meta.pool:large", ["model.p.events"]),
        ("config.meta.owner.team:core", ["model.p.events"]),
        ("config.meta.critical:true", ["model.p.events"]),
        ("tag:nothing", []),
    ],
)
def test_each_kind_of_key_matches_its_nodes(
    manifest: Manifest, selector: str, nodes: list[str]
) -> None:
    key = ConcurrencyKey(selector=selector, limit=1)
    assert held(manifest, key) == {uid: [selector] for uid in nodes}


def test_a_key_never_pulls_in_the_tests_of_its_nodes(manifest: Manifest) -> None:
    mapping = keys_by_node(manifest, [ConcurrencyKey(selector="tag:heavy", limit=1)])
    assert "test.p.not_null_heavy_table" not in mapping


def test_a_node_holds_every_key_it_matches_in_the_order_given(manifest: Manifest) -> None:
    snapshots = ConcurrencyKey(selector="resource_type:snapshot", limit=2)
    heavy = ConcurrencyKey(selector="tag:heavy", limit=1)
    assert held(manifest, snapshots, heavy)["snapshot.p.snap_b"] == [
        "resource_type:snapshot",
        "tag:heavy",
    ]
    assert held(manifest, heavy, snapshots)["snapshot.p.snap_b"] == [
        "tag:heavy",
        "resource_type:snapshot",
    ]


def test_only_the_given_nodes_are_mapped(manifest: Manifest) -> None:
    key = ConcurrencyKey(selector="tag:heavy", limit=1)
    assert held(manifest, key, nodes=["snapshot.p.snap_b", "seed.p.raw"]) == {
        "snapshot.p.snap_b": ["tag:heavy"]
    }


@pytest.mark.parametrize(
    ("selector", "name"),
    [
        ("tag:heavy", "dbt-tag-heavy"),
        ("resource_type:snapshot", "dbt-resource_type-snapshot"),
        ("config.meta.pool:large", "dbt-config.meta.pool-large"),
        ("tag:dai*", "dbt-tag-dai-"),
    ],
)
def test_the_default_name_is_derived_from_the_selector(selector: str, name: str) -> None:
    assert ConcurrencyKey(selector=selector, limit=3).name == name


def test_an_explicit_name_is_kept() -> None:
    key = ConcurrencyKey(selector="tag:heavy", limit=1, name="warehouse heavy lane")
    assert key.name == "warehouse heavy lane"


def test_keys_are_hashable_and_pickle() -> None:
    key = ConcurrencyKey(selector="tag:heavy", limit=1)
    assert pickle.loads(pickle.dumps(key)) == key
    assert len({key, ConcurrencyKey(selector="tag:heavy", limit=1)}) == 1


@pytest.mark.parametrize(
    ("selector", "hint"),
    [
        ("tags:heavy", "Did you mean tag:heavy?"),
        ("materialized:table", "Did you mean config.materialized:table?"),
        ("meta.pool:large", "Did you mean config.meta.pool:large?"),
        ("type:snapshot", "Did you mean resource_type:snapshot?"),
        ("+tag:heavy", "without spaces, commas or graph operators"),
        ("tag:heavy+", "without spaces, commas or graph operators"),
        ("tag:a tag:b", "without spaces"),
        ("tag:a,resource_type:model", "without spaces, commas"),
        ("path:models/staging", "tag:<value>, resource_type:<value>"),
        ("config.meta:x", "config.meta.<key>:<value>"),
        ("heavy", "is not supported"),
        ("tag:", "is not supported"),
    ],
)
def test_unsupported_selectors_say_what_to_write(selector: str, hint: str) -> None:
    with pytest.raises(ConcurrencyKeyError, match="is not supported") as caught:
        ConcurrencyKey(selector=selector, limit=1)
    assert hint in str(caught.value)
    assert caught.value.selector == selector


@pytest.mark.parametrize("limit", [0, -2, True, 1.5, "2", None])
def test_a_limit_must_be_a_positive_int(limit: object) -> None:
    with pytest.raises(ConcurrencyKeyError, match="give a positive int"):
        ConcurrencyKey(selector="tag:heavy", limit=limit)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["a/b", "50%", "x&y", "<lane>", "   "])
def test_a_name_prefect_rejects_is_refused(name: str) -> None:
    with pytest.raises(ConcurrencyKeyError, match="pick another name"):
        ConcurrencyKey(selector="tag:heavy", limit=1, name=name)


def test_two_keys_may_not_share_a_name(manifest: Manifest) -> None:
    keys = [
        ConcurrencyKey(selector="tag:heavy", limit=1, name="lane"),
        ConcurrencyKey(selector="resource_type:snapshot", limit=2, name="lane"),
    ]
    with pytest.raises(ConcurrencyKeyError, match="Two concurrency keys have the name 'lane'"):
        keys_by_node(manifest, keys)


def test_two_keys_may_not_share_a_selector(manifest: Manifest) -> None:
    keys = [
        ConcurrencyKey(selector="tag:heavy", limit=1),
        ConcurrencyKey(selector="tag:heavy", limit=2, name="other"),
    ]
    with pytest.raises(ConcurrencyKeyError, match="selector 'tag:heavy'"):
        keys_by_node(manifest, keys)


def test_an_invalid_value_is_reported_with_the_key(manifest: Manifest) -> None:
    with pytest.raises(ConcurrencyKeyError, match="'resource_type:widget' is invalid") as caught:
        keys_by_node(manifest, [ConcurrencyKey(selector="resource_type:widget", limit=1)])
    assert caught.value.selector == "resource_type:widget"
