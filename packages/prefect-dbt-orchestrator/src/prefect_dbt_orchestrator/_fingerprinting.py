"""Data-aware caching: the data fingerprints of the sources a call reads, taken before it runs.

Fingerprints are taken once per ``run_build()``/``plan()`` call, after selection and before
any node runs, for the sources upstream of the planned nodes only. Data that lands between
the fingerprint and the build is then in the build but not in the records: one needless
rebuild next time, never a stale hit. A full refresh takes them too: nothing is served from
cache then, but the records it writes say what it read. An executor without
``source_fingerprints`` (the dbt Cloud executor) gives every source an unusable fingerprint,
so everything downstream of a source runs, and ``plan()`` says why.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from dbt_graph import (
    Executor,
    FingerprintMethod,
    Manifest,
    SourceFingerprint,
    upstream_sources,
)

logger = logging.getLogger("prefect_dbt_orchestrator.cache")


def take_fingerprints(
    executor: Executor,
    manifest: Manifest,
    nodes: Iterable[str],
    *,
    target: str | None,
    vars: Mapping[str, Any] | None,
) -> dict[str, SourceFingerprint]:
    """The data fingerprint of every source upstream of ``nodes``.

    Args:
        executor: Who runs dbt; asked through its optional ``source_fingerprints`` method.
        manifest: The call's manifest.
        nodes: The nodes the call plans to run.
        target: The call's target (``None``: the executor's default).
        vars: The call's vars.

    Returns:
        One fingerprint per upstream source; ``value=None`` (counted as changed) when there
        is none, with the reason in ``detail``.

    Example:
        >>> from dbt_graph.testing import FakeExecutor, ManifestBuilder
        >>> m = (ManifestBuilder().source("app", "orders")
        ...      .model("stg", depends_on=["app.orders"]).build())
        >>> found = take_fingerprints(object(), m, ["model.p.stg"], target=None, vars=None)
        >>> found["source.p.app.orders"].detail
        'object cannot fingerprint source data'
        >>> executor = FakeExecutor(m, fingerprints={"source.p.app.orders": "7 rows"})
        >>> take_fingerprints(executor, m, ["model.p.stg"], target=None, vars=None)[
        ...     "source.p.app.orders"].value
        '7 rows'
    """
    sources = sorted(upstream_sources(manifest, nodes))
    if not sources:
        return {}
    fingerprint = getattr(executor, "source_fingerprints", None)
    if fingerprint is None:
        name = type(executor).__name__
        logger.warning(
            "%s cannot fingerprint source data: with data-aware caching, every node downstream "
            "of a source runs every time",
            name,
        )
        return _without(sources, f"{name} cannot fingerprint source data")
    found = dict(fingerprint(sources, target=target, vars=vars))
    missing = [uid for uid in sources if uid not in found]
    found.update(_without(missing, "the executor returned no fingerprint for it"))
    return found


def _without(sources: Iterable[str], why: str) -> dict[str, SourceFingerprint]:
    now = datetime.now(UTC)
    return {
        uid: SourceFingerprint(
            unique_id=uid, value=None, method=FingerprintMethod.NONE, observed_at=now, detail=why
        )
        for uid in sources
    }
