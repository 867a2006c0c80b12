"""Reading manifest.json into a :class:`Manifest`.

Pydantic validates the external JSON at this edge; everything past :func:`parse_manifest` speaks
the frozen domain types of :mod:`dbt_graph._nodes`.
"""

from __future__ import annotations

import gc
import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dbt_graph._errors import ManifestError
from dbt_graph._nodes import Column, FreshnessThreshold, Group, Macro, Node, ResourceType

_M = TypeVar("_M", bound=BaseModel)

#: Manifest schema versions this package reads.
SUPPORTED_SCHEMA_VERSIONS = range(10, 13)

_SCHEMA_RE = re.compile(r"/manifest/v(\d+)\.json$")

#: Resource-specific fields kept verbatim in :attr:`Node.properties` (for ``state:modified``).
_PROPERTY_KEYS = (
    "deprecation_date",
    "identifier",
    "quoting",
    "external",
    "freshness",
    "type",
    "owner",
    "maturity",
    "url",
    "label",
    "model",
    "defaults",
    "entities",
    "dimensions",
    "measures",
    "primary_entity",
    "query_params",
    "exports",
    "arguments",
    "returns",
)

#: Manifest sections whose entries become :class:`Node` objects.
_NODE_SECTIONS = (
    "nodes",
    "sources",
    "unit_tests",
    "exposures",
    "metrics",
    "semantic_models",
    "saved_queries",
    "functions",
)


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


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _RawDependsOn(_Lenient):
    nodes: list[str] = Field(default_factory=list)
    macros: list[str] = Field(default_factory=list)


class _RawChecksum(_Lenient):
    name: str = ""
    checksum: str = ""


class _RawColumn(_Lenient):
    name: str
    description: str | None = ""
    data_type: str | None = None
    constraints: list[Any] = Field(default_factory=list)


class _RawThreshold(_Lenient):
    count: int | None = None
    period: str | None = None


class _RawFreshness(_Lenient):
    warn_after: _RawThreshold | None = None
    error_after: _RawThreshold | None = None


class _RawTestMetadata(_Lenient):
    name: str | None = None


class _RawNode(_Lenient):
    unique_id: str
    name: str
    resource_type: str
    package_name: str
    original_file_path: str = ""
    path: str = ""
    fqn: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    depends_on: _RawDependsOn = Field(default_factory=_RawDependsOn)
    config: dict[str, Any] = Field(default_factory=dict)
    unrendered_config: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)
    columns: dict[str, _RawColumn] = Field(default_factory=dict)
    description: str | None = ""
    checksum: _RawChecksum | str | None = None
    raw_code: str | None = None
    compiled_code: str | None = None
    language: str | None = None
    database: str | None = None
    schema_: str | None = Field(default=None, alias="schema")
    alias: str | None = None
    identifier: str | None = None
    relation_name: str | None = None
    version: str | int | float | None = None
    latest_version: str | int | float | None = None
    access: str | None = None
    group: str | None = None
    patch_path: str | None = None
    contract: dict[str, Any] | None = None
    attached_node: str | None = None
    test_metadata: _RawTestMetadata | None = None
    column_name: str | None = None
    source_name: str | None = None
    loaded_at_field: str | None = None
    freshness: _RawFreshness | None = None


class _RawMacro(_Lenient):
    unique_id: str
    name: str
    package_name: str
    original_file_path: str = ""
    macro_sql: str = ""
    depends_on: _RawDependsOn = Field(default_factory=_RawDependsOn)


class _RawGroup(_Lenient):
    unique_id: str
    name: str
    package_name: str
    owner: dict[str, Any] = Field(default_factory=dict)


class _RawMetadata(_Lenient):
    dbt_schema_version: str
    dbt_version: str = ""
    project_name: str | None = None
    adapter_type: str | None = None
    generated_at: str | None = None
    invocation_id: str | None = None


