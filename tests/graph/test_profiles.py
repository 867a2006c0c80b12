"""The profiles directory and the effective target, decided as dbt decides them."""

from __future__ import annotations

from pathlib import Path

import pytest
from dbt_graph import ProfileError, effective_target, find_profiles_dir, render_env_vars

PROJECT = {"name": "shop", "profile": "shop"}


def profiles(target: object = "dev") -> dict:
    profile: dict = {"outputs": {"dev": {"type": "duckdb"}, "prod": {"type": "duckdb"}}}
    if target is not None:
        profile["target"] = target
    return {"config": {"send_anonymous_usage_stats": False}, "shop": profile}


def where(*holding: Path):
    return lambda directory: directory in holding


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"explicit": Path("/given")}, "/given"),
        ({"environ": {"DBT_PROFILES_DIR": "/from/env"}}, "/from/env"),
        ({"has_profiles": where(Path("/srv/shop"), Path("/work"))}, "/srv/shop"),
        ({"has_profiles": where(Path("/work"))}, "/work"),
        ({}, "/home/me/.dbt"),
    ],
    ids=["explicit", "DBT_PROFILES_DIR", "project", "working-dir", "home"],
)
def test_profiles_dir_is_looked_for_in_dbts_order(kw, expected) -> None:
    options = {
        "environ": {},
        "cwd": Path("/work"),
        "home": Path("/home/me"),
        "has_profiles": where(),
        **kw,
    }
    assert find_profiles_dir(Path("/srv/shop"), **options) == Path(expected)


def test_explicit_dir_beats_the_environment() -> None:
    found = find_profiles_dir(
        Path("/p"), explicit=Path("/given"), environ={"DBT_PROFILES_DIR": "/env"}
    )
    assert found == Path("/given")


def test_the_runs_target_wins() -> None:
    env = {"DBT_TARGET": "from-env"}
    assert effective_target(PROJECT, profiles(), target="ci", environ=env) == "ci"


def test_dbt_target_in_the_environment_beats_the_profile() -> None:
    # dbt's --target reads DBT_TARGET.
    assert effective_target(PROJECT, profiles(), environ={"DBT_TARGET": "prod"}) == "prod"


def test_the_profiles_own_target_is_the_default() -> None:
    assert effective_target(PROJECT, profiles("dev"), environ={}) == "dev"


def test_a_profile_without_a_target_uses_default_as_dbt_does() -> None:
    assert effective_target(PROJECT, profiles(None), environ={}) == "default"


@pytest.mark.parametrize(
    ("template", "environ", "expected"),
    [
        ("{{ env_var('DBT_TARGET_NAME') }}", {"DBT_TARGET_NAME": "prod"}, "prod"),
        ('{{env_var("DBT_TARGET_NAME","dev")}}', {}, "dev"),
        ("{{ env_var('DBT_TARGET_NAME', 'dev') }}", {"DBT_TARGET_NAME": "prod"}, "prod"),
        ("{{- env_var('REGION') -}}_{{ env_var('STAGE', 'dev') }}", {"REGION": "eu"}, "eu_dev"),
    ],
)
def test_env_var_in_the_target_is_rendered(template, environ, expected) -> None:
    assert effective_target(PROJECT, profiles(template), environ=environ) == expected


def test_the_profile_name_is_rendered_and_dbt_profile_overrides_it() -> None:
    project = {"profile": "{{ env_var('PROFILE', 'shop') }}"}
    other = {**profiles("dev"), "other": {"target": "qa", "outputs": {}}}
    assert effective_target(project, other, environ={}) == "dev"
    assert effective_target(project, other, environ={"PROFILE": "other"}) == "qa"
    assert effective_target(PROJECT, other, environ={"DBT_PROFILE": "other"}) == "qa"


@pytest.mark.parametrize(
    ("project", "profile_file"),
    [(PROJECT, None), (PROJECT, {"elsewhere": {}}), ({"name": "shop"}, profiles()), (None, None)],
    ids=["no-profiles-file", "profile-missing", "no-profile-name", "nothing"],
)
def test_no_profile_to_read_means_no_target(project, profile_file) -> None:
    assert effective_target(project, profile_file, environ={}) is None


def test_a_missing_variable_without_default_says_which() -> None:
    with pytest.raises(ProfileError, match="'DBT_TARGET_NAME', which is not set"):
        effective_target(PROJECT, profiles("{{ env_var('DBT_TARGET_NAME') }}"), environ={})


def test_other_jinja_is_refused_not_taken_literally() -> None:
    with pytest.raises(ProfileError, match="other than env_var") as info:
        render_env_vars("{{ 'prod' if env_var('CI', '') else 'dev' }}", {})
    assert isinstance(info.value, ValueError)
