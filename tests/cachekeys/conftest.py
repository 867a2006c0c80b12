"""Fixtures for dbt-cachekeys: the shop project's manifest and keys, and re-parsed variants."""

from __future__ import annotations

from pathlib import Path

import pytest
from cachekeys.shop_helpers import keys_for, parse_variants
from dbt_cachekeys import KeySet
from dbt_graph import Manifest, load_manifest


@pytest.fixture(scope="session")
def shop_variants(shop_parsed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every ``VARIANTS`` entry as an edited, re-parsed copy of the shop project."""
    return parse_variants(shop_parsed, tmp_path_factory.mktemp("cachekeys-variants"))


@pytest.fixture(scope="session")
def shop_manifest(shop_parsed: Path) -> Manifest:
    """The shop project's manifest."""
    return load_manifest(shop_parsed / "target" / "manifest.json")


@pytest.fixture(scope="session")
def shop_keys(shop_parsed: Path) -> KeySet:
    """The shop project's keys for target ``dev``, no vars."""
    return keys_for(shop_parsed)[1]
