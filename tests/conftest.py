"""Shared fixtures: the test dbt project, and a real PostgreSQL server started for the session."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

# No telemetry from the throwaway Prefect servers (there is no network here anyway).
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")

FIXTURES = Path(__file__).parent / "fixtures"
SHOP = FIXTURES / "shop"


@dataclass(frozen=True)
class PostgresServer:
    host: str
    port: int
    user: str
    dbname: str

    def env(self, schema: str) -> dict[str, str]:
        """Environment variables the shop project's ``pg`` target reads."""
        return {
            "DBT_PG_HOST": self.host,
            "DBT_PG_PORT": str(self.port),
            "DBT_PG_USER": self.user,
            "DBT_PG_DBNAME": self.dbname,
            "DBT_PG_SCHEMA": schema,
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(cmd: list[str]) -> list[str]:
    # PostgreSQL refuses to run as root; sessions and CI are root.
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *cmd]
    return cmd


def _pg_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps the server binaries off PATH, under /usr/lib/postgresql/<major>/bin.
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        pytest.fail(f"PostgreSQL's {name} is missing: apt-get install -y postgresql (see .ci/run)")
    return str(candidates[-1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on a free port, stopped at the end of the session."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    base = Path(tempfile.mkdtemp(prefix="pgtest-"))
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres")
    data, log = base / "data", base / "log"
    subprocess.run(
        _as_postgres([initdb, "-D", str(data), "-A", "trust", "-U", "postgres"]),
        check=True,
        capture_output=True,
    )
    port = _free_port()
    opts = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_postgres([pg_ctl, "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"]),
        check=True,
        capture_output=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield PostgresServer(host="127.0.0.1", port=port, user="postgres", dbname="postgres")
    finally:
        subprocess.run(
            _as_postgres([pg_ctl, "-D", str(data), "stop", "-m", "fast"]), capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)


def copy_shop_project(dest: Path) -> Path:
    """Copy the shop dbt project to ``dest`` (without build output) and return its path."""
    project = dest / "shop"
    shutil.copytree(
        SHOP,
        project,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb*"),
    )
    return project


@pytest.fixture
def shop_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the shop project whose DuckDB file lives in the copy."""
    project = copy_shop_project(tmp_path)
    monkeypatch.setenv("DBT_DUCKDB_PATH", str(project / "shop.duckdb"))
    return project


def dbt_cli(*args: str, project: Path, env: dict[str, str] | None = None) -> str:
    """Run the real dbt CLI in ``project`` and return its stdout; fail the test on error."""
    dbt = Path(os.sys.executable).parent / "dbt"
    full_env = {**os.environ, "DBT_DUCKDB_PATH": str(project / "shop.duckdb"), **(env or {})}
    proc = subprocess.run(
        [str(dbt), *args, "--project-dir", str(project), "--profiles-dir", str(project)],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
    )
    if proc.returncode not in (0, 1) or (
        proc.returncode == 1 and args[0] in ("parse", "deps", "ls")
    ):
        raise AssertionError(f"dbt {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.fixture(scope="session")
def shop_parsed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide copy of the shop project after `dbt deps` and `dbt parse` (read only)."""
    project = copy_shop_project(tmp_path_factory.mktemp("shop-parsed"))
    dbt_cli("deps", project=project)
    dbt_cli("parse", project=project)
    return project


@pytest.fixture(scope="session")
def shop_manifest_path(shop_parsed: Path) -> Path:
    """The shop project's manifest.json."""
    return shop_parsed / "target" / "manifest.json"


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """A real Prefect server with a throwaway database, for tests that read runs back."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield
