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
from dbt_graph._errors import (
    CycleError,
    DbtGraphError,
    ExtraArgsError,
    ManifestError,
    ProfileError,
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
from dbt_graph._extra_args import check_extra_args
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
    "ExtraArgsError",
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
    "ProfileError",
    "ResourceType",
    "SelectionError",
    "SelectionState",
    "SourceFreshness",
    "StateError",
    "TestStrategy",
    "UnknownMethodError",
    "Wave",
    "ancestors",
    "build_plan",
    "check_extra_args",
    "descendants",
    "drop_fed_by",
    "effective_target",
    "executable_parents",
    "find_profiles_dir",
    "load_manifest",
    "nearest_ancestors",
    "node_selector",
    "parse_manifest",
    "render_env_vars",
    "select",
    "topological_generations",
    "topological_order",
    "upstream_sources",
]
