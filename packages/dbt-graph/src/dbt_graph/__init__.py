"""dbt-graph: the manifest, dbt's node selection evaluated natively, the DAG and execution waves.

It is the floor every other package stands on and imports neither dbt-core, Prefect nor httpx.

Example:
    >>> from dbt_graph import load_manifest, select, build_plan  # doctest: +SKIP
    >>> manifest = load_manifest("target/manifest.json")  # doctest: +SKIP
    >>> plan = build_plan(manifest, select(manifest, "tag:daily"))  # doctest: +SKIP
"""

from dbt_graph._addressing import node_selector
from dbt_graph._concurrency_keys import ConcurrencyKey, keys_by_node
from dbt_graph._critical_path import CriticalPath, PathStep, critical_path
from dbt_graph._durations import (
    DEFAULT_DURATIONS,
    DurationHistory,
    Durations,
    node_result_timings,
    run_results_timings,
)
from dbt_graph._errors import (
    ConcurrencyKeyError,
    CycleError,
    DbtGraphError,
    FingerprintConfigError,
    ManifestError,
    ScheduleError,
    SelectionError,
    StateError,
    UnknownMethodError,
)
from dbt_graph._estimate import Estimate, estimate_wall_time
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
    "DEFAULT_DURATIONS",
    "FINGERPRINT_META_KEY",
    "RUNNABLE_TYPES",
    "TEST_TYPES",
    "Column",
    "Command",
    "ConcurrencyKey",
    "ConcurrencyKeyError",
    "CriticalPath",
    "CycleError",
    "DbtGraphError",
    "DurationHistory",
    "Durations",
    "ErrorInfo",
    "Estimate",
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
    "PathStep",
    "ResourceType",
    "ScheduleError",
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
    "critical_path",
    "estimate_wall_time",
    "executable_parents",
    "keys_by_node",
    "load_manifest",
    "node_result_timings",
    "node_selector",
    "parse_manifest",
    "run_results_timings",
    "select",
]
