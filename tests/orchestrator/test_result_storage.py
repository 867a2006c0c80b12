"""Cached node results in Prefect result storage (a local path here)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prefect_dbt_orchestrator._cache import ResultStorage

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_a_stored_result_reads_back(tmp_path: Path) -> None:
    ResultStorage(tmp_path / "results").write("tok1", {"status": "success", "message": "OK"})
    # A new run reads what an earlier one stored.
    assert ResultStorage(tmp_path / "results").read("tok1") == {
        "status": "success",
        "message": "OK",
    }


def test_a_missing_result_is_a_quiet_miss(tmp_path: Path, caplog) -> None:
    storage = ResultStorage(tmp_path / "results")
    with caplog.at_level(logging.WARNING):
        assert storage.read("never-written") is None
    assert not caplog.records


def test_an_unreadable_result_is_a_miss_not_an_error(tmp_path: Path) -> None:
    ResultStorage(tmp_path / "results").write("tok2", {"status": "success"})
    (stored,) = (tmp_path / "results").iterdir()
    stored.write_text("{not json")
    assert ResultStorage(tmp_path / "results").read("tok2") is None  # re-run, never served
