"""The guide's extra-args table: blocked, first-class, caveat and pass-through flags, every form."""

from __future__ import annotations

import logging

import pytest
from dbt_graph import ExtraArgsError, check_extra_args

BLOCKED = [
    (["--select", "orders"], "--select"),
    (["--select=orders"], "--select"),
    (["-s", "orders"], "--select"),
    (["-sorders"], "--select"),
    (["-s=orders"], "--select"),
    (["-xs", "orders"], "--select"),
    (["--select", "a", "b", "--no-partial-parse"], "--select"),
    (["--models", "orders"], "--models"),
    (["--model", "orders"], "--models"),
    (["-m", "orders"], "--models"),
    (["-morders"], "--models"),
    (["--exclude", "orders"], "--exclude"),
    (["--exclude=orders"], "--exclude"),
    (["--selector", "nightly"], "--selector"),
    (["--indirect-selection", "eager"], "--indirect-selection"),
    (["--indirect-selection=cautious"], "--indirect-selection"),
    (["--project-dir", "/p"], "--project-dir"),
    (["--target-path", "/t"], "--target-path"),
    (["--target-path=/t"], "--target-path"),
    (["--profiles-dir", "/p"], "--profiles-dir"),
    (["--log-level", "debug"], "--log-level"),
    (["--log-level=debug"], "--log-level"),
]

FIRST_CLASS = [
    (["--full-refresh"], "--full-refresh", "full_refresh"),
    (["-f"], "--full-refresh", "full_refresh"),
    (["--target", "prod"], "--target", "target"),
    (["--target=prod"], "--target", "target"),
    (["-t", "prod"], "--target", "target"),
    (["-tprod"], "--target", "target"),
    (["--threads", "8"], "--threads", "threads"),
    (["--threads=8"], "--threads", "threads"),
    (["--defer"], "--defer", "defer"),
    (["--no-defer"], "--defer", "defer"),
    (["--state", "prod_artifacts"], "--state", "state_path"),
    (["--state=prod_artifacts"], "--state", "state_path"),
    (["--defer-state", "prod_artifacts"], "--defer-state", "defer_state_path"),
    (["--favor-state"], "--favor-state", "favor_state"),
    (["--no-favor-state"], "--favor-state", "favor_state"),
]

CAVEATS = [
    (["--resource-type", "model"], "--resource-type"),
    (["--resource-types", "model", "seed"], "--resource-type"),
    (["--exclude-resource-type", "test"], "--exclude-resource-type"),
    (["--exclude-resource-type=test"], "--exclude-resource-type"),
    (["--fail-fast"], "--fail-fast"),
    (["-x"], "--fail-fast"),
]

PASS_THROUGH = [
    ["--vars", '{"run_date": "2024-01-15"}'],
    ["--vars={day: 1}"],
    ["--vars", "-s"],  # a value, not a flag
    ["--no-partial-parse"],
    ["--store-failures"],
    ["--log-level-file", "debug"],
    ["--empty"],
    # Abbreviations are not the flags they abbreviate (dbt's click rejects them itself).
    ["--full"],
    ["--sel", "orders"],
    ["--t"],
    ["--pr"],
    ["--target-p", "x"],
    ["--exclude-r", "test"],
    ["--fail"],
    [],
]


@pytest.mark.parametrize(("args", "flag"), BLOCKED)
def test_blocked_flags_raise_naming_the_flag_and_why(args, flag):
    with pytest.raises(ExtraArgsError) as info:
        check_extra_args(args)
    assert isinstance(info.value, ValueError)
    assert info.value.flag == flag
    assert str(info.value).startswith(f"Cannot pass '{flag}' via extra_cli_args: ")


@pytest.mark.parametrize(("args", "flag", "parameter"), FIRST_CLASS)
def test_first_class_flags_raise_naming_the_parameter(args, flag, parameter):
    with pytest.raises(ValueError, match=f"use the {parameter} parameter instead") as info:
        check_extra_args(args)
    assert info.value.flag == flag
    assert str(info.value).startswith(f"Cannot pass '{flag}' via extra_cli_args; ")


@pytest.mark.parametrize(("args", "flag"), CAVEATS)
def test_caveat_flags_pass_with_a_warning(args, flag, caplog):
    with caplog.at_level(logging.WARNING, logger="dbt_graph"):
        assert check_extra_args(args) == tuple(args)
    assert any(flag in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("args", PASS_THROUGH)
def test_other_arguments_pass_through_unchanged(args, caplog):
    with caplog.at_level(logging.WARNING, logger="dbt_graph"):
        assert check_extra_args(args) == tuple(args)
    assert not caplog.records


def test_the_first_offending_flag_is_reported():
    with pytest.raises(ExtraArgsError) as info:
        check_extra_args(["--no-partial-parse", "--threads", "2", "--select", "x"])
    assert info.value.flag == "--threads"


def test_none_is_no_arguments():
    assert check_extra_args(None) == ()


def test_non_string_arguments_are_rejected():
    with pytest.raises(TypeError):
        check_extra_args(["--threads", 4])  # type: ignore[list-item]
