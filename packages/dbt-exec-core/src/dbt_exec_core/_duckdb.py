"""DuckDB in a worker process: one writing process per database file, taking turns.

dbt-duckdb keeps the database file open between invocations (``keep_open`` defaults to true);
a worker closes it whenever it is not running anything, and holds an OS file lock next to the
database (``<file>.dbt-exec-core.lock``) while it has the file open, so other processes (another
executor, a pickled copy in a process pool) wait for their turn instead of failing to open it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def holding(lock_file: str | None) -> Iterator[None]:
    """Within the block, this process has the database (``lock_file``: ``None`` for none);
    on leaving it the database is closed, then the lock released."""
    if lock_file is None:
        yield
        return
    from filelock import FileLock

    with FileLock(lock_file, thread_local=False):
        try:
            yield
        finally:
            close_duckdb()


def close_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open between invocations."""
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    with DuckDBConnectionManager._LOCK:
        env = DuckDBConnectionManager._ENV
        if env is not None:
            env.close()
