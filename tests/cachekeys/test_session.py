"""CacheSession and predict(): run tokens, the excluded-node rule, and plan/run agreement."""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Collection, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import UTC, datetime, timedelta

import pytest
from dbt_cachekeys import (
    CachePolicy,
    CacheSession,
    CacheStatus,
    Decision,
    KeySet,
    MemoryKeyStore,
    UnresolvedUpstreamError,
    compute_keys,
    load_record,
    predict,
)
from dbt_graph import Manifest
from dbt_graph.testing import ManifestBuilder

T0 = datetime(2025, 6, 1, 6, tzinfo=UTC)
DAY = CachePolicy(expiration=timedelta(hours=24))


def project(stg_sql: str = "select 1 as id") -> Manifest:
    return (
        ManifestBuilder()
        .seed("raw")
        .model("stg", depends_on=["raw"], code=stg_sql)
        .model("events", depends_on=["stg"], materialized="incremental")
        .model("eph", depends_on=["stg"], materialized="ephemeral")
        .model("mart", depends_on=["eph"], materialized="table")
        .model("report", depends_on=["events"], materialized="table")
        .snapshot("snap", depends_on=["stg"])
        .model("from_snap", depends_on=["snap"])
        .test("not_null_mart_id", depends_on=["mart"])
        .build()
    )


def keys_of(manifest: Manifest, **kw: object) -> KeySet:
    return compute_keys(manifest, read_file=lambda node: b"id\n1\n", **kw)  # type: ignore[arg-type]


RUNNABLE = (
    "seed.p.raw",
    "model.p.stg",
    "model.p.events",
    "model.p.mart",
    "model.p.report",
    "snapshot.p.snap",
    "model.p.from_snap",
    "test.p.not_null_mart_id",
)


def run(
    keys: KeySet,
    store: MemoryKeyStore,
    *,
    now: datetime,
    selected: Collection[str] = RUNNABLE,
    policy: CachePolicy = DAY,
    fail: Iterable[str] = (),
) -> dict[str, Decision]:
    """What an orchestrator does: check each node when its parents are done, run misses."""
    session = CacheSession(keys, store, selected=selected, policy=policy)
    failing, failed = set(fail), set()
    out = {}
    for uid in keys:
        if uid not in selected:
            continue
        if failed & set(keys[uid].data_parents):
            failed.add(uid)  # skipped, like its failed parent's other descendants
            continue
        decision = session.check(uid, now=now)
        out[uid] = decision
        if decision.hit:
            continue
        if uid in failing:
            session.record_failure(uid)
            failed.add(uid)
        else:
            session.record_success(uid, finished_at=now)
    return out


def statuses(decisions: dict[str, Decision]) -> dict[str, str]:
    return {uid: d.status.value for uid, d in decisions.items()}


def test_second_run_hits_everything_not_downstream_of_an_excluded_node() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    first = run(keys, store, now=T0)
    assert {d.status for d in first.values()} == {CacheStatus.MISS, CacheStatus.EXCLUDED}
    second = run(keys, store, now=T0 + timedelta(hours=1))
    assert statuses(second) == {
        "seed.p.raw": "hit",
        "model.p.stg": "hit",
        "model.p.events": "excluded",
        "model.p.mart": "hit",
        "model.p.report": "miss",
        "snapshot.p.snap": "excluded",
        "model.p.from_snap": "miss",
        "test.p.not_null_mart_id": "excluded",
    }
    assert second["model.p.report"].reasons == ("upstream `events` ran since",)
    assert second["model.p.from_snap"].reasons == ("upstream `snap` ran since",)


class CountingStore(MemoryKeyStore):
    def __init__(self) -> None:
        super().__init__()
        self.reads: list[str] = []

    def get(self, unique_id: str) -> bytes | None:
        self.reads.append(unique_id)
        return super().get(unique_id)


