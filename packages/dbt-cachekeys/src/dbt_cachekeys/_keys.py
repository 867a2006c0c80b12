"""Cache keys: what a node's result is a function of, hashed.

A node's *content* digest covers what the project defines for it: its own text, its config, its
relation, the macros it can run and the content of its upstream nodes. Its *key* adds what the
invocation decides: the target, the vars, extra dbt arguments, ``--full-refresh``, and
:data:`SCHEMA_VERSION`; in data-aware mode also the data fingerprints of its upstream sources.
Upstream nodes contribute their content (not their key) so that a vars change is explained
once, as "vars changed", and not once per upstream node.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dbt_graph import (
    Manifest,
    Node,
    ResourceType,
    SourceFingerprint,
    nearest_ancestors,
    topological_order,
)

from dbt_cachekeys._build_after import BuildAfter
from dbt_cachekeys._data import DataInput, DataInputs, direct_inputs
from dbt_cachekeys._digest import canonical_json, digest_of, sha256_hex
from dbt_cachekeys._macros import MacroIndex

logger = logging.getLogger("dbt_cachekeys")

#: Version of the key recipe and record layout. Bumped whenever either changes, so that keys and
#: records written by another version never match.
SCHEMA_VERSION = 1

#: Reads the file that defines a node (a seed's CSV) and returns its bytes; raises ``OSError``
#: when it cannot. :class:`~dbt_cachekeys.ProjectFiles` is the implementation for a local project.
FileReader = Callable[[Node], bytes]

#: Resource types that have no result of their own and take no part in keys.
_UNKEYED = frozenset(
    {
        ResourceType.EXPOSURE,
        ResourceType.METRIC,
        ResourceType.SEMANTIC_MODEL,
        ResourceType.SAVED_QUERY,
        ResourceType.ANALYSIS,
        ResourceType.OPERATION,
        ResourceType.SQL_OPERATION,
        ResourceType.MACRO,
        ResourceType.GROUP,
        ResourceType.DOC,
    }
)

_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, kw_only=True)
class Components:
    """The digests a key is made of, kept in records so a miss can be explained.

    Attributes:
        text: The node's own text: SQL or Python code, a seed's CSV bytes, a snapshot's own block,
            a unit test's definition (dbt's checksum of it).
        config: The resolved config, dbt's contract checksum when the contract is enforced, and
            resource-specific properties (a source's ``external``, ``quoting``...).
        relation: The relation name.
        macros: ``(macro id, digest of its text)`` for every macro the node can run, sorted.
        upstream: ``(node id, content digest)`` for every node it depends on, sorted.
        target: The target name and adapter type.
        vars: The effective vars.
        cli_args: Extra dbt arguments.
        full_refresh: Whether the invocation is a full refresh.
        data: In data-aware mode, the data fingerprint of every upstream source, by source
            (their digests are in the key; when and what was seen explain a miss).
    """

    text: str
    config: str
    relation: str
    macros: tuple[tuple[str, str], ...] = ()
    upstream: tuple[tuple[str, str], ...] = ()
    target: str = ""
    vars: str = ""
    cli_args: str = ""
    full_refresh: bool = False
    data: tuple[DataInput, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The components as JSON-ready data."""
        return {
            "text": self.text,
            "config": self.config,
            "relation": self.relation,
            "macros": dict(self.macros),
            "upstream": dict(self.upstream),
            "target": self.target,
            "vars": self.vars,
            "cli_args": self.cli_args,
            "full_refresh": self.full_refresh,
            "data": {d.source: d.to_dict() for d in self.data},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Components:
        """Rebuild components from :meth:`to_dict` output.

        Raises:
            TypeError, KeyError, ValueError: The data does not have that shape.
        """

        def pairs(name: str) -> tuple[tuple[str, str], ...]:
            # Records are written with sorted keys, so the order is kept as read. The digests
            # only explain a miss (hits compare the key), so their values are not checked.
            value = data[name]
            if not isinstance(value, dict):
                raise TypeError(f"{name} must map ids to digests")
            return tuple(value.items())

        strings = {
            name: data[name]
            for name in ("text", "config", "relation", "target", "vars", "cli_args")
        }
        if not all(isinstance(v, str) for v in strings.values()):
            raise TypeError("component digests must be strings")
        if not isinstance(data["full_refresh"], bool):
            raise TypeError("full_refresh must be a boolean")
        inputs = data.get("data", {})  # absent in records written before data-aware keys
        if not isinstance(inputs, dict):
            raise TypeError("data must map source ids to fingerprints")
        return cls(
            **strings,
            macros=pairs("macros"),
            upstream=pairs("upstream"),
            full_refresh=data["full_refresh"],
            data=tuple(DataInput.from_dict(uid, raw) for uid, raw in inputs.items()),
        )


@dataclass(frozen=True, kw_only=True)
class NodeKey:
    """The cache key of one node, and what is needed to explain and check it.

    Attributes:
        unique_id: The node.
        resource_type: Its resource type.
        materialized: Its materialization (``None`` for sources and unit tests).
        key: The cache key: a sha256 hex digest.
        content: The digest of what the project defines for the node (the key without the
            invocation's target, vars, arguments and full-refresh flag).
        components: The digests the key is made of.
        text_label: What the node's text is, for explanations (``SQL``, ``CSV``...).
        data_parents: The nearest upstream nodes that hold data of their own, seen through
            ephemeral models (sources excluded). Their run tokens decide whether the node's
            stored result is still current (see :class:`~dbt_cachekeys.CacheSession`).
        sources: Every source upstream of the node, through all nodes, for freshness TTLs
            and data-aware keys.
        problem: Why the node can never be a hit (its file could not be read), or ``None``.
        inputs: The node's direct inputs, seen through ephemeral models, each with the upstream
            sources whose new data counts as new data of that input: itself for a source,
            none for a node that stores its data (its run token tells), every upstream source
            for a view or other node whose data changes without running.
        build_after: Its ``freshness.build_after`` (data-aware mode, models only).
    """

    unique_id: str
    resource_type: ResourceType
    materialized: str | None
    key: str
    content: str
    components: Components
    text_label: str = "SQL"
    data_parents: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    problem: str | None = None
    inputs: tuple[tuple[str, tuple[str, ...]], ...] = ()
    build_after: BuildAfter | None = None

    @property
    def is_ephemeral(self) -> bool:
        """Whether the node is an ephemeral model (compiled into its children, never run)."""
        return self.resource_type is ResourceType.MODEL and self.materialized == "ephemeral"


@dataclass(frozen=True, kw_only=True, eq=False)
class KeySet(Mapping[str, NodeKey]):
    """The keys of every keyed node of a manifest, in topological order (parents first).

    Every node that can run or be depended on has a key: models (ephemeral ones too), seeds,
    snapshots, data tests, unit tests, functions and sources. Exposures, metrics, semantic models,
    saved queries and analyses have none.

    Attributes:
        nodes: The keys by unique_id, parents before children.
        data_aware: Whether the keys cover upstream sources' data fingerprints.
    """

    nodes: Mapping[str, NodeKey]
    data_aware: bool = False

    def __getitem__(self, unique_id: str) -> NodeKey:
        try:
            return self.nodes[unique_id]
        except KeyError:
            raise KeyError(
                f"{unique_id!r} has no cache key: it is not in the manifest or is of a type "
                "that is never cached (exposure, metric, analysis...)"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)


def compute_keys(
    manifest: Manifest,
    *,
    read_file: FileReader | None = None,
    target: str | None = None,
    vars: Mapping[str, Any] | None = None,
    full_refresh: bool = False,
    cli_args: Sequence[str] = (),
    fingerprints: Mapping[str, SourceFingerprint] | None = None,
) -> KeySet:
    """Compute the cache key of every keyed node of a manifest.

    Each seed file is read once through ``read_file`` and each macro is hashed once; the work is
    linear in the size of the manifest. Keys are sha256 digests of canonical JSON, identical in
    every process and on every machine for the same inputs.

    Args:
        manifest: A manifest parsed for this invocation's target and vars.
        read_file: Reads a seed's CSV (see :class:`~dbt_cachekeys.ProjectFiles`). Without it,
            seeds use dbt's sha256 checksum of the file from the manifest (enough for dbt Cloud,
            where the project is not on disk); a seed over 1 MiB, which dbt checksums by path
            only, then can never be a hit.
        target: The name of the target dbt runs against: :func:`dbt_graph.effective_target`
            (the run's, ``DBT_TARGET``, or the profile's ``target:`` rendered), so a run that
            names the default target and one that does not share keys.
        vars: The effective vars: the project's ``vars:`` overlaid with ``--vars``. Every key
            depends on them, since any node or macro may read any var.
        full_refresh: Whether the invocation is a ``--full-refresh``.
        cli_args: Further dbt arguments that can change what is built (``--empty``,
            ``--event-time-start``...), as passed.
        fingerprints: Data-aware mode: the data fingerprints of the sources upstream of the
            run, taken before it reads them. Each node's key then covers those of every source
            upstream of it; a source without a usable fingerprint (or missing here) gets a
            random token, so its descendants always miss. ``None``: keys cover code only.

    Returns:
        The keys, parents before children.

    Raises:
        dbt_graph.CycleError: The manifest's dependencies form a cycle.

    Example:
        >>> from dbt_graph.testing import ManifestBuilder
        >>> m = ManifestBuilder().model("stg").model("mart", depends_on=["stg"]).build()
        >>> dev = compute_keys(m, target="dev")
        >>> prod = compute_keys(m, target="prod")
        >>> dev["model.p.mart"].key == prod["model.p.mart"].key
        False
        >>> dev["model.p.mart"].content == prod["model.p.mart"].content
        True
    """
    env = {
        "target": digest_of([target, manifest.adapter_type]),
        "vars": digest_of(vars or {}),
        "cli_args": digest_of(list(cli_args)),
        "full_refresh": full_refresh,
    }
    env_json = canonical_json([SCHEMA_VERSION, env])
    data = DataInputs(fingerprints) if fingerprints is not None else None
    macros = MacroIndex(manifest.macros)
    keyed = {uid: n for uid, n in manifest.nodes.items() if n.resource_type not in _UNKEYED}
    keyed_parents = {uid: tuple(p for p in manifest.parent_map[uid] if p in keyed) for uid in keyed}
    ephemeral = {uid for uid, n in keyed.items() if n.is_ephemeral}
    data_parents = nearest_ancestors(
        keyed_parents,
        keyed,
        keep=lambda p: keyed[p].resource_type is not ResourceType.SOURCE and p not in ephemeral,
        through=ephemeral.__contains__,
    )
    contents: dict[str, str] = {}
    sources: dict[str, frozenset[str]] = {}
    inputs: dict[str, tuple[tuple[str, tuple[str, ...]], ...]] = {}
    out: dict[str, NodeKey] = {}
    for uid in topological_order(keyed_parents):
        node = keyed[uid]
        parents = sorted(dict.fromkeys(node.depends_on))
        text, label, problem = _text(node, read_file)
        macro_pairs, macro_digest = macros.digests(_macro_roots(node, macros))
        upstream = tuple((p, contents.get(p, "")) for p in parents)
        sources[uid] = _sources(keyed_parents[uid], keyed, sources)
        inputs[uid] = direct_inputs(parents, keyed, inputs, sources)
        data_inputs = data.of(sources[uid]) if data is not None else ()
        components = Components(
            text=text,
            config=digest_of(
                {
                    "config": node.config,
                    "contract": node.contract_checksum if node.contract_enforced else None,
                    "properties": node.properties,
                }
            ),
            relation=sha256_hex(node.relation_name or ""),
            macros=macro_pairs,
            upstream=upstream,
            data=data_inputs,
            **env,
        )
        content = digest_of(
            [
                uid,
                node.resource_type.value,
                components.text,
                components.config,
                components.relation,
                macro_digest,
                upstream,
            ]
        )
        contents[uid] = content
        key = f"{content}|{env_json}"
        if data is not None and data_inputs:
            key += f"|{data.key_part(data_inputs)}"
        out[uid] = NodeKey(
            unique_id=uid,
            resource_type=node.resource_type,
            materialized=node.materialized,
            key=sha256_hex(key),
            content=content,
            components=components,
            text_label=label,
            data_parents=tuple(sorted(data_parents[uid])),
            sources=tuple(sorted(sources[uid])),
            problem=problem,
            inputs=inputs[uid],
            build_after=(
                BuildAfter.from_config(node.config)
                if data is not None and node.resource_type is ResourceType.MODEL
                else None
            ),
        )
    return KeySet(nodes=out, data_aware=data is not None)


def _text(node: Node, read_file: FileReader | None) -> tuple[str, str, str | None]:
    """The digest of the node's own text, what to call it, and a problem if it is unknown."""
    if node.resource_type is ResourceType.SEED:
        if read_file is not None:
            try:
                return sha256_hex(read_file(node)), "CSV", None
            except OSError as exc:
                problem = f"cannot read `{node.original_file_path}` ({exc})"
                logger.warning("%s: %s; it will run every time", node.unique_id, problem)
                return sha256_hex(f"\0unreadable {node.original_file_path}"), "CSV", problem
        if node.checksum and _SHA256.fullmatch(node.checksum):
            return sha256_hex(f"\0checksum {node.checksum}"), "CSV", None
        problem = f"dbt has no content checksum of `{node.original_file_path}` and no file reader"
        return sha256_hex(f"\0unknown {node.original_file_path}"), "CSV", problem
    if node.resource_type is ResourceType.UNIT_TEST:
        # A unit test's given/expect rows are not in raw_code; dbt's checksum covers them.
        return sha256_hex(f"\0checksum {node.checksum}"), "unit test definition", None
    label = "Python code" if node.language == "python" else "SQL"
    return sha256_hex(node.raw_code), label, None


def _macro_roots(node: Node, macros: MacroIndex) -> tuple[str, ...]:
    materialized = "unit" if node.resource_type is ResourceType.UNIT_TEST else node.materialized
    implementations = macros.materializations(materialized) if materialized else ()
    return (*node.depends_on_macros, *implementations)


def _sources(
    parents: Sequence[str], keyed: Mapping[str, Node], known: Mapping[str, frozenset[str]]
) -> frozenset[str]:
    found: set[str] = set()
    for parent in parents:
        if keyed[parent].resource_type is ResourceType.SOURCE:
            found.add(parent)
        found |= known[parent]
    return frozenset(found)
