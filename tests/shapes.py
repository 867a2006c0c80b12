"""Manifest shapes several tests build."""

from __future__ import annotations

from dbt_graph.testing import ManifestBuilder


def wide(models: int) -> ManifestBuilder:
    """One seed ``raw``, ``models`` models ``m<i>`` reading it, a ``not_null_m<i>`` test on each:
    ``2 * models + 1`` nodes, all but the seed in one wave each."""
    builder = ManifestBuilder().seed("raw")
    for i in range(models):
        builder.model(f"m{i}", depends_on=["raw"]).test(f"not_null_m{i}", depends_on=[f"m{i}"])
    return builder