def test_an_excluded_nodes_own_record_is_never_read() -> None:
    keys, store = keys_of(project()), CountingStore()
    run(keys, store, now=T0)
    assert {"model.p.events", "test.p.not_null_mart_id"} <= store.data.keys()  # recorded
    store.reads.clear()
    later = T0 + timedelta(hours=1)
    predicted = predict(keys, store, selected=RUNNABLE, now=later, policy=DAY)
    excluded = {uid for uid, d in predicted.items() if d.status is CacheStatus.EXCLUDED}
    assert excluded == {"model.p.events", "snapshot.p.snap", "test.p.not_null_mart_id"}
    assert not excluded & set(store.reads)
    assert {"model.p.stg", "model.p.mart"} <= set(store.reads)
    # Their children still see the tokens they will make: the prediction is the run's.
    assert statuses(predicted) == statuses(run(keys, store, now=later))


def test_excluded_parent_that_did_not_run_lets_children_hit() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    run(keys, store, now=T0)
    only_report = run(keys, store, now=T0 + timedelta(hours=1), selected=["model.p.report"])
    assert statuses(only_report) == {"model.p.report": "hit"}


def test_parent_rerun_by_another_run_invalidates_children() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    run(keys, store, now=T0)
    elsewhere = CacheSession(keys, store, selected=["model.p.stg"], policy=DAY)
    elsewhere.record_success("model.p.stg", finished_at=T0 + timedelta(hours=1))
    later = run(keys, store, now=T0 + timedelta(hours=2), selected=["model.p.mart"])
    assert later["model.p.mart"].reasons == ("upstream `stg` ran since",)


def test_parent_that_expired_and_reran_invalidates_a_younger_child() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    run(keys, store, now=T0)
    store.delete("model.p.mart")
    assert run(keys, store, now=T0 + timedelta(hours=20))["model.p.mart"].reasons == ("never ran",)
    later = run(keys, store, now=T0 + timedelta(hours=25))
    assert later["model.p.stg"].reasons == ("expired", "upstream `raw` ran since")
    # mart ran 5 hours ago, well within its day, but stg has new data now.
    assert later["model.p.mart"].reasons == ("upstream `stg` ran since",)


def test_sql_change_misses_node_and_descendants_with_reasons() -> None:
    store = MemoryKeyStore()
    run(keys_of(project()), store, now=T0)
    later = run(keys_of(project("select 2 as id")), store, now=T0 + timedelta(hours=1))
    assert later["seed.p.raw"].hit
    assert later["model.p.stg"].reasons == ("SQL changed",)
    assert later["model.p.mart"].reasons == ("upstream `eph` changed",)
    assert later["model.p.from_snap"].reasons == ("upstream `snap` changed",)


def test_failure_deletes_the_record_and_children_rerun_next_time() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    run(keys, store, now=T0)
    second = run(keys, store, now=T0 + timedelta(hours=25), fail=["model.p.stg"])
    assert "model.p.mart" not in second  # skipped: its parent failed
    assert store.get("model.p.stg") is None
    third = run(keys, store, now=T0 + timedelta(hours=26))
    assert third["model.p.stg"].reasons == ("never ran",)
    assert third["model.p.mart"].status is CacheStatus.MISS


@pytest.mark.parametrize(
    "prepare",
    ["empty", "after_run", "after_sql_change", "after_expiry", "after_partial_run"],
)
def test_predict_agrees_with_what_the_run_does(prepare: str) -> None:
    store = MemoryKeyStore()
    keys = keys_of(project())
    now = T0 + timedelta(hours=1)
    if prepare != "empty":
        run(keys, store, now=T0)
    if prepare == "after_sql_change":
        keys = keys_of(project("select 2 as id"))
    if prepare == "after_expiry":
        now = T0 + timedelta(days=2)
    if prepare == "after_partial_run":
        store.delete("model.p.stg")
    planned = predict(keys, store, selected=RUNNABLE, now=now, policy=DAY)
    actual = run(keys, store, now=now)
    assert statuses(planned) == statuses(actual)
    for uid, decision in planned.items():
        expected = tuple(r.replace("will run", "ran since") for r in decision.reasons)
        assert expected == actual[uid].reasons, uid


