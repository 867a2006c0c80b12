"""freshness.build_after as a pure decision: count/period, updates_on any|all, absent and
unknown config."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

import pytest
from dbt_cachekeys import BuildAfter, UpdatesOn, decide_build_after

BUILT = datetime(2026, 3, 1, 8, tzinfo=UTC)
FOUR_HOURS = BuildAfter(count=4, period="hour")
ALL = BuildAfter(updates_on=UpdatesOn.ALL)


@pytest.mark.parametrize(
    ("rule", "after", "inputs", "changed", "rebuild"),
    [
        (None, timedelta(0), {"a"}, {"a"}, True),
        (FOUR_HOURS, timedelta(hours=1), {"a", "b"}, {"a"}, False),
        (FOUR_HOURS, timedelta(hours=4), {"a", "b"}, {"a"}, True),
        (FOUR_HOURS, timedelta(hours=3, minutes=59), {"a"}, {"a"}, False),
        (FOUR_HOURS, timedelta(days=2), {"a"}, set(), False),
        (ALL, timedelta(0), {"a", "b"}, {"a"}, False),
        (ALL, timedelta(0), {"a", "b"}, {"a", "b"}, True),
        (
            BuildAfter(count=1, period="day", updates_on=UpdatesOn.ALL),
            timedelta(hours=2),
            {"a", "b"},
            {"a", "b"},
            False,
        ),
        (
            BuildAfter(count=1, period="day", updates_on=UpdatesOn.ALL),
            timedelta(days=1),
            {"a", "b"},
            {"a", "b"},
            True,
        ),
        (
            BuildAfter(count=1, period="day", updates_on=UpdatesOn.ALL),
            timedelta(days=3),
            {"a", "b"},
            {"b"},
            False,
        ),
        (BuildAfter(count=30, period="minute"), timedelta(minutes=30), {"a"}, {"a"}, True),
        (BuildAfter(), timedelta(0), {"a"}, {"a"}, True),
    ],
    ids=[
        "absent",
        "any-within-period",
        "any-period-passed",
        "any-just-before",
        "nothing-new",
        "all-waiting",
        "all-complete",
        "all-complete-within-period",
        "all-complete-period-passed",
        "all-waiting-long-after",
        "minutes",
        "empty-config",
    ],
)
def test_build_after_decisions(rule, after, inputs, changed, rebuild) -> None:
    decision = decide_build_after(
        rule, last_built=BUILT, now=BUILT + after, inputs=inputs, changed=changed
    )
    assert decision.rebuild is rebuild
    assert (decision.reason is None) is rebuild


def test_a_model_that_never_ran_is_built() -> None:
    assert decide_build_after(
        FOUR_HOURS, last_built=None, now=BUILT, inputs={"a"}, changed={"a"}
    ).rebuild


def test_the_reason_names_what_it_waits_for() -> None:
    decision = decide_build_after(
        ALL, last_built=BUILT, now=BUILT, inputs={"a", "b", "c"}, changed={"b"}
    )
    assert decision.reason == "build_after updates_on all: waiting for new data in `a`, `c`"


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (
            {"freshness": {"build_after": {"count": 4, "period": "hour", "updates_on": "any"}}},
            FOUR_HOURS,
        ),
        (
            {"freshness": {"build_after": {"count": 1, "period": "day", "updates_on": "all"}}},
            BuildAfter(count=1, period="day", updates_on=UpdatesOn.ALL),
        ),
        ({"freshness": {"build_after": {"updates_on": "all"}}}, ALL),
        ({"freshness": {"build_after": {"count": None, "period": None}}}, BuildAfter()),
        ({}, None),
        ({"freshness": None}, None),
        ({"freshness": {}}, None),
    ],
)
def test_build_after_is_read_from_the_config(config, expected) -> None:
    assert BuildAfter.from_config(config) == expected


@pytest.mark.parametrize(
    "raw",
    [
        {"count": 4, "period": "fortnight"},
        {"count": 4},
        {"count": -1, "period": "day"},
        {"count": True, "period": "day"},
        {"count": 1, "period": "day", "updates_on": "some"},
        "daily",
    ],
)
def test_unknown_build_after_is_ignored_with_a_warning(
    raw, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="dbt_cachekeys"):
        assert BuildAfter.from_config({"freshness": {"build_after": raw}}) is None
    assert "ignoring freshness.build_after" in caplog.text
