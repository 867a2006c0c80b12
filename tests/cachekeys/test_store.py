"""Key stores and records: atomic writes, concurrent processes, crashes, corrupt files."""

from __future__ import annotations

import logging
import multiprocessing
import pickle
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cachekeys.store_workers import IDS, hammer, write_forever
from dbt_cachekeys import (
    Components,
    KeyRecord,
    KeyStore,
    LocalKeyStore,
    MemoryKeyStore,
    RecordError,
    load_record,
    save_record,
)

RECORD = KeyRecord(
    unique_id="model.shop.orders",
    key="k" * 64,
    token="abc",
    finished_at=datetime(2025, 1, 1, 12, tzinfo=UTC),
    expires_at=datetime(2025, 1, 1, 18, tzinfo=UTC),
    inputs=(("model.shop.stg_orders", "t1"), ("seed.shop.raw", None)),
    components=Components(
        text="t",
        config="c",
        relation="r",
        macros=(("macro.shop.m", "d"),),
        upstream=(("model.shop.stg_orders", "u"),),
        target="g",
        vars="v",
        cli_args="a",
        full_refresh=True,
    ),
)


@pytest.mark.parametrize("store", [LocalKeyStore, MemoryKeyStore], ids=["local", "memory"])
def test_store_round_trip(store: type, tmp_path: Path) -> None:
    s: KeyStore = store(tmp_path) if store is LocalKeyStore else store()
    assert isinstance(s, KeyStore)
    assert s.get("model.shop.orders") is None
    s.put("model.shop.orders", b"one")
    s.put("model.shop.orders", b"two")
    assert s.get("model.shop.orders") == b"two"
    s.delete("model.shop.orders")
    s.delete("model.shop.orders")
    assert s.get("model.shop.orders") is None


def test_record_json_round_trip() -> None:
    assert KeyRecord.from_json(RECORD.to_json(), unique_id=RECORD.unique_id) == RECORD


def test_local_store_names_files_safely(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path / "new" / "dir")
    assert store.path_for("model.shop.orders").name == "model.shop.orders.json"
    upper, lower = store.path_for("model.shop.Orders"), store.path_for("model.shop.orders")
    assert upper.name.lower() != lower.name.lower()
    weird = store.path_for("test.shop.x/../../etc" + "y" * 300)
    assert weird.parent == store.directory and len(weird.name) < 150
    store.put("model.shop.Orders", b"x")
    assert store.get("model.shop.Orders") == b"x"
    assert store.get("model.shop.orders") is None


def test_local_store_pickles(tmp_path: Path) -> None:
    store = pickle.loads(pickle.dumps(LocalKeyStore(tmp_path)))
    store.put("seed.p.s", b"x")
    assert LocalKeyStore(tmp_path).get("seed.p.s") == b"x"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\x00\xff garbage", "not JSON"),
        (b'{"format": "dbt-cachekeys/rec', "not JSON"),
        (b"[1, 2]", "not a dbt-cachekeys record"),
        (b'{"key": "abc"}', "not a dbt-cachekeys record"),
        (RECORD.to_json().replace(b'"model.shop.orders"', b'"model.shop.other"'), "holds"),
        (RECORD.to_json().replace(b'"token":"abc"', b'"token":7'), "malformed"),
        (RECORD.to_json().replace(b"+00:00", b""), "malformed"),
        (RECORD.to_json().replace(b'"inputs":{', b'"inputs":{"x":1,'), "malformed"),
    ],
)
def test_corrupt_or_foreign_records_are_logged_and_ignored(
    data: bytes, says: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = LocalKeyStore(tmp_path)
    store.path_for(RECORD.unique_id).write_bytes(data)
    with pytest.raises(RecordError, match=says):
        KeyRecord.from_json(data, unique_id=RECORD.unique_id)
    with caplog.at_level(logging.WARNING, logger="dbt_cachekeys"):
        assert load_record(store, RECORD.unique_id) is None
    assert "model.shop.orders" in caplog.text and says in caplog.text


def test_unreadable_store_is_logged_and_treated_as_empty(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Unreachable(MemoryKeyStore):
        def get(self, unique_id: str) -> bytes | None:
            raise ConnectionError("bucket unreachable")

    with caplog.at_level(logging.WARNING, logger="dbt_cachekeys"):
        assert load_record(Unreachable(), "model.shop.orders") is None
        assert save_record(MemoryKeyStore(), RECORD)
    assert "bucket unreachable" in caplog.text


def test_leftover_temp_files_are_ignored(tmp_path: Path) -> None:
    store = LocalKeyStore(tmp_path)
    save_record(store, RECORD)
    (tmp_path / ".tmp-abandoned.json").write_bytes(b'{"half": ')
    assert load_record(store, RECORD.unique_id) == RECORD


def test_concurrent_writers_and_a_killed_writer_never_corrupt_the_store(tmp_path: Path) -> None:
    store_dir, started = tmp_path / "store", tmp_path / "started"
    store = LocalKeyStore(store_dir)
    ctx = multiprocessing.get_context("spawn")
    # One process writes large records until it is killed mid-write; two more write and read
    # the same ids meanwhile. Starting them together pays the interpreter start-ups once.
    victim = ctx.Process(target=write_forever, args=(str(store_dir), str(started)))
    victim.start()
    try:
        with ctx.Pool(2) as pool:
            results = pool.starmap(hammer, [(str(store_dir), w, 80) for w in range(2)])
        deadline = time.monotonic() + 60
        while not started.exists():
            assert time.monotonic() < deadline, "the writer never wrote"
            time.sleep(0.05)
        time.sleep(0.2)
    finally:
        victim.kill()
        victim.join()
    assert sum(reads for reads, _ in results) > 0
    assert [bad for _, bad in results] == [0, 0]
    for uid in IDS:
        record = load_record(store, uid)
        assert record is not None and record.token.startswith(("w", "forever"))
    assert len(list(store_dir.glob(".tmp-*"))) <= 1  # at most the killed writer's


def test_record_times_stay_timezone_aware() -> None:
    record = KeyRecord.from_json(RECORD.to_json())
    assert record.finished_at.utcoffset() == timedelta(0)
