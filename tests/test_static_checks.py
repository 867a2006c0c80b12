"""What CI checks besides the tests, run by the tests (``.ci/run`` runs only ``uv run pytest``).

Each check runs over the whole workspace, with the configuration in the root ``pyproject.toml``:
ruff's lint rules and formatting, a lock that matches every ``pyproject.toml``, and pyright over
the packages' sources (possibly unbound names are errors).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)


def _uv() -> str:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.fail("uv is not on PATH: run the tests with `uv run pytest`")
    return uv


def test_ruff_finds_nothing() -> None:
    proc = _run(sys.executable, "-m", "ruff", "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_code_is_formatted() -> None:
    proc = _run(sys.executable, "-m", "ruff", "format", "--check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_the_lock_matches_the_project_files() -> None:
    proc = _run(_uv(), "lock", "--check")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_pyright_finds_no_error_in_the_packages() -> None:
    proc = _run(sys.executable, "-m", "pyright")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 errors" in proc.stdout
