"""dbt-graph: the manifest, dbt's node selection evaluated natively, the DAG and execution waves.

It is the floor every other package stands on and imports neither dbt-core, Prefect nor httpx.

Example:
    >>> from dbt_graph import load_manifest, select, build_plan  # doctest: +SKIP
    >>> manifest = load_manifest("target/manifest.json")  # doctest: +SKIP
    >>> plan = build_plan(manifest, select(manifest, "tag:daily"))  # doctest: +SKIP
"""

from dbt_graph._addressing import node_selector
from dbt_graph._errors import (
    CycleError,
    DbtGraphError,
    FingerprintConfigError,
    ManifestError,
    SelectionError,
    StateError,
    UnknownMethodError,
)
from dbt_graph._execution import (
    Command,
    ErrorInfo,
    ExecutionRequest,
    ExecutionResult,
    Executor,
    FreshnessStatus,
    LogLine,
    NodeResult,
    NodeStatus,
    SourceFreshness,
)
from dbt_graph._fingerprints import (
    FINGERPRINT_META_KEY,
    FingerprintMethod,
    FingerprintSpec,
    SourceFingerprint,
    SourceFingerprinter,
)
from dbt_graph._graph import (
    ExecutionPlan,
    TestStrategy,
    Wave,
    build_plan,
    executable_parents,
)
from dbt_graph._manifest import Manifest, ManifestMetadata, load_manifest, parse_manifest
from dbt_graph._nodes import (
    RUNNABLE_TYPES,
    TEST_TYPES,
    Column,
    FreshnessThreshold,
    Group,
    Macro,
    Node,
    ResourceType,
)
from dbt_graph._selection import select
from dbt_graph._selector_spec import IndirectSelection
from dbt_graph._state import SelectionState

__all__ = [
    "FINGERPRINT_META_KEY",
    "RUNNABLE_TYPES",
    "TEST_TYPES",
    "Column",
    "Command",
    "CycleError",
    "DbtGraphError",
    "ErrorInfo",
    "ExecutionPlan",
    "ExecutionRequest",
    "ExecutionResult",
    "Executor",
    "FingerprintConfigError",
    "FingerprintMethod",
    "FingerprintSpec",
    "FreshnessStatus",
    "FreshnessThreshold",
    "Group",
    "IndirectSelection",
    "LogLine",
    "Macro",
    "Manifest",
    "ManifestError",
    "ManifestMetadata",
    "Node",
    "NodeResult",
    "NodeStatus",
    "ResourceType",
    "SelectionError",
    "SelectionState",
    "SourceFingerprint",
    "SourceFingerprinter",
    "SourceFreshness",
    "StateError",
    "TestStrategy",
    "UnknownMethodError",
    "Wave",
    "build_plan",
    "executable_parents",
    "load_manifest",
    "node_selector",
    "parse_manifest",
    "select",
]
