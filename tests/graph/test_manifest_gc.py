"""load_manifest keeps Python's cyclic garbage collector out of the way while it decodes."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import pytest
from dbt_graph import load_manifest
from shapes import wide


@pytest.fixture
def big_manifest(tmp_path: Path) -> Path:
    return wide(300).write(tmp_path / "manifest.json")


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """Generations of the collections that run while the test body runs."""
    seen: list[int] = []

    def count(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            seen.append(info["generation"])

    gc.callbacks.append(count)
    try:
        yield seen
    finally:
        gc.callbacks.remove(count)


def test_no_collection_runs_while_a_manifest_loads(
    big_manifest: Path, collections: list[int]
) -> None:
    assert gc.isenabled()
    manifest = load_manifest(big_manifest)
    assert len(manifest.nodes) == 601
    # Without the pause, a collection runs every few hundred allocations (16 times here); with
    # it, at most one right after, when the allocations made meanwhile are first counted.
    assert len(collections) <= 1
    assert gc.isenabled()


def test_a_disabled_collector_stays_disabled(big_manifest: Path) -> None:
    gc.disable()
    try:
        load_manifest(big_manifest)
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_runs_again_after_a_failed_load(tmp_path: Path) -> None:
    broken = tmp_path / "manifest.json"
    broken.write_text("{not json")
    with pytest.raises(ValueError):
        load_manifest(broken)
    assert gc.isenabled()
