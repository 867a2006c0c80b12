"""Concurrency keys on the Prefect server: one global concurrency limit per key.

A key's limit is in the code that builds the orchestrator, so a missing Prefect limit is
created with it (unlike a named ``concurrency``, which the user creates and sizes on the
server). An existing limit must say the same: a limit shared by several deployments that
disagree on its size would hold for none of them, so a different size, or a disabled limit
(Prefect ignores those), is a ``ValueError`` that says how to fix it, before anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence

from dbt_graph import ConcurrencyKey


def ensure_key_limits(keys: Sequence[ConcurrencyKey]) -> None:
    """Make sure every key's Prefect global concurrency limit exists, active, with its limit.

    Raises:
        ValueError: A limit of that name exists with another size, or is disabled.
    """
    if not keys:
        return
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        for key in keys:
            try:
                found = client.read_global_concurrency_limit_by_name(key.name)
            except ObjectNotFound:
                try:
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=key.name, limit=key.limit)
                    )
                    continue
                except ObjectAlreadyExists:  # another run created it just now
                    found = client.read_global_concurrency_limit_by_name(key.name)
            _check_matches(key, limit=found.limit, active=found.active)


def _check_matches(key: ConcurrencyKey, *, limit: int, active: bool) -> None:
    if limit != key.limit:
        raise ValueError(
            f"The Prefect global concurrency limit {key.name!r} has limit {limit}, but the "
            f"concurrency key {key.selector!r} says {key.limit}. Make them agree: "
            f"`prefect gcl update {key.name} --limit {key.limit}`, or change the key (or give "
            "it another name)."
        )
    if not active:
        raise ValueError(
            f"The Prefect global concurrency limit {key.name!r} of the concurrency key "
            f"{key.selector!r} is disabled, so it would not hold across flow runs. Enable it "
            f"(`prefect gcl enable {key.name}`), or remove the key."
        )
