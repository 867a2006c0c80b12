"""A throwaway PostgreSQL server for the benchmarks (``initdb``/``pg_ctl``; as root through
``runuser -u postgres``, since PostgreSQL refuses to run as root)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_binary(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        raise RuntimeError(f"PostgreSQL's {name} is missing (apt-get install -y postgresql)")
    return str(candidates[-1])


@contextmanager
def temporary_postgres() -> Iterator[dict[str, str]]:
    """A throwaway server (fsync off); yields the BENCH_PG_* variables the projects read."""
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    if os.geteuid() == 0:
        shutil.chown(base, user="postgres")
    data, log, port = base / "data", base / "log", free_port()
    pg_ctl = pg_binary("pg_ctl")
    try:
        subprocess.run(
            [*as_postgres, pg_binary("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
        )
        opts = (
            f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
        )
        subprocess.run(
            [*as_postgres, pg_ctl, "-D", str(data), "-o", opts, "-l", str(log), "-w", "start"],
            check=True,
            capture_output=True,
        )
        yield {
            "BENCH_PG_HOST": "127.0.0.1",
            "BENCH_PG_PORT": str(port),
            "BENCH_PG_USER": "postgres",
            "BENCH_PG_DBNAME": "postgres",
        }
    finally:
        subprocess.run(
            [*as_postgres, pg_ctl, "-D", str(data), "stop", "-m", "fast"], capture_output=True
        )
        shutil.rmtree(base, ignore_errors=True)
