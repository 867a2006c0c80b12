"""The parsed manifest: :class:`Manifest` and :class:`ManifestMetadata`.

Frozen domain objects only; reading manifest.json into them is :mod:`dbt_graph._loader`, and the
shape of the JSON it validates is :mod:`dbt_graph._wire`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from dbt_graph._nodes import Group, Macro, Node, ResourceType


@dataclass(frozen=True, kw_only=True)
class ManifestMetadata:
    """The manifest's ``metadata`` block."""

    schema_version: int
    dbt_version: str = ""
    project_name: str = ""
    adapter_type: str | None = None
    generated_at: str | None = None
    invocation_id: str | None = None


@dataclass(frozen=True, kw_only=True, eq=False)
class Manifest:
    """A parsed dbt manifest.

    Attributes:
        metadata: Schema version, dbt version, root project name, adapter type.
        nodes: Every selectable resource by unique_id: models, seeds, snapshots, tests, unit tests,
            sources, exposures, metrics, semantic models, saved queries, analyses, operations,
            functions.
        macros: Macros by unique_id.
        groups: Groups by unique_id.
        selectors: YAML selectors by name, as dbt stores them (``name``, ``definition``,
            ``default``, ``description``).
        disabled: Disabled resources by unique_id (dbt keeps a list per id).
        path: The file this manifest was read from, if any.
    """

    metadata: ManifestMetadata
    nodes: Mapping[str, Node]
    macros: Mapping[str, Macro] = field(default_factory=dict)
    groups: Mapping[str, Group] = field(default_factory=dict)
    selectors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    disabled: Mapping[str, tuple[Node, ...]] = field(default_factory=dict)
    path: Path | None = None

    @property
    def project_name(self) -> str:
        """The root project's name."""
        return self.metadata.project_name

    @property
    def adapter_type(self) -> str | None:
        """The adapter the manifest was parsed for (``duckdb``, ``postgres``...)."""
        return self.metadata.adapter_type

    @cached_property
    def parent_map(self) -> Mapping[str, tuple[str, ...]]:
        """unique_id -> the unique_ids it depends on (only ids present in :attr:`nodes`)."""
        nodes = self.nodes
        return {
            uid: tuple(dict.fromkeys(p for p in node.depends_on if p in nodes))
            for uid, node in nodes.items()
        }

    @cached_property
    def child_map(self) -> Mapping[str, tuple[str, ...]]:
        """unique_id -> the unique_ids that depend on it."""
        children: dict[str, list[str]] = {uid: [] for uid in self.nodes}
        for uid, parents in self.parent_map.items():
            for parent in parents:
                children[parent].append(uid)
        return {uid: tuple(kids) for uid, kids in children.items()}

    def node(self, unique_id: str) -> Node:
        """The node with this unique_id.

        Raises:
            KeyError: with a message naming the id, when it is not in the manifest.
        """
        try:
            return self.nodes[unique_id]
        except KeyError:
            raise KeyError(f"{unique_id!r} is not a node of this manifest") from None

    def nodes_of_type(self, *types: ResourceType) -> tuple[Node, ...]:
        """All nodes of the given resource types, in manifest order."""
        wanted = frozenset(types)
        return tuple(n for n in self.nodes.values() if n.resource_type in wanted)
