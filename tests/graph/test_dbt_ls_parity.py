"""``select()`` against real ``dbt ls`` on the shop project, one expression per case.

All ``dbt ls`` invocations run in one worker process (see ``conftest.run_dbt_ls``); the
project, its build results, freshness results and a previous state are prepared once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from dbt_graph import Manifest, SelectionError, SelectionState, load_manifest, select

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Case:
    """One comparison: ``dbt ls`` arguments and the matching ``select()`` arguments."""

    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    indirect: str | None = None
    resource_types: tuple[str, ...] | None = ("all",)
    state: bool = False
    note: str = field(default="", compare=False)

    @property
    def id(self) -> str:
        parts = [
            self.select or "",
            f"--exclude {self.exclude}" if self.exclude else "",
            f"--selector {self.selector}" if self.selector else "",
            f"--indirect-selection {self.indirect}" if self.indirect else "",
            f"--resource-type {' '.join(self.resource_types)}"
            if self.resource_types and self.resource_types != ("all",)
            else "",
            "(default resource types)" if self.resource_types is None else "",
            "--state" if self.state else "",
        ]
        return " ".join(p for p in parts if p) or "(no arguments)"

    def ls_args(self, state_dir: Path) -> list[str]:
        args: list[str] = []
        if self.select is not None:
            args += ["--select", self.select]
        if self.exclude is not None:
            args += ["--exclude", self.exclude]
        if self.selector is not None:
            args += ["--selector", self.selector]
        if self.indirect is not None:
            args += ["--indirect-selection", self.indirect]
        for resource_type in self.resource_types or ():
            args += ["--resource-type", resource_type]
        if self.state:
            args += ["--state", str(state_dir)]
        return args

    def select_kwargs(self, state: SelectionState) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "select": self.select,
            "exclude": self.exclude,
            "selector": self.selector,
            "resource_types": self.resource_types,
        }
        if self.indirect is not None:
            kwargs["indirect_selection"] = self.indirect
        if self.state:
            kwargs["state"] = state
        return kwargs


def _c(select: str | None = None, **kw: Any) -> Case:
    return Case(select=select, **kw)


CASES = [
    # methods
    _c("tag:daily"),
    _c("tag:fin*"),
    _c("path:models/staging"),
    _c("path:models", note="package nodes match through their package-relative path"),
    _c("path:models/marts/*.sql"),
    _c("path:models/**/orders.sql"),
    _c("path:models/marts/marts.yml", note="YAML-defined nodes and patched nodes"),
    _c("path:snapshots/snapshots.yml"),
    _c("models/staging/stg_orders.sql", note="a bare path uses the path method"),
    _c("file:orders.sql"),
    _c("orders.sql", note="a bare file name uses the file method"),
    _c("file:stg_*"),
    _c("file:snapshots.yml"),
    _c("fqn:shop.staging"),
    _c("orders"),
    _c("customers", note="every version"),
    _c("customers_v1"),
    _c("customers.v2"),
    _c("stg_*"),
    _c("shop_utils"),
    _c("fqn:*"),
    _c("config.materialized:table"),
    _c("config.meta.owner:finance@example.com"),
    _c("config.tags:daily"),
    _c("config.contract.enforced:false"),
    _c("config.docs.show:true"),
    _c("config.severity:WARN"),
    _c("config.persist_docs.relation:true"),
    _c("resource_type:seed"),
    _c("resource_type:unit_test"),
    _c("resource_type:analysis"),
    _c("source:shop_app"),
    _c("source:shop_app.orders+"),
    _c("source:shop.shop_app.*"),
    _c("exposure:customer_dashboard"),
    _c("+exposure:*"),
    _c("metric:revenue"),
    _c("semantic_model:orders_semantic"),
    _c("saved_query:revenue_by_day"),
    _c("+saved_query:shop.revenue_by_day"),
    _c("test_type:generic"),
    _c("test_type:singular"),
    _c("test_type:unit"),
    _c("test_type:data"),
    _c("test_name:relationships"),
    _c("test_name:not_*"),
    _c("test_name:test_orders_paid_ratio"),
    _c("unit_test:*"),
    _c("unit_test:shop.test_orders_paid_ratio"),
    _c("package:shop_utils"),
    _c("package:this"),
    _c("access:protected"),
    _c("access:public"),
    _c("group:finance"),
    _c("version:latest"),
    _c("version:prerelease"),
    _c("version:old"),
    _c("version:none"),
    # graph operators, unions, intersections, exclusion
    _c("+orders"),
    _c("orders+"),
    _c("1+orders"),
    _c("orders+1"),
    _c("2+customers+1"),
    _c("@stg_customers"),
    _c("@raw_payments"),
    _c("tag:hourly tag:finance"),
    _c("tag:daily,config.materialized:view"),
    _c("tag:daily,+orders"),
    _c("tag:daily", exclude="tag:finance"),
    _c("+orders", exclude="resource_type:test"),
    _c(None, exclude="tag:deprecated", note="--exclude alone: dbt's default includes"),
    _c("stg_orders stg_customers", exclude="stg_customers"),
    # YAML selectors
    _c(selector="staging_and_children"),
    _c(selector="finance_marts"),
    _c(selector="orders_parents_depth_one"),
    _c(selector="customers_family"),
    _c(selector="everything_but_deprecated"),
    _c(None, note="the default selector"),
    _c(None, resource_types=None, note="the default selector, default resource types"),
    _c(selector="customers_family", indirect="eager"),
    # indirect selection
    *(_c("stg_orders", indirect=mode) for mode in ("eager", "cautious", "buildable", "empty")),
    *(_c("orders", indirect=mode) for mode in ("eager", "cautious", "buildable", "empty")),
    _c("stg_orders stg_customers", indirect="cautious", note="a union lets held tests in"),
    _c("stg_orders stg_customers", indirect="buildable"),
    _c("+customers,resource_type:model", indirect="buildable"),
    _c("stg_orders,stg_orders+", indirect="cautious"),
    _c("customers", indirect="cautious"),
    _c("customers", indirect="buildable"),
    _c("+orders", indirect="empty", exclude="stg_payments"),
    # resource types
    _c("+orders", resource_types=("model",)),
    _c("+orders", resource_types=("test", "unit_test")),
    _c("+orders", resource_types=None),
    _c("orders+", resource_types=("default",)),
    _c("fqn:*", resource_types=None),
    # state, run results, source freshness
    *(
        _c(f"state:{s}", state=True)
        for s in (
            "new",
            "old",
            "modified",
            "unmodified",
            "modified.body",
            "modified.configs",
            "modified.relation",
            "modified.persisted_descriptions",
            "modified.macros",
            "modified.contract",
        )
    ),
    _c("state:modified+", state=True),
    _c("state:new,resource_type:model", state=True),
    _c("state:modified", exclude="state:new", state=True),
    *(
        _c(f"result:{s}", state=True)
        for s in ("fail", "skipped", "success", "pass", "warn", "error")
    ),
    _c("result:fail+", state=True),
    _c("result:skipped,resource_type:model", state=True),
    _c("source_status:fresher", state=True),
    _c("source_status:fresher+", state=True),
    _c("source_status:stale", state=True),
]

# Cases that select nothing in the parity project (still compared: an empty answer is one).
EXPECTED_EMPTY = {"result:error --state", "source_status:stale --state"}

ERROR_CASES = [
    _c("bogus:x"),
    _c("version:bogus"),
    _c("test_type:bogus"),
    _c("@orders+"),
    _c("source:a.b.c.d"),
    _c("exposure:a.b.c"),
    _c("resource_type:bogus"),
    _c("state:modified", note="no --state"),
    _c("state:bogus", state=True),
    _c(selector="no_such_selector"),
]


Outcome = frozenset[str] | str


@pytest.fixture(scope="module")
def manifest(parity_project: Path) -> Manifest:
    return load_manifest(parity_project / "target" / "manifest.json")


@pytest.fixture(scope="module")
def state(parity_project: Path, parity_state: Path) -> SelectionState:
    return SelectionState.load(parity_state, target_dir=parity_project / "target")


@pytest.fixture(scope="module")
def dbt_ls(
    parity_project: Path, parity_state: Path, run_dbt_ls: Callable[..., list[Outcome]]
) -> dict[str, Outcome]:
    cases = [*CASES, *ERROR_CASES]
    outcomes = run_dbt_ls(parity_project, [c.ls_args(parity_state) for c in cases])
    return {c.id: outcome for c, outcome in zip(cases, outcomes, strict=True)}


def test_cases_are_distinct_and_plenty() -> None:
    ids = [c.id for c in [*CASES, *ERROR_CASES]]
    assert len(ids) == len(set(ids))
    assert len(CASES) >= 45


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_select_matches_dbt_ls(
    case: Case, manifest: Manifest, state: SelectionState, dbt_ls: dict[str, Outcome]
) -> None:
    expected = dbt_ls[case.id]
    assert not isinstance(expected, str), f"dbt ls failed: {expected}"
    assert select(manifest, **case.select_kwargs(state)) == expected


@pytest.mark.parametrize("case", ERROR_CASES, ids=lambda c: c.id)
def test_select_raises_where_dbt_ls_fails(
    case: Case, manifest: Manifest, state: SelectionState, dbt_ls: dict[str, Outcome]
) -> None:
    assert isinstance(dbt_ls[case.id], str), "dbt ls did not fail"
    with pytest.raises(SelectionError):
        select(manifest, **case.select_kwargs(state))


def test_state_directory_path_is_read_like_dbt(
    parity_state: Path, manifest: Manifest, dbt_ls: dict[str, Outcome]
) -> None:
    fresher = _c("source_status:fresher+", state=True)
    selected = select(manifest, fresher.select, state=parity_state, resource_types=["all"])
    assert selected == dbt_ls[fresher.id]


def test_cases_select_something_unless_meant_to(dbt_ls: dict[str, Outcome]) -> None:
    empty = {c.id for c in CASES if dbt_ls[c.id] == frozenset()}
    assert empty == EXPECTED_EMPTY