def load_manifest(path: str | Path) -> Manifest:
    """Read a dbt ``manifest.json`` (schema v10 to v12).

    Args:
        path: The manifest file, usually ``<project>/target/manifest.json``.

    Returns:
        The parsed manifest.

    Raises:
        ManifestError: The file is missing, is not JSON, has an unsupported schema version or a
            malformed field. The message names the file and the field and says what to do.

    Example:
        >>> manifest = load_manifest("target/manifest.json")  # doctest: +SKIP
        >>> manifest.node("model.shop.orders").materialized  # doctest: +SKIP
        'table'
    """
    file = Path(path)
    try:
        text = file.read_bytes()
    except FileNotFoundError:
        raise ManifestError(
            "manifest.json not found. Run `dbt parse` to create it, or pass the path of an "
            "existing manifest.",
            path=str(file),
        ) from None
    except OSError as exc:
        raise ManifestError(f"cannot read the manifest: {exc}", path=str(file)) from exc
    with _collector_paused():
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(
                f"the file is not valid JSON ({exc}). It may be truncated: run `dbt parse` again.",
                path=str(file),
            ) from exc
        return parse_manifest(data, path=file)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a manifest is decoded and built.

    That allocates millions of containers and no reference cycles, and the collector would
    traverse them again and again as they pile up: half the time of loading a 10,000-node
    manifest (``benchmarks/bench_graph.py --big-plan``). It runs again afterwards as before.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def parse_manifest(data: Any, *, path: str | Path | None = None) -> Manifest:
    """Build a :class:`Manifest` from already decoded manifest JSON.

    Args:
        data: The decoded JSON object.
        path: Where it came from, used in error messages.

    Raises:
        ManifestError: As for :func:`load_manifest`.
    """
    where = str(path) if path is not None else None
    if not isinstance(data, dict):
        raise ManifestError(
            f"expected a JSON object at the top level, got {type(data).__name__}", path=where
        )
    metadata = _parse_metadata(data.get("metadata"), where)

    nodes: dict[str, Node] = {}
    for section in _NODE_SECTIONS:
        for uid, raw in _section(data, section, where).items():
            nodes[uid] = _to_node(
                _validate(_RawNode, raw, where, f"{section}[{uid!r}]"), where, raw
            )

    macros = {
        uid: _to_macro(_validate(_RawMacro, raw, where, f"macros[{uid!r}]"))
        for uid, raw in _section(data, "macros", where).items()
    }
    groups = {
        uid: Group(unique_id=g.unique_id, name=g.name, package_name=g.package_name, owner=g.owner)
        for uid, raw in _section(data, "groups", where).items()
        for g in [_validate(_RawGroup, raw, where, f"groups[{uid!r}]")]
    }
    selectors: dict[str, Mapping[str, Any]] = {}
    for name, raw in _section(data, "selectors", where).items():
        if not isinstance(raw, dict) or "definition" not in raw:
            raise ManifestError(
                "a selector must be an object with a 'definition'. Fix selectors.yml and run "
                "`dbt parse` again.",
                path=where,
                field=f"selectors[{name!r}]",
            )
        selectors[name] = raw
    disabled: dict[str, tuple[Node, ...]] = {}
    for uid, entries in _section(data, "disabled", where).items():
        if not isinstance(entries, list):
            raise ManifestError(
                "expected a list of disabled resources", path=where, field=f"disabled[{uid!r}]"
            )
        disabled[uid] = tuple(
            _to_node(_validate(_RawNode, raw, where, f"disabled[{uid!r}][{i}]"), where, raw)
            for i, raw in enumerate(entries)
        )
    return Manifest(
        metadata=metadata,
        nodes=nodes,
        macros=macros,
        groups=groups,
        selectors=selectors,
        disabled=disabled,
        path=Path(path) if path is not None else None,
    )


def _parse_metadata(raw: Any, where: str | None) -> ManifestMetadata:
    meta = _validate(_RawMetadata, raw, where, "metadata")
    match = _SCHEMA_RE.search(meta.dbt_schema_version)
    if match is None:
        raise ManifestError(
            f"{meta.dbt_schema_version!r} is not a dbt manifest schema. Is this file a "
            "manifest.json written by dbt?",
            path=where,
            field="metadata.dbt_schema_version",
        )
    version = int(match.group(1))
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        lo, hi = SUPPORTED_SCHEMA_VERSIONS[0], SUPPORTED_SCHEMA_VERSIONS[-1]
        raise ManifestError(
            f"manifest schema v{version} is not supported (v{lo} to v{hi} are). Re-create it "
            "with a dbt-core version between 1.6 and 1.11, or upgrade dbt-graph.",
            path=where,
            field="metadata.dbt_schema_version",
        )
    return ManifestMetadata(
        schema_version=version,
        dbt_version=meta.dbt_version,
        project_name=meta.project_name or "",
        adapter_type=meta.adapter_type,
        generated_at=meta.generated_at,
        invocation_id=meta.invocation_id,
    )


