"""Results and cache keys in Prefect filesystem blocks saved on a real Prefect server.

With ``key_storage=None`` the keys live next to the results, wherever those are: a second
machine (here: another ``PREFECT_HOME``) that reads the same result block is served from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from dbt_graph import Manifest
from dbt_graph.testing import FakeExecutor
from prefect.filesystems import LocalFileSystem, RemoteFileSystem
from prefect.settings import PREFECT_HOME, temporary_settings
from prefect_dbt_orchestrator import CacheConfig, PrefectDbtOrchestrator, PrefectDbtSettings

pytestmark = pytest.mark.usefixtures("prefect_server")

#: Models and seeds of ``chain_manifest``: what a second run serves from the cache.
CACHEABLE = {"seed.p.raw", "model.p.stg", "model.p.mart", "model.p.other", "model.p.other_mart"}


@pytest.fixture
def seeded(project: PrefectDbtSettings) -> PrefectDbtSettings:
    (project.project_dir / "seeds").mkdir()
    (project.project_dir / "seeds" / "raw.csv").write_text("id\n1\n")  # the seed's key reads it
    return project


def _build(settings: PrefectDbtSettings, manifest: Manifest, cache: CacheConfig) -> dict:
    orch = PrefectDbtOrchestrator(
        settings=settings,
        executor=FakeExecutor(manifest),
        execution_mode="per_node",
        cache=cache,
        test_strategy="skip",
    )
    return orch.run_build()


def _cached(results: dict[str, dict[str, Any]]) -> set[str]:
    return {uid for uid, r in results.items() if r["status"] == "cached"}


def _files(directory: Path) -> list[Path]:
    return [p for p in directory.rglob("*") if p.is_file()] if directory.exists() else []


def _key_records(paths: list[Any]) -> list[Any]:
    """The nodes' key records among ``paths`` (the duration history lives beside them)."""
    return [p for p in paths if "orchestrator-durations" not in str(p)]


def _block(kind: str, tmp_path: Path) -> tuple[str, Any]:
    """A saved block (its slug) and a way to list the files under a folder of it."""
    if kind == "local":
        shared = tmp_path / "shared-storage"
        LocalFileSystem(basepath=str(shared)).save("dbt-results-local", overwrite=True)
        return "local-file-system/dbt-results-local", lambda folder: _files(shared / folder)
    # An fsspec filesystem other than the local disk, as S3 or GCS would be.
    basepath = f"memory://dbt-results/{tmp_path.name}"
    remote = RemoteFileSystem(basepath=basepath)
    remote.save("dbt-results-remote", overwrite=True)
    fs = remote.filesystem
    return "remote-file-system/dbt-results-remote", lambda folder: fs.find(f"{basepath}/{folder}")


@pytest.mark.parametrize("kind", ["local", "remote"])
def test_a_second_machine_is_served_from_the_result_block(
    seeded, chain_manifest, tmp_path: Path, kind: str
) -> None:
    slug, files_under = _block(kind, tmp_path)
    cache = CacheConfig(result_storage=slug)

    with temporary_settings({PREFECT_HOME: tmp_path / "machine-a"}):
        first = _build(seeded, chain_manifest, cache)
    assert _cached(first) == set()
    # One key record per node, in the block, and nothing of the cache left on machine A.
    assert len(_key_records(files_under("cache-keys/p"))) == len(CACHEABLE)
    assert _files(tmp_path / "machine-a") == []

    with temporary_settings({PREFECT_HOME: tmp_path / "machine-b"}):
        second = _build(seeded, chain_manifest, cache)
    assert _cached(second) == CACHEABLE


def test_keys_go_to_their_own_block_when_named(seeded, chain_manifest, tmp_path: Path) -> None:
    LocalFileSystem(basepath=str(tmp_path / "results")).save("dbt-res", overwrite=True)
    LocalFileSystem(basepath=str(tmp_path / "keys")).save("dbt-keys", overwrite=True)
    cache = CacheConfig(
        result_storage="local-file-system/dbt-res", key_storage="local-file-system/dbt-keys"
    )
    assert _cached(_build(seeded, chain_manifest, cache)) == set()
    assert len(_key_records(_files(tmp_path / "keys" / "dbt-cache-keys" / "p"))) == len(CACHEABLE)
    assert not (tmp_path / "results" / "cache-keys").exists()
    assert _cached(_build(seeded, chain_manifest, cache)) == CACHEABLE


def test_default_result_storage_keeps_its_keys_beside_the_results(
    seeded, chain_manifest, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    with temporary_settings({PREFECT_HOME: home}):
        assert _cached(_build(seeded, chain_manifest, CacheConfig())) == set()
        assert _cached(_build(seeded, chain_manifest, CacheConfig())) == CACHEABLE
    # Prefect's default result storage is the local storage folder under its home.
    assert len(_key_records(_files(home / "storage" / "cache-keys" / "p"))) == len(CACHEABLE)