def test_predict_writes_nothing() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    predict(keys, store, selected=RUNNABLE, now=T0, policy=DAY)
    assert store.data == {}


def test_predict_names_upstreams_that_will_run() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    run(keys, store, now=T0)
    planned = predict(keys, store, selected=RUNNABLE, now=T0 + timedelta(hours=1), policy=DAY)
    assert planned["model.p.report"].reasons == ("upstream `events` will run",)


def test_checking_a_child_before_its_parent_is_resolved_raises() -> None:
    keys = keys_of(project())
    session = CacheSession(keys, MemoryKeyStore(), selected=RUNNABLE)
    session.check("seed.p.raw", now=T0)
    with pytest.raises(UnresolvedUpstreamError, match=r"seed\.p\.raw"):
        session.check("model.p.stg", now=T0)


def test_each_execution_gets_a_new_token() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    session = CacheSession(keys, store, selected=["seed.p.raw"])
    one = session.record_success("seed.p.raw", finished_at=T0)
    two = session.record_success("seed.p.raw", finished_at=T0)
    assert one.token != two.token
    stored = load_record(store, "seed.p.raw")
    assert stored is not None and stored.token == two.token


def test_records_keep_the_tokens_they_consumed() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    run(keys, store, now=T0)
    stg, mart = load_record(store, "model.p.stg"), load_record(store, "model.p.mart")
    assert stg is not None and mart is not None
    assert dict(mart.inputs) == {"model.p.stg": stg.token}


def test_session_refuses_to_pickle() -> None:
    session = CacheSession(keys_of(project()), MemoryKeyStore(), selected=[])
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(session)


class BrokenStore(MemoryKeyStore):
    def put(self, unique_id: str, data: bytes) -> None:
        raise OSError("disk full")

    def delete(self, unique_id: str) -> None:
        raise OSError("read-only")


def test_a_failing_store_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    keys, store = keys_of(project()), BrokenStore()
    with caplog.at_level(logging.WARNING, logger="dbt_cachekeys"):
        first = run(keys, store, now=T0, fail=["model.p.mart"])
    assert first["model.p.mart"].status is CacheStatus.MISS
    assert "disk full" in caplog.text and "read-only" in caplog.text
    again = run(keys, store, now=T0)
    assert again["model.p.stg"].reasons == ("never ran",)


def test_eager_scheduling_from_several_threads_matches_the_sequential_run() -> None:
    keys, store = keys_of(project()), MemoryKeyStore()
    run(keys, store, now=T0)
    changed = keys_of(project("select 2 as id"))
    expected = predict(changed, store, selected=RUNNABLE, now=T0, policy=DAY)
    session = CacheSession(changed, store, selected=RUNNABLE, policy=DAY)
    parents = {uid: set(changed[uid].data_parents) & set(RUNNABLE) for uid in RUNNABLE}
    done: set[str] = set()
    decisions: dict[str, Decision] = {}

    def work(uid: str) -> str:
        decisions[uid] = decision = session.check(uid, now=T0)
        if not decision.hit:
            time.sleep(0.01)  # "execute"
            session.record_success(uid, finished_at=T0)
        return uid

    with ThreadPoolExecutor(max_workers=4) as pool:
        submitted = {uid for uid in RUNNABLE if not parents[uid]}
        running = {pool.submit(work, uid) for uid in submitted}
        while running:
            finished, running = wait(running, return_when=FIRST_COMPLETED)
            done.update(f.result() for f in finished)
            for uid in RUNNABLE:
                if uid not in submitted and parents[uid] <= done:
                    submitted.add(uid)
                    running.add(pool.submit(work, uid))
    assert statuses(decisions) == statuses(expected)
