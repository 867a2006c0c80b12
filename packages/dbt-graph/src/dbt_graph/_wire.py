"""The wire format of manifest.json: lenient pydantic models of the fields dbt-graph reads.

They validate external JSON at the edge and are never handed out: :mod:`dbt_graph._loader`
turns them into the frozen domain types right away. Unknown fields are ignored, so manifests of
newer dbt versions with extra fields still load.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class RawDependsOn(_Lenient):
    nodes: list[str] = Field(default_factory=list)
    macros: list[str] = Field(default_factory=list)


class RawChecksum(_Lenient):
    name: str = ""
    checksum: str = ""


class RawColumn(_Lenient):
    name: str
    description: str | None = ""
    data_type: str | None = None
    constraints: list[Any] = Field(default_factory=list)


class RawThreshold(_Lenient):
    count: int | None = None
    period: str | None = None


class RawFreshness(_Lenient):
    warn_after: RawThreshold | None = None
    error_after: RawThreshold | None = None


class RawTestMetadata(_Lenient):
    name: str | None = None


class RawNode(_Lenient):
    unique_id: str
    name: str
    resource_type: str
    package_name: str
    original_file_path: str = ""
    path: str = ""
    fqn: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    depends_on: RawDependsOn = Field(default_factory=RawDependsOn)
    config: dict[str, Any] = Field(default_factory=dict)
    unrendered_config: dict[str, Any] = Field(default_factory=dict)
    meta: dict[str, Any] = Field(default_factory=dict)
    columns: dict[str, RawColumn] = Field(default_factory=dict)
    description: str | None = ""
    checksum: RawChecksum | str | None = None
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
    test_metadata: RawTestMetadata | None = None
    column_name: str | None = None
    source_name: str | None = None
    loaded_at_field: str | None = None
    freshness: RawFreshness | None = None


class RawMacro(_Lenient):
    unique_id: str
    name: str
    package_name: str
    original_file_path: str = ""
    macro_sql: str = ""
    depends_on: RawDependsOn = Field(default_factory=RawDependsOn)


class RawGroup(_Lenient):
    unique_id: str
    name: str
    package_name: str
    owner: dict[str, Any] = Field(default_factory=dict)


class RawMetadata(_Lenient):
    dbt_schema_version: str
    dbt_version: str = ""
    project_name: str | None = None
    adapter_type: str | None = None
    generated_at: str | None = None
    invocation_id: str | None = None