def _section(data: dict[str, Any], name: str, where: str | None) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ManifestError(
            f"expected an object mapping ids to entries, got {type(value).__name__}. The file "
            "is damaged: run `dbt parse` again.",
            path=where,
            field=name,
        )
    return value


def _validate(model: type[_M], raw: Any, where: str | None, loc: str) -> _M:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        sub = ".".join(str(p) for p in first["loc"])
        field_path = f"{loc}.{sub}" if sub else loc
        raise ManifestError(
            f"malformed manifest field: {first['msg']}. The file is damaged or was not written "
            "by dbt: run `dbt parse` again.",
            path=where,
            field=field_path,
        ) from None


def _threshold(raw: _RawThreshold | None) -> FreshnessThreshold | None:
    if raw is None or raw.count is None or raw.period is None:
        return None
    return FreshnessThreshold(count=raw.count, period=raw.period)


def _version(value: str | int | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _to_node(raw: _RawNode, where: str | None, data: Any = None) -> Node:
    try:
        resource_type = ResourceType(raw.resource_type)
    except ValueError:
        known = ", ".join(t.value for t in ResourceType)
        raise ManifestError(
            f"unknown resource type {raw.resource_type!r} (known: {known}). This manifest was "
            "written by a newer dbt than dbt-graph understands: upgrade dbt-graph.",
            path=where,
            field=f"{raw.unique_id}.resource_type",
        ) from None
    contract = raw.contract or {}
    config = raw.config
    meta = raw.meta or config.get("meta") or {}
    freshness = raw.freshness
    if freshness is None and isinstance(config.get("freshness"), dict):
        freshness = _RawFreshness.model_validate(config["freshness"])
    return Node(
        unique_id=raw.unique_id,
        name=raw.name,
        resource_type=resource_type,
        package_name=raw.package_name,
        original_file_path=raw.original_file_path,
        path=raw.path,
        fqn=tuple(raw.fqn),
        tags=tuple(raw.tags or config.get("tags") or ()),
        depends_on=tuple(raw.depends_on.nodes),
        depends_on_macros=tuple(raw.depends_on.macros),
        config=config,
        unrendered_config=raw.unrendered_config,
        meta=meta,
        columns={
            name: Column(
                name=col.name,
                description=col.description or "",
                data_type=col.data_type,
                constraints=tuple(json.dumps(c, sort_keys=True) for c in col.constraints),
            )
            for name, col in raw.columns.items()
        },
        description=raw.description or "",
        checksum=raw.checksum.checksum if isinstance(raw.checksum, _RawChecksum) else raw.checksum,
        raw_code=raw.raw_code or "",
        compiled_code=raw.compiled_code,
        language=raw.language,
        database=raw.database,
        schema=raw.schema_,
        alias=raw.alias or raw.identifier,
        relation_name=raw.relation_name,
        version=_version(raw.version),
        latest_version=_version(raw.latest_version),
        access=raw.access or config.get("access"),
        group=raw.group or config.get("group"),
        patch_path=raw.patch_path,
        contract_enforced=bool(
            contract.get("enforced") or (config.get("contract") or {}).get("enforced")
        ),
        contract_checksum=contract.get("checksum"),
        attached_node=raw.attached_node,
        test_name=raw.test_metadata.name if raw.test_metadata else None,
        column_name=raw.column_name,
        source_name=raw.source_name,
        loaded_at_field=raw.loaded_at_field,
        freshness_warn_after=_threshold(freshness.warn_after) if freshness else None,
        freshness_error_after=_threshold(freshness.error_after) if freshness else None,
        properties=(
            {key: data[key] for key in _PROPERTY_KEYS if key in data}
            if isinstance(data, dict)
            else {}
        ),
    )


def _to_macro(raw: _RawMacro) -> Macro:
    return Macro(
        unique_id=raw.unique_id,
        name=raw.name,
        package_name=raw.package_name,
        original_file_path=raw.original_file_path,
        macro_sql=raw.macro_sql,
        depends_on_macros=tuple(raw.depends_on.macros),
    )
