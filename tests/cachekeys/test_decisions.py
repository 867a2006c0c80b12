"""lookup(), explain() and CachePolicy: one node against its stored record."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from dbt_cachekeys import (
    SCHEMA_VERSION,
    CachePolicy,
    CacheStatus,
    Decision,
    KeyRecord,
    KeySet,
    NodeKey,
    compute_keys,
    explain,
    lookup,
)
from dbt_graph import ResourceType
from dbt_graph.testing import ManifestBuilder

FINISHED = datetime(2025, 6, 1, 12, tzinfo=UTC)


def shop_like(**kw: object) -> KeySet:
    m = (
        ManifestBuilder()
        .seed("raw")
        .model("stg", depends_on=["raw"])
        .model("events", depends_on=["stg"], materialized="incremental")
        .model("eph", depends_on=["stg"], materialized="ephemeral")
        .model("mart", depends_on=["eph", "events"], materialized="table")
        .snapshot("snap", depends_on=["stg"])
        .test("not_null_mart_id", depends_on=["mart"])
        .build()
    )
    return compute_keys(m, read_file=lambda node: b"id\n1\n", **kw)  # type: ignore[arg-type]


def record(node_key: NodeKey, **kw: object) -> KeyRecord:
    inputs = tuple((p, f"token-{p}") for p in node_key.data_parents)
    fields = {
        "unique_id": node_key.unique_id,
        "key": node_key.key,
        "token": "mine",
        "finished_at": FINISHED,
        "components": node_key.components,
        "inputs": inputs,
        **kw,
    }
    return KeyRecord(**fields)  # type: ignore[arg-type]


def tokens(node_key: NodeKey, **override: str | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {p: f"token-{p}" for p in node_key.data_parents}
    out.update(override)
    return out


def decide(
    node_key: NodeKey,
    rec: KeyRecord | None,
    *,
    now: datetime = FINISHED,
    policy: CachePolicy | None = None,
    upstream_tokens: dict[str, str | None] | None = None,
) -> Decision:
    ups = tokens(node_key) if upstream_tokens is None else upstream_tokens
    return lookup(node_key, rec, now=now, policy=policy or CachePolicy(), upstream_tokens=ups)


def test_same_key_fresh_record_is_a_hit() -> None:
    mart = shop_like()["model.p.mart"]
    d = decide(mart, record(mart))
    assert d.status is CacheStatus.HIT and d.hit and d.reasons == ()
    assert d.record is not None and d.record.token == "mine"


def test_no_record_is_never_ran() -> None:
    assert decide(shop_like()["model.p.stg"], None).reasons == ("never ran",)


def test_other_key_is_explained() -> None:
    dev, prod = shop_like(target="dev"), shop_like(target="prod", vars={"x": 1})
    d = decide(prod["model.p.stg"], record(dev["model.p.stg"]))
    assert d.status is CacheStatus.MISS
    assert d.reasons == ("target changed", "vars changed")


@pytest.mark.parametrize(
    ("after", "expired"),
    [
        (timedelta(hours=24) - timedelta(microseconds=1), False),
        (timedelta(hours=24), True),
        (timedelta(days=3), True),
    ],
)
def test_global_expiration_boundary(after: timedelta, expired: bool) -> None:
    stg = shop_like()["model.p.stg"]
    policy = CachePolicy(expiration=timedelta(hours=24))
    d = decide(stg, record(stg), now=FINISHED + after, policy=policy)
    assert d.reasons == (("expired",) if expired else ())


def test_no_expiration_keeps_records_forever() -> None:
    stg = shop_like()["model.p.stg"]
    assert decide(stg, record(stg), now=FINISHED + timedelta(days=3650)).hit


def test_freshness_deadline_overrides_global_expiration_only_when_enabled() -> None:
    stg = shop_like()["model.p.stg"]
    rec = record(stg, expires_at=FINISHED + timedelta(hours=1))
    later = FINISHED + timedelta(hours=2)
    both = CachePolicy(expiration=timedelta(days=1), use_source_freshness_expiration=True)
    assert decide(stg, rec, now=later, policy=both).reasons == ("expired",)
    assert decide(stg, rec, now=later, policy=CachePolicy(expiration=timedelta(days=1))).hit
    longer = record(stg, expires_at=FINISHED + timedelta(days=5))
    assert decide(stg, longer, now=FINISHED + timedelta(days=2), policy=both).hit


def test_full_refresh_always_misses() -> None:
    keys = shop_like(full_refresh=True)
    stg = keys["model.p.stg"]
    assert decide(stg, record(stg)).reasons == ("full refresh",)
    assert decide(stg, None).reasons == ("full refresh", "never ran")
    normal = shop_like()["model.p.stg"]
    assert decide(stg, record(normal)).reasons == ("full refresh",)
    assert decide(normal, record(stg)).reasons == ("last run was a full refresh",)


def test_upstream_that_ran_since_is_a_miss() -> None:
    mart = shop_like()["model.p.mart"]
    assert mart.data_parents == ("model.p.events", "model.p.stg")
    d = decide(mart, record(mart), upstream_tokens=tokens(mart, **{"model.p.stg": "new"}))
    assert d.reasons == ("upstream `stg` ran since",)
    gone = decide(mart, record(mart), upstream_tokens=tokens(mart, **{"model.p.events": None}))
    assert gone.reasons == ("upstream `events` ran since",)


def test_missing_upstream_token_is_a_caller_error() -> None:
    mart = shop_like()["model.p.mart"]
    with pytest.raises(KeyError):
        decide(mart, record(mart), upstream_tokens={})


@pytest.mark.parametrize(
    ("uid", "reason"),
    [
        ("model.p.events", "materialization `incremental` is excluded"),
        ("snapshot.p.snap", "resource type `snapshot` is excluded"),
        ("test.p.not_null_mart_id", "resource type `test` is excluded"),
        ("model.p.eph", "ephemeral models are compiled into their children"),
    ],
)
def test_default_exclusions(uid: str, reason: str) -> None:
    node_key = shop_like()[uid]
    d = decide(node_key, record(node_key))
    assert (d.status, d.reasons) == (CacheStatus.EXCLUDED, (reason,))


def test_exclusions_can_be_lifted() -> None:
    events = shop_like()["model.p.events"]
    policy = CachePolicy(exclude_materializations=frozenset(), exclude_resource_types=frozenset())
    assert decide(events, record(events), policy=policy).hit
    only_seeds = CachePolicy(exclude_resource_types=frozenset({ResourceType.SEED}))
    assert decide(shop_like()["seed.p.raw"], None, policy=only_seeds).status is CacheStatus.EXCLUDED


def test_node_with_a_problem_never_hits() -> None:
    m = ManifestBuilder().seed("raw").build()
    raw = compute_keys(m, read_file=lambda node: (_ for _ in ()).throw(OSError("gone")))[
        "seed.p.raw"
    ]
    d = decide(raw, record(raw))
    assert d.status is CacheStatus.MISS and "seeds/raw.csv" in d.reasons[0]


def test_record_of_another_schema_version_explains_the_format_change() -> None:
    stg = shop_like()["model.p.stg"]
    old = record(stg, key="older", schema_version=SCHEMA_VERSION - 1)
    assert explain(stg, old) == (
        f"cache format changed (v{SCHEMA_VERSION - 1} -> v{SCHEMA_VERSION})",
    )


def test_explain_names_added_and_removed_upstreams_and_macros() -> None:
    stg = shop_like()["model.p.stg"]
    components = dataclasses.replace(
        stg.components,
        upstream=(("model.p.old_parent", "x"),),
        macros=(("macro.p.helper", "y"),),
    )
    rec = record(stg, key="other", components=components)
    assert explain(stg, rec) == (
        "macro `helper` removed",
        "upstream `old_parent` removed",
        "upstream `raw` added",
    )


def test_equal_keys_explain_nothing() -> None:
    stg = shop_like()["model.p.stg"]
    assert explain(stg, record(stg)) == ()
