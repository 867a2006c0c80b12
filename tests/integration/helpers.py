"""Helpers for end-to-end tests."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import duckdb


def query(project: Path, sql: str) -> list[tuple]:
    """Run SQL against the project's DuckDB file (read-only; close the executors first)."""
    with duckdb.connect(str(project / "shop.duckdb"), read_only=True) as con:
        return con.execute(sql).fetchall()


def statuses(results: dict[str, dict[str, Any]]) -> Counter[str]:
    return Counter(r["status"] for r in results.values())


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))
