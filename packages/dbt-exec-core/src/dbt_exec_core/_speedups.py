"""Per-process memoisation of work dbt repeats on every invocation (worker processes only).

Installed once in each worker, never in the caller's process.
"""

from __future__ import annotations


def install() -> None:
    """Install the memoisations (idempotent)."""
