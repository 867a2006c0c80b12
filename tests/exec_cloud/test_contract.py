"""The shared executor contract suite against DbtCloudExecutor and the fake dbt Cloud."""

from __future__ import annotations

from dbt_exec_cloud import DbtCloudExecutor
from exec_cloud.fake_cloud import FakeDbtCloud
from exec_cloud.fake_time import no_sleep
from executor_contract import ContractCase, check_executor_contract

FAILING = "model.shop.stg_payments"
DOWNSTREAM = "model.shop.int_order_payments"
WARN_TEST = (
    "test.shop.accepted_values_stg_orders_status__placed__shipped__completed__returned.7511f2d274"
)


def test_dbt_cloud_executor_meets_the_executor_contract(
    make_executor, cloud_network: FakeDbtCloud
) -> None:
    fake = cloud_network
    fake.outcomes = {FAILING: "error", WARN_TEST: "warn"}
    executor: DbtCloudExecutor = make_executor(transport=None, sleep=no_sleep)
    manifest = fake.manifest
    check_executor_contract(
        ContractCase(
            executor=executor,
            manifest=manifest,
            passing=manifest.node("model.shop.orders"),
            failing=manifest.node(FAILING),
            warn_test=manifest.node(WARN_TEST),
            skipped_downstream=manifest.node(DOWNSTREAM),
            prepare=(manifest.node("seed.shop.raw_orders"), manifest.node("model.shop.stg_orders")),
            source_ids=("source.shop.shop_app.orders",),
        )
    )
    assert fake.active_jobs() == []
