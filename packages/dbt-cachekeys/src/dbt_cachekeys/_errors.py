"""Errors raised by dbt-cachekeys.

The tree::

    CacheKeysError
    ├── RecordError              a stored record is corrupt, foreign or from another format
    ├── UnresolvedUpstreamError  a node was checked before an upstream node of the same run
    └── PolicyError              a policy and keys that cannot be used together

A corrupt or unreadable store never raises out of :class:`~dbt_cachekeys.CacheSession` or
:func:`~dbt_cachekeys.load_record`: it is logged and treated as "no record" (a cache miss).
Every message says what went wrong and what to do next.
"""

from __future__ import annotations


class CacheKeysError(Exception):
    """Root of every error dbt-cachekeys raises."""


class RecordError(CacheKeysError, ValueError):
    """Bytes read from a key store are not a record this version can use.

    Attributes:
        unique_id: The node whose record it was meant to be, when known.
    """

    def __init__(self, message: str, *, unique_id: str | None = None) -> None:
        self.unique_id = unique_id
        where = f"{unique_id}: " if unique_id else ""
        super().__init__(f"{where}{message}")


class UnresolvedUpstreamError(CacheKeysError, RuntimeError):
    """A node was checked while an upstream node of the same run had no outcome yet.

    Attributes:
        unique_id: The node being checked.
        upstream: The upstream node that is still pending.
    """

    def __init__(self, unique_id: str, upstream: str) -> None:
        self.unique_id = unique_id
        self.upstream = upstream
        super().__init__(
            f"{unique_id} was checked before its upstream {upstream} finished in this run. "
            "Call check() only once every upstream node of the run has been checked as a hit "
            "or recorded with record_success()/record_failure()."
        )


class PolicyError(CacheKeysError, ValueError):
    """A :class:`~dbt_cachekeys.CachePolicy` does not fit the keys it is used with."""
