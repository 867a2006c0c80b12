"""Data-aware keys on the real shop project: new data in one source changes the keys of exactly
its descendants, each explained by that source; build_after is read where dbt writes it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from cachekeys.shop_helpers import keys_for
from dbt_cachekeys import BuildAfter, KeyRecord, KeySet, UpdatesOn, explain
from dbt_graph import FingerprintMethod, Manifest, SourceFingerprint

pytestmark = pytest.mark.slow

T0 = datetime(2026, 3, 1, 8, tzinfo=UTC)
ORDERS, PAYMENTS = "source.shop.shop_app.orders", "source.shop.shop_app.payments"


def fingerprints(orders: str, payments: str) -> dict[str, SourceFingerprint]:
    return {
        uid: SourceFingerprint(
            unique_id=uid,
            value=value,
            method=FingerprintMethod.CONTENT,
            observed_at=T0,
            detail=f"{value} rows",
        )
        for uid, value in ((ORDERS, orders), (PAYMENTS, payments))
    }


def descendants(manifest: Manifest, root: str) -> set[str]:
    seen: set[str] = set()
    todo = [root]
    while todo:
        for child in manifest.child_map[todo.pop()]:
            if child not in seen:
                seen.add(child)
                todo.append(child)
    return seen


def record_of(keys: KeySet, uid: str) -> KeyRecord:
    node_key = keys[uid]
    return KeyRecord(
        unique_id=uid,
        key=node_key.key,
        token="t",
        finished_at=T0,
        components=node_key.components,
    )


@pytest.mark.parametrize(
    ("source", "after", "why"),
    [
        (ORDERS, ("8", "8"), "source `shop_app.orders` has new data since {t} (7 rows -> 8 rows)"),
        (
            PAYMENTS,
            ("7", "9"),
            "source `shop_app.payments` has new data since {t} (8 rows -> 9 rows)",
        ),
    ],
)
def test_new_data_in_one_source_changes_exactly_its_descendants(
    shop_base: Path, source: str, after: tuple[str, str], why: str
) -> None:
    manifest, before = keys_for(shop_base, fingerprints=fingerprints("7", "8"))
    _, later = keys_for(shop_base, fingerprints=fingerprints(*after))
    changed = {uid for uid in before if before[uid].key != later[uid].key}
    expected = descendants(manifest, source) & set(before)
    assert expected and changed == expected
    for uid in changed:
        reasons = explain(later[uid], record_of(before, uid))
        assert reasons == (why.format(t="2026-03-01 08:00:00 UTC"),), uid


def test_build_after_is_read_from_the_manifest(shop_projects: dict[str, Path]) -> None:
    _, keys = keys_for(shop_projects["build_after"], fingerprints=fingerprints("7", "8"))
    assert keys["model.shop.orders"].build_after == BuildAfter(
        count=4, period="hour", updates_on=UpdatesOn.ALL
    )
    assert keys["model.shop.stg_orders"].build_after is None
    inputs = dict(keys["model.shop.orders"].inputs)
    # Views and ephemeral models are seen through: their sources' new data is theirs.
    assert inputs["model.shop.stg_orders"] == (ORDERS,)
    assert inputs["model.shop.stg_payments"] == (PAYMENTS,)
