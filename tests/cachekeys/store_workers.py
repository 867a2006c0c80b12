"""Worker functions for the multi-process key store tests (importable by spawned children)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from dbt_cachekeys import Components, KeyRecord, LocalKeyStore, RecordError

IDS = ("model.shop.orders", "model.shop.stg_orders", "seed.shop.raw_orders")


def big_record(unique_id: str, token: str, size: int = 2000) -> KeyRecord:
    """A record of a few hundred kilobytes, so that writes take long enough to overlap."""
    macros = tuple((f"macro.pkg.m{i:05d}", f"{i:016x}") for i in range(size))
    return KeyRecord(
        unique_id=unique_id,
        key=token * 4,
        token=token,
        finished_at=datetime(2025, 1, 1, tzinfo=UTC),
        components=Components(text=token, config="c", relation="r", macros=macros),
    )


def hammer(directory: str, worker: int, rounds: int) -> tuple[int, int]:
    """Write and read the same few ids over and over; return (records read, bad reads)."""
    store = LocalKeyStore(directory)
    reads = bad = 0
    for i in range(rounds):
        uid = IDS[i % len(IDS)]
        store.put(uid, big_record(uid, f"w{worker}r{i}").to_json())
        other = IDS[(i + 1) % len(IDS)]
        data = store.get(other)
        if data is not None:
            reads += 1
            try:
                KeyRecord.from_json(data, unique_id=other)
            except RecordError:
                bad += 1
    return reads, bad


def write_forever(directory: str, started: str) -> None:
    """Write one id in a loop until killed; create the file ``started`` after the first write."""
    store = LocalKeyStore(directory)
    i = 0
    while True:
        store.put(IDS[0], big_record(IDS[0], f"forever{i}", size=20000).to_json())
        if i == 0:
            Path(started).touch()
        i += 1
