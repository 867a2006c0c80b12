"""Data-aware keys: new data in a source misses exactly its descendants, a source without a
fingerprint always misses, incremental models are served when nothing changed, build_after
defers, and predict() says what the run does."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta

import pytest
from dbt_cachekeys import (
    CachePolicy,
    CacheSession,
    Components,
    DataInput,
    Decision,
    KeyRecord,
    KeySet,
    MemoryKeyStore,
    PolicyError,
    compute_keys,
    explain,
    predict,
)
from dbt_graph import FingerprintMethod, Manifest, SourceFingerprint
from dbt_graph.testing import FakeExecutor, ManifestBuilder

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
DATA_AWARE = CachePolicy(data_aware=True)
ORDERS, PAYMENTS = "source.p.app.orders", "source.p.app.payments"


def shop(*, mart_config: Mapping[str, object] | None = None) -> Manifest:
    return (
        ManifestBuilder()
        .source("app", "orders")
        .source("app", "payments")
        .seed("countries")
        .model("stg_orders", depends_on=["app.orders"])
        .model("stg_payments", depends_on=["app.payments"], materialized="ephemeral")
        .model("events", depends_on=["stg_orders"], materialized="incremental")
        .model("payments", depends_on=["stg_payments"], materialized="table")
        .model(
            "mart",
            depends_on=["events", "payments"],
            materialized="table",
            config=dict(mart_config or {}),
        )
        .model("geo", depends_on=["countries"], materialized="table")
        .build()
    )


def fingerprints(
    values: Mapping[str, str | None], at: datetime = T0
) -> dict[str, SourceFingerprint]:
    return {
        uid: SourceFingerprint(
            unique_id=uid,
            value=value,
            method=FingerprintMethod.CONTENT,
            observed_at=at,
            detail=f"{value} rows" if value is not None else "relation does not exist",
        )
        for uid, value in values.items()
    }


def keys(m: Manifest, values: Mapping[str, str | None], **kw: object) -> KeySet:
    return compute_keys(m, read_file=lambda n: b"code\n", fingerprints=fingerprints(values), **kw)  # type: ignore[arg-type]


def runnable(m: Manifest) -> list[str]:
    return [uid for uid, n in m.nodes.items() if n.is_executable]


def run(
    ks: KeySet,
    store: MemoryKeyStore,
    selected: Iterable[str],
    now: datetime,
    policy: CachePolicy = DATA_AWARE,
) -> dict[str, Decision]:
    """One eager run in topological order: every miss executes successfully."""
    session = CacheSession(ks, store, selected=selected, policy=policy)
    out = {}
    chosen = set(selected)
    for uid in ks:
        if uid not in chosen:
            continue
        decision = session.check(uid, now=now)
        if not decision.hit:
            session.record_success(uid, finished_at=now, execution_time=2.5)
        out[uid] = decision
    return out


def statuses(decisions: Mapping[str, Decision]) -> dict[str, str]:
    return {uid.split(".")[-1]: d.status.value for uid, d in decisions.items()}


def test_new_data_in_a_source_changes_the_keys_of_exactly_its_descendants() -> None:
    m = shop()
    before = keys(m, {ORDERS: "7", PAYMENTS: "8"})
    after = keys(m, {ORDERS: "9", PAYMENTS: "8"})
    changed = {uid.split(".")[-1] for uid in before if before[uid].key != after[uid].key}
    assert changed == {"stg_orders", "events", "mart"}


def test_code_only_keys_do_not_move_when_fingerprints_are_given_to_nodes_without_sources() -> None:
    m = shop()
    plain = compute_keys(m, read_file=lambda n: b"code\n")
    aware = keys(m, {ORDERS: "7", PAYMENTS: "8"})
    assert aware["model.p.geo"].key == plain["model.p.geo"].key
    assert aware["model.p.stg_orders"].key != plain["model.p.stg_orders"].key
    assert (plain.data_aware, aware.data_aware) == (False, True)


def test_the_miss_names_the_source_and_when_its_data_was_last_seen() -> None:
    m = shop()
    old = keys(m, {ORDERS: "7", PAYMENTS: "8"})["model.p.mart"]
    new = keys(m, {ORDERS: "9", PAYMENTS: "8"})["model.p.mart"]
    record = KeyRecord(
        unique_id=old.unique_id,
        key=old.key,
        token="t",
        finished_at=T0,
        components=old.components,
    )
    assert explain(new, record) == (
        "source `app.orders` has new data since 2026-03-01 08:00:00 UTC (7 rows -> 9 rows)",
    )


@pytest.mark.parametrize("fingerprint", ["unusable", "not fetched"])
def test_a_source_without_a_fingerprint_misses_every_time(fingerprint: str) -> None:
    m = shop()
    values: dict[str, str | None] = {PAYMENTS: "8"}
    if fingerprint == "unusable":
        values[ORDERS] = None
    store = MemoryKeyStore()
    run(keys(m, values), store, runnable(m), T0)
    second = run(keys(m, values), store, runnable(m), T0 + timedelta(minutes=1))
    assert statuses(second) == {
        "countries": "hit",
        "stg_orders": "miss",
        "events": "miss",
        "payments": "hit",
        "mart": "miss",
        "geo": "hit",
    }
    why = second["model.p.stg_orders"].reasons
    assert len(why) == 1 and why[0].startswith("source `app.orders` has no data fingerprint (")


def test_nothing_changed_serves_everything_incremental_models_included() -> None:
    m = shop()
    store = MemoryKeyStore()
    first = run(keys(m, {ORDERS: "7", PAYMENTS: "8"}), store, runnable(m), T0)
    assert {d.status.value for d in first.values()} == {"miss"}
    again = run(keys(m, {ORDERS: "7", PAYMENTS: "8"}), store, runnable(m), T0 + timedelta(days=1))
    assert {d.status.value for d in again.values()} == {"hit"}
    assert again["model.p.events"].record is not None
    assert again["model.p.events"].record.execution_time == 2.5


def test_without_data_awareness_incremental_models_stay_excluded() -> None:
    m = shop()
    store = MemoryKeyStore()
    plain = compute_keys(m, read_file=lambda n: b"code\n")
    run(plain, store, runnable(m), T0, policy=CachePolicy())
    again = run(plain, store, runnable(m), T0, policy=CachePolicy())
    assert statuses(again)["events"] == "excluded"
    assert statuses(again)["mart"] == "miss"  # its incremental parent ran again


def test_a_data_aware_policy_refuses_code_only_keys() -> None:
    plain = compute_keys(shop())
    with pytest.raises(PolicyError, match="fingerprints"):
        CacheSession(plain, MemoryKeyStore(), selected=plain, policy=DATA_AWARE)


def test_a_rerun_after_new_data_rebuilds_its_descendants_and_serves_the_rest() -> None:
    m = shop()
    store = MemoryKeyStore()
    run(keys(m, {ORDERS: "7", PAYMENTS: "8"}), store, runnable(m), T0)
    later = keys(m, {ORDERS: "7", PAYMENTS: "12"})
    plan = predict(later, store, selected=runnable(m), now=T0, policy=DATA_AWARE)
    done = run(later, store, runnable(m), T0)
    assert (
        statuses(plan)
        == statuses(done)
        == {
            "countries": "hit",
            "stg_orders": "hit",
            "events": "hit",
            "payments": "miss",
            "mart": "miss",
            "geo": "hit",
        }
    )
    assert done["model.p.payments"].reasons == (
        "source `app.payments` has new data since 2026-03-01 08:00:00 UTC (8 rows -> 12 rows)",
    )


def test_full_refresh_bypasses_data_awareness() -> None:
    m = shop()
    store = MemoryKeyStore()
    run(keys(m, {ORDERS: "7", PAYMENTS: "8"}), store, runnable(m), T0)
    refresh = keys(m, {ORDERS: "7", PAYMENTS: "8"}, full_refresh=True)
    assert {d.status.value for d in run(refresh, store, runnable(m), T0).values()} == {"miss"}


def test_fake_executor_fingerprints_drive_keys() -> None:
    m = shop()
    fake = FakeExecutor(m, fingerprints={ORDERS: "7"})
    found = fake.source_fingerprints([ORDERS, PAYMENTS])
    assert (found[ORDERS].value, found[PAYMENTS].value) == ("7", None)
    assert fake.fingerprint_calls == [(ORDERS, PAYMENTS)]
    with pytest.raises(KeyError, match="not a source"):
        fake.source_fingerprints(["model.p.mart"])


def test_records_keep_data_inputs_and_execution_time_and_read_old_records() -> None:
    node_key = keys(shop(), {ORDERS: "7", PAYMENTS: "8"})["model.p.mart"]
    record = KeyRecord(
        unique_id=node_key.unique_id,
        key=node_key.key,
        token="t",
        finished_at=T0,
        components=node_key.components,
        execution_time=1.25,
    )
    assert KeyRecord.from_json(record.to_json()) == record
    assert record.components.data[0] == DataInput(
        source=ORDERS, digest=record.components.data[0].digest, observed_at=T0, detail="7 rows"
    )
    old = Components(text="t", config="c", relation="r")
    legacy = KeyRecord(unique_id="model.p.m", key="k", token="x", finished_at=T0, components=old)
    raw = legacy.to_json().replace(b',"data":{}', b"").replace(b',"execution_time":null', b"")
    assert b"execution_time" not in raw and b'"data"' not in raw
    assert KeyRecord.from_json(raw) == legacy


# -- build_after -------------------------------------------------------------------------------

BUILD_AFTER_4H = {"freshness": {"build_after": {"count": 4, "period": "hour"}}}
BUILD_AFTER_ALL = {"freshness": {"build_after": {"updates_on": "all"}}}


def mart_after(config: Mapping[str, object], values: Mapping[str, str | None], now: datetime):
    m = shop(mart_config=config)
    store = MemoryKeyStore()
    run(keys(m, {ORDERS: "7", PAYMENTS: "8"}), store, runnable(m), T0)
    later = keys(m, values)
    plan = predict(later, store, selected=runnable(m), now=now, policy=DATA_AWARE)
    done = run(later, store, runnable(m), now)
    assert statuses(plan) == statuses(done)
    return done["model.p.mart"]


def test_build_after_serves_the_model_until_its_period_has_passed() -> None:
    soon = mart_after(BUILD_AFTER_4H, {ORDERS: "9", PAYMENTS: "8"}, T0 + timedelta(hours=1))
    assert soon.hit and soon.deferred
    assert soon.reasons[-1] == (
        "build_after 4 hours: built 2026-03-01 08:00:00 UTC, next build due 2026-03-01 12:00:00 UTC"
    )
    assert soon.reasons[0].startswith("source `app.orders` has new data")
    late = mart_after(BUILD_AFTER_4H, {ORDERS: "9", PAYMENTS: "8"}, T0 + timedelta(hours=4))
    assert not late.hit


def test_build_after_updates_on_all_waits_for_every_input() -> None:
    one = mart_after(BUILD_AFTER_ALL, {ORDERS: "9", PAYMENTS: "8"}, T0)
    assert one.deferred and one.reasons[-1] == (
        "build_after updates_on all: waiting for new data in `payments`"
    )
    both = mart_after(BUILD_AFTER_ALL, {ORDERS: "9", PAYMENTS: "9"}, T0)
    assert both.status.value == "miss"


@pytest.mark.parametrize(
    "config",
    [
        {},
        {"freshness": None},
        {"freshness": {"build_after": {"count": 4, "period": "fortnight"}}},
        {"freshness": {"build_after": "daily"}},
    ],
    ids=["absent", "null", "unknown period", "not a mapping"],
)
def test_absent_or_unknown_build_after_changes_nothing(config: Mapping[str, object]) -> None:
    decision = mart_after(config, {ORDERS: "9", PAYMENTS: "8"}, T0 + timedelta(minutes=1))
    assert decision.status.value == "miss"


def test_build_after_never_defers_a_code_change() -> None:
    m = shop(mart_config=BUILD_AFTER_4H)
    store = MemoryKeyStore()
    run(keys(m, {ORDERS: "7", PAYMENTS: "8"}), store, runnable(m), T0)
    edited = ManifestBuilder().source("app", "orders").source("app", "payments")
    edited = (
        edited.seed("countries")
        .model("stg_orders", depends_on=["app.orders"])
        .model("stg_payments", depends_on=["app.payments"], materialized="ephemeral")
        .model("events", depends_on=["stg_orders"], materialized="incremental")
        .model("payments", depends_on=["stg_payments"], materialized="table")
        .model(
            "mart",
            depends_on=["events", "payments"],
            materialized="table",
            config=dict(BUILD_AFTER_4H),
            code="select 2 as id",
        )
        .model("geo", depends_on=["countries"], materialized="table")
        .build()
    )
    done = run(keys(edited, {ORDERS: "9", PAYMENTS: "8"}), store, runnable(edited), T0)
    assert done["model.p.mart"].status.value == "miss"
    assert "SQL changed" in done["model.p.mart"].reasons


def test_a_deferred_table_keeps_its_children_from_seeing_new_data() -> None:
    # events (incremental, build_after 4h) is served; report reads only events, so with
    # build_after any/0 it has no direct input with new data and is served as well.
    m = (
        ManifestBuilder()
        .source("app", "orders")
        .model("stg", depends_on=["app.orders"])
        .model("events", depends_on=["stg"], materialized="incremental", config=BUILD_AFTER_4H)
        .model("report", depends_on=["events"], materialized="table", config=BUILD_AFTER_ALL)
        .model("plain", depends_on=["events"], materialized="table")
        .build()
    )
    store = MemoryKeyStore()
    run(keys(m, {ORDERS: "7"}), store, runnable(m), T0)
    done = run(keys(m, {ORDERS: "9"}), store, runnable(m), T0 + timedelta(hours=1))
    assert statuses(done) == {"stg": "miss", "events": "hit", "report": "hit", "plain": "miss"}
    assert done["model.p.report"].reasons[-1] == (
        "build_after updates_on all: no direct input has new data"
    )
