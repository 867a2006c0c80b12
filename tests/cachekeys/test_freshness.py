"""TTL from upstream source freshness, at the edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from dbt_cachekeys import (
    CachePolicy,
    CacheSession,
    KeySet,
    MemoryKeyStore,
    compute_keys,
    freshness_ttl,
    source_deadline,
)
from dbt_graph import FreshnessStatus, FreshnessThreshold, SourceFreshness
from dbt_graph.testing import ManifestBuilder

SEEN = datetime(2025, 6, 1, 12, tzinfo=UTC)
HOUR = timedelta(hours=1)


def hours(n: float) -> FreshnessThreshold:
    return FreshnessThreshold(count=int(n), period="hour")


def fresh(
    uid: str,
    *,
    age_h: float | None,
    warn: int | None = None,
    error: int | None = None,
    status: FreshnessStatus = FreshnessStatus.PASS,
) -> SourceFreshness:
    return SourceFreshness(
        unique_id=uid,
        status=status,
        snapshotted_at=SEEN,
        age_seconds=age_h * 3600 if age_h is not None else None,
        max_loaded_at=SEEN - timedelta(hours=age_h) if age_h is not None else None,
        warn_after=hours(warn) if warn else None,
        error_after=hours(error) if error else None,
    )


@pytest.fixture
def keys() -> KeySet:
    m = (
        ManifestBuilder()
        .source("app", "orders")
        .source("app", "payments")
        .seed("raw")
        .model("stg_orders", depends_on=["app.orders"])
        .model("eph", depends_on=["app.payments"], materialized="ephemeral")
        .model("mart", depends_on=["stg_orders", "eph"], materialized="table")
        .model("lonely", depends_on=["raw"])
        .build()
    )
    return compute_keys(m, read_file=lambda node: b"id\n")


ORDERS, PAYMENTS = "source.p.app.orders", "source.p.app.payments"


def test_remaining_is_threshold_minus_age_minus_elapsed(keys: KeySet) -> None:
    f = {ORDERS: fresh(ORDERS, age_h=2, warn=6)}
    assert freshness_ttl(keys, f, now=SEEN)["model.p.stg_orders"] == 4 * HOUR
    assert freshness_ttl(keys, f, now=SEEN + HOUR)["model.p.stg_orders"] == 3 * HOUR


def test_exactly_at_threshold_is_zero(keys: KeySet) -> None:
    f = {ORDERS: fresh(ORDERS, age_h=6, warn=6)}
    assert freshness_ttl(keys, f, now=SEEN)["model.p.stg_orders"] == timedelta(0)


def test_past_threshold_is_floored_at_zero(keys: KeySet) -> None:
    f = {ORDERS: fresh(ORDERS, age_h=2, warn=6)}
    assert freshness_ttl(keys, f, now=SEEN + 10 * HOUR)["model.p.stg_orders"] == timedelta(0)
    stale = {ORDERS: fresh(ORDERS, age_h=30, warn=6, status=FreshnessStatus.ERROR)}
    assert freshness_ttl(keys, stale, now=SEEN)["model.p.stg_orders"] == timedelta(0)


def test_warn_after_is_preferred_over_error_after(keys: KeySet) -> None:
    f = {ORDERS: fresh(ORDERS, age_h=1, warn=6, error=24)}
    assert freshness_ttl(keys, f, now=SEEN)["model.p.stg_orders"] == 5 * HOUR


def test_error_after_is_used_without_warn_after(keys: KeySet) -> None:
    f = {ORDERS: fresh(ORDERS, age_h=1, error=24)}
    assert freshness_ttl(keys, f, now=SEEN)["model.p.stg_orders"] == 23 * HOUR


def test_minimum_over_sources_walks_through_ephemeral_models(keys: KeySet) -> None:
    f = {ORDERS: fresh(ORDERS, age_h=1, warn=6), PAYMENTS: fresh(PAYMENTS, age_h=1, warn=3)}
    ttl = freshness_ttl(keys, f, now=SEEN)
    assert ttl["model.p.eph"] == 2 * HOUR
    assert ttl["model.p.mart"] == 2 * HOUR  # payments reaches mart only through eph
    assert ttl["model.p.stg_orders"] == 5 * HOUR


def test_nodes_without_sources_or_data_get_no_ttl(keys: KeySet) -> None:
    f = {
        ORDERS: fresh(ORDERS, age_h=None, warn=6, status=FreshnessStatus.RUNTIME_ERROR),
        PAYMENTS: fresh(PAYMENTS, age_h=1),  # no threshold
    }
    assert freshness_ttl(keys, f, now=SEEN) == {}
    assert freshness_ttl(keys, {}, now=SEEN) == {}


def test_age_is_derived_from_max_loaded_at_when_missing() -> None:
    f = SourceFreshness(
        unique_id=ORDERS,
        status=FreshnessStatus.PASS,
        snapshotted_at=SEEN,
        max_loaded_at=SEEN - 2 * HOUR,
        warn_after=hours(6),
    )
    assert source_deadline(f) == SEEN + 4 * HOUR


def test_session_writes_freshness_deadline_and_falls_back_to_global(keys: KeySet) -> None:
    f = {ORDERS: fresh(ORDERS, age_h=2, warn=6)}
    policy = CachePolicy(expiration=timedelta(days=1), use_source_freshness_expiration=True)
    store = MemoryKeyStore()
    run = CacheSession(keys, store, selected=keys, policy=policy, freshness=f)
    finished = SEEN + HOUR
    for uid in ("seed.p.raw", "model.p.stg_orders", "model.p.lonely"):
        assert not run.check(uid, now=SEEN).hit
        run.record_success(uid, finished_at=finished)

    def status_at(now: datetime) -> dict[str, bool]:
        # Each node alone, so that an expired parent does not decide for its child.
        return {
            uid: CacheSession(keys, store, selected=[uid], policy=policy).check(uid, now=now).hit
            for uid in ("seed.p.raw", "model.p.stg_orders", "model.p.lonely")
        }

    assert status_at(SEEN + 4 * HOUR - timedelta(seconds=1)) == dict.fromkeys(
        ("seed.p.raw", "model.p.stg_orders", "model.p.lonely"), True
    )
    # stg_orders' source goes stale 4h after the check; the others follow the global day.
    assert status_at(SEEN + 4 * HOUR) == {
        "seed.p.raw": True,
        "model.p.stg_orders": False,
        "model.p.lonely": True,
    }
    assert not any(status_at(finished + timedelta(days=1)).values())


def test_record_written_after_the_source_went_stale_is_expired_at_once(keys: KeySet) -> None:
    f = {ORDERS: fresh(ORDERS, age_h=5, warn=6)}
    policy = CachePolicy(use_source_freshness_expiration=True)
    run = CacheSession(
        keys, MemoryKeyStore(), selected=["model.p.stg_orders"], policy=policy, freshness=f
    )
    rec = run.record_success("model.p.stg_orders", finished_at=SEEN + 2 * HOUR)
    assert rec.expires_at == rec.finished_at
