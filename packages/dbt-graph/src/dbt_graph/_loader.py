"""Reading manifest.json into a :class:`~dbt_graph.Manifest`.

Pydantic validates the external JSON at this edge (:mod:`dbt_graph._wire`); everything past
:func:`parse_manifest` speaks the frozen domain types of :mod:`dbt_graph._nodes` and
:mod:`dbt_graph._manifest`.
"""

from __future__ import annotations

import gc
import hashlib
import json
import re
import weakref
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import orjson
from pydantic import BaseModel, ValidationError

from dbt_graph._errors import ManifestError
from dbt_graph._manifest import Manifest, ManifestMetadata
from dbt_graph._nodes import Column, FreshnessThreshold, Group, Macro, Node, ResourceType
from dbt_graph._wire import (
    RawChecksum,
    RawFreshness,
    RawGroup,
    RawMacro,
    RawMetadata,
    RawNode,
    RawThreshold,
)

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


def load_manifest(path: str | Path) -> Manifest:
    """Read a dbt ``manifest.json`` (schema v10 to v12).

    Args:
        path: The manifest file, usually ``<project>/target/manifest.json``.

    Returns:
        The parsed manifest. While a manifest loaded from the same path with the same content
        is still in use, that same (immutable) object: the orchestrator and the executor of
        one build both read the file, and a second copy costs as much memory as the first.

    Raises:
        ManifestError: The file is missing, is not JSON, has an unsupported schema version or a
            malformed field. The message names the file and the field and says what to do.

    Example:
        >>> import tempfile
        >>> from dbt_graph.testing import ManifestBuilder
        >>> target = tempfile.TemporaryDirectory()
        >>> path = ManifestBuilder().model("orders", materialized="table").write(target.name)
        >>> manifest = load_manifest(path)  # usually "target/manifest.json"
        >>> manifest.node("model.p.orders").materialized
        'table'
        >>> target.cleanup()
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
    # The content's digest, not the file's mtime: a manifest rewritten within the clock's
    # resolution is never mistaken for the old one (hashing costs ~5 % of parsing).
    key = (str(file), hashlib.sha1(text, usedforsecurity=False).digest())
    live = _LIVE.get(key)
    if live is not None:
        return live
    with _collector_paused():
        try:
            data = _decode(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ManifestError(
                f"the file is not valid JSON ({exc}). It may be truncated: run `dbt parse` again.",
                path=str(file),
            ) from exc
        manifest = parse_manifest(data, path=file)
    _LIVE[key] = manifest
    return manifest


def _decode(text: bytes) -> Any:
    """The JSON document in ``text``: orjson (twice as fast on a large manifest), else the
    standard library, which also reads what orjson refuses (``NaN``, as dbt writes a YAML
    ``.nan``) and words the error. (orjson reads an integer beyond 64 bits as a float: only a
    user's ``meta`` could hold one.)"""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


#: Manifests in use, by the path they were loaded from and their file's digest.
_LIVE: weakref.WeakValueDictionary[tuple[str, bytes], Manifest] = weakref.WeakValueDictionary()


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
            nodes[uid] = _to_node(_validate(RawNode, raw, where, f"{section}[{uid!r}]"), where, raw)

    macros = {
        uid: _to_macro(_validate(RawMacro, raw, where, f"macros[{uid!r}]"))
        for uid, raw in _section(data, "macros", where).items()
    }
    groups = {
        uid: Group(unique_id=g.unique_id, name=g.name, package_name=g.package_name, owner=g.owner)
        for uid, raw in _section(data, "groups", where).items()
        for g in [_validate(RawGroup, raw, where, f"groups[{uid!r}]")]
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
            _to_node(_validate(RawNode, raw, where, f"disabled[{uid!r}][{i}]"), where, raw)
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
    meta = _validate(RawMetadata, raw, where, "metadata")
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


def _threshold(raw: RawThreshold | None) -> FreshnessThreshold | None:
    if raw is None or raw.count is None or raw.period is None:
        return None
    return FreshnessThreshold(count=raw.count, period=raw.period)


def _version(value: str | int | float | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


def _to_node(raw: RawNode, where: str | None, data: Any = None) -> Node:
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
        freshness = RawFreshness.model_validate(config["freshness"])
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
        checksum=raw.checksum.checksum if isinstance(raw.checksum, RawChecksum) else raw.checksum,
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


def _to_macro(raw: RawMacro) -> Macro:
    return Macro(
        unique_id=raw.unique_id,
        name=raw.name,
        package_name=raw.package_name,
        original_file_path=raw.original_file_path,
        macro_sql=raw.macro_sql,
        depends_on_macros=tuple(raw.depends_on.macros),
    )
