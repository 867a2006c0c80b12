"""dbt-graph: the manifest, dbt's node selection evaluated natively, the DAG and execution waves.

It is the floor every other package stands on and imports neither dbt-core, Prefect nor httpx.

Example (``load_manifest("target/manifest.json")`` reads a real project's manifest):
    >>> from dbt_graph import build_plan, select
    >>> from dbt_graph.testing import ManifestBuilder
    >>> manifest = (ManifestBuilder().seed("raw")
    ...             .model("orders", depends_on=["raw"], tags=["daily"]).model("other").build())
    >>> plan = build_plan(manifest, select(manifest, "+tag:daily"))
    >>> [wave.node_ids for wave in plan.waves]
    [('seed.p.raw',), ('model.p.orders',)]
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
    ExtraArgsError,
    FingerprintConfigError,
    ManifestError,
    ProfileError,
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
from dbt_graph._extra_args import check_extra_args
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
from dbt_graph._loader import load_manifest, parse_manifest
from dbt_graph._manifest import Manifest, ManifestMetadata
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
from dbt_graph._profiles import effective_target, find_profiles_dir, render_env_vars
from dbt_graph._ready_queue import ReadyQueue
from dbt_graph._selection import select
from dbt_graph._selector_spec import IndirectSelection
from dbt_graph._state import SelectionState
from dbt_graph._walks import (
    ancestors,
    descendants,
    drop_fed_by,
    nearest_ancestors,
    topological_generations,
    topological_order,
    upstream_sources,
)

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
    "ExtraArgsError",
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
    "ProfileError",
    "ReadyQueue",
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
    "ancestors",
    "build_plan",
    "check_extra_args",
    "critical_path",
    "descendants",
    "drop_fed_by",
    "effective_target",
    "estimate_wall_time",
    "executable_parents",
    "find_profiles_dir",
    "keys_by_node",
    "load_manifest",
    "nearest_ancestors",
    "node_result_timings",
    "node_selector",
    "parse_manifest",
    "render_env_vars",
    "run_results_timings",
    "select",
    "topological_generations",
    "topological_order",
    "upstream_sources",
]
