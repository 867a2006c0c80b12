"""Domain objects for what a dbt manifest holds: nodes, macros, groups.

They are frozen, keyword-only dataclasses: hashable by identity fields, picklable, and free of
any knowledge of manifest.json's layout (that lives in :mod:`dbt_graph._manifest`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from typing import Any


class ResourceType(StrEnum):
    """Every resource type a dbt manifest can contain."""

    MODEL = "model"
    SEED = "seed"
    SNAPSHOT = "snapshot"
    TEST = "test"
    UNIT_TEST = "unit_test"
    SOURCE = "source"
    EXPOSURE = "exposure"
    METRIC = "metric"
    SEMANTIC_MODEL = "semantic_model"
    SAVED_QUERY = "saved_query"
    ANALYSIS = "analysis"
    OPERATION = "operation"
    SQL_OPERATION = "sql_operation"
    FUNCTION = "function"
    MACRO = "macro"
    GROUP = "group"
    DOC = "doc"


#: Resource types that materialise something in the warehouse when executed.
RUNNABLE_TYPES = frozenset({ResourceType.MODEL, ResourceType.SEED, ResourceType.SNAPSHOT})
#: Resource types that are tests (data tests and unit tests).
TEST_TYPES = frozenset({ResourceType.TEST, ResourceType.UNIT_TEST})

_PERIOD_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


@dataclass(frozen=True, kw_only=True)
class FreshnessThreshold:
    """A source freshness threshold such as ``warn_after: {count: 12, period: hour}``."""

    count: int
    period: str

    def as_timedelta(self) -> timedelta:
        """The threshold as a duration.

        >>> FreshnessThreshold(count=12, period="hour").as_timedelta()
        datetime.timedelta(seconds=43200)
        """
        return timedelta(seconds=self.count * _PERIOD_SECONDS[self.period])


@dataclass(frozen=True, kw_only=True)
class Column:
    """A documented column of a node."""

    name: str
    description: str = ""
    data_type: str | None = None
    constraints: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Node:
    """One resource of a dbt project: model, seed, snapshot, test, source, exposure, ...

    Only ``unique_id`` takes part in equality and hashing; two ``Node`` objects describing the
    same resource from two manifests compare equal, so state comparisons use explicit fields.

    Attributes:
        unique_id: dbt's id, e.g. ``model.shop.orders`` or ``model.shop.customers.v2``.
        name: The node's name (without version suffix).
        resource_type: What kind of resource this is.
        package_name: The dbt package that defines it.
        original_file_path: Path of the defining file, relative to the *package* root.
        path: Path relative to the resource-type directory of the package.
        fqn: dbt's fully qualified name.
        depends_on: unique_ids of the nodes this one depends on (dbt's ``depends_on.nodes``).
        depends_on_macros: unique_ids of the macros referenced directly.
        config: The resolved config (``hash=False``; treat as read-only).
        unrendered_config: Config as written, before Jinja rendering.
        checksum: dbt's checksum of the node's own text (``None`` where dbt has none).
        raw_code: The node's own source text (SQL, Python or CSV-less seeds have ``""``).
        attached_node: For generic tests, the node the test is attached to.
        test_name: For generic tests, the test's macro name (``unique``, ``relationships``...).
        source_name: For sources, the source's name (``shop_app`` in ``shop_app.orders``).
        freshness_warn_after: For sources, the warn threshold, if any.
        freshness_error_after: For sources, the error threshold, if any.
        properties: Resource-specific manifest fields that have no attribute of their own, as
            raw JSON: a model's ``deprecation_date``, a source's ``identifier``, ``quoting``,
            ``external`` and ``freshness``, an exposure's ``type``, ``owner``, ``maturity``,
            ``url`` and ``label``, a semantic model's ``entities``... ``state:modified``
            compares them.
    """

    unique_id: str
    name: str
    resource_type: ResourceType
    package_name: str
    original_file_path: str = ""
    path: str = ""
    fqn: tuple[str, ...] = ()
    tags: tuple[str, ...] = field(default=(), compare=False)
    depends_on: tuple[str, ...] = field(default=(), compare=False)
    depends_on_macros: tuple[str, ...] = field(default=(), compare=False)
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    unrendered_config: Mapping[str, Any] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    meta: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)
    columns: Mapping[str, Column] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )
    description: str = field(default="", compare=False, repr=False)
    checksum: str | None = field(default=None, compare=False)
    raw_code: str = field(default="", compare=False, repr=False)
    compiled_code: str | None = field(default=None, compare=False, repr=False)
    language: str | None = field(default=None, compare=False)
    database: str | None = field(default=None, compare=False)
    schema: str | None = field(default=None, compare=False)
    alias: str | None = field(default=None, compare=False)
    relation_name: str | None = field(default=None, compare=False)
    version: str | None = field(default=None, compare=False)
    latest_version: str | None = field(default=None, compare=False)
    access: str | None = field(default=None, compare=False)
    group: str | None = field(default=None, compare=False)
    patch_path: str | None = field(default=None, compare=False)
    contract_enforced: bool = field(default=False, compare=False)
    contract_checksum: str | None = field(default=None, compare=False)
    attached_node: str | None = field(default=None, compare=False)
    test_name: str | None = field(default=None, compare=False)
    column_name: str | None = field(default=None, compare=False)
    source_name: str | None = field(default=None, compare=False)
    loaded_at_field: str | None = field(default=None, compare=False)
    freshness_warn_after: FreshnessThreshold | None = field(default=None, compare=False)
    freshness_error_after: FreshnessThreshold | None = field(default=None, compare=False)
    properties: Mapping[str, Any] = field(
        default_factory=dict, compare=False, hash=False, repr=False
    )

    @property
    def materialized(self) -> str | None:
        """The ``materialized`` config (``seed``, ``snapshot``, ``test`` for those types)."""
        value = self.config.get("materialized")
        return str(value) if value is not None else None

    @property
    def is_ephemeral(self) -> bool:
        """Whether the node is an ephemeral model (inlined into its children, never run)."""
        return self.resource_type is ResourceType.MODEL and self.materialized == "ephemeral"

    @property
    def is_executable(self) -> bool:
        """Whether the node is run as a unit of its own: a non-ephemeral model, seed or snapshot."""
        return self.resource_type in RUNNABLE_TYPES and not self.is_ephemeral

    @property
    def is_test(self) -> bool:
        """Whether the node is a data test or a unit test."""
        return self.resource_type in TEST_TYPES

    @property
    def display_name(self) -> str:
        """A readable name: ``orders``, ``customers.v2``, ``shop_app.orders``, test names."""
        if self.resource_type is ResourceType.SOURCE and self.source_name:
            return f"{self.source_name}.{self.name}"
        if self.version is not None:
            return f"{self.name}.v{self.version}"
        return self.name


@dataclass(frozen=True, kw_only=True)
class Macro:
    """A macro definition.

    Attributes:
        unique_id: e.g. ``macro.shop.cents_to_dollars``.
        macro_sql: The macro's own text (one ``{% macro %}`` block, not the whole file).
        depends_on_macros: Macros this macro calls.
    """

    unique_id: str
    name: str
    package_name: str
    original_file_path: str = ""
    macro_sql: str = field(default="", compare=False)
    depends_on_macros: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True, kw_only=True)
class Group:
    """A dbt group with its owner."""

    unique_id: str
    name: str
    package_name: str
    owner: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False)
