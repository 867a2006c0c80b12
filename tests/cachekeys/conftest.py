"""Fixtures for dbt-cachekeys: the shop project parsed with its edited variants, and its keys.

These tests parse their own copy of the shop project (rather than the shared ``shop_parsed``)
so that the base and all variants are parsed in one process: importing dbt costs more than
parsing the project.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cachekeys.shop_helpers import build_projects_in_child, keys_for
from dbt_cachekeys import KeySet
from dbt_graph import Manifest, load_manifest


@pytest.fixture(scope="session")
def shop_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], dict[str, str]]:
    """The projects below, and the base's keys as computed in the child that parsed them."""
    return build_projects_in_child(tmp_path_factory.mktemp("cachekeys-shop"))


@pytest.fixture(scope="session")
def shop_projects(shop_build: tuple[dict[str, Path], dict[str, str]]) -> dict[str, Path]:
    """The parsed shop project (``base``) and every ``VARIANTS`` entry, edited and re-parsed."""
    return shop_build[0]


@pytest.fixture(scope="session")
def shop_base(shop_projects: dict[str, Path]) -> Path:
    """The parsed, unedited shop project (do not modify it)."""
    return shop_projects["base"]


@pytest.fixture(scope="session")
def shop_manifest(shop_base: Path) -> Manifest:
    """The shop project's manifest."""
    return load_manifest(shop_base / "target" / "manifest.json")


@pytest.fixture(scope="session")
def shop_keys(shop_base: Path) -> KeySet:
    """The shop project's keys for target ``dev``, no vars."""
    return keys_for(shop_base)[1]
