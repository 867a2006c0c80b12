"""Prefect assets for models, seeds and snapshots, in both execution modes.

PER_NODE: each node's task becomes a ``MaterializingTask`` for the node's asset, with the
relations it reads (sources included, ephemerals looked through) as ``asset_deps``; Prefect
emits the events when the task finishes. Inside the task, :func:`record_materialization` adds
dbt's outcome as materialization metadata and, with ``include_compiled_code``, this run's
compiled SQL to the description. A cache hit materializes nothing: its task ends in a
``Cached`` state, for which Prefect emits no asset events, as for its own cached tasks.

PER_WAVE: the wave is one dbt invocation, not one task per node, so :func:`record_wave` emits
the same events Prefect would (``prefect.asset.referenced`` and
``prefect.asset.materialization.succeeded``/``failed``) for each node of the wave, inside the
flow run.

Asset bookkeeping never fails a build: problems are logged as warnings.
"""

from __future__ import annotations

import inspect
import json
import logging
from copy import copy
from typing import Any

from dbt_graph import ExecutionResult, Node, NodeResult, NodeStatus
from prefect import Task
from prefect.assets import Asset, AssetProperties
from prefect.tasks import MaterializingTask

from prefect_dbt_orchestrator._context import RunContext
from prefect_dbt_orchestrator._lineage import (
    AssetSpec,
    asset_spec,
    has_asset,
    upstream_specs,
    with_compiled_code,
)

logger = logging.getLogger("prefect_dbt_orchestrator.assets")

MATERIALIZED_BY = "dbt"

# Task.__init__ parameters stored under another attribute name (as MaterializingTask does).
_ATTRIBUTE_OF = {
    "on_completion": "on_completion_hooks",
    "on_failure": "on_failure_hooks",
    "on_running": "on_running_hooks",
    "on_rollback": "on_rollback_hooks",
    "on_commit": "on_commit_hooks",
    "persist_result": "_user_persist_result",
    "cache_policy": "_user_cache_policy",
}


class NodeAssetTask(MaterializingTask):  # type: ignore[type-arg]
    """A node's task that materializes the node's asset.

    Attributes:
        include_compiled_code: Add the compiled SQL of the run to the asset's description.
    """

    def __init__(self, fn: Any, *, include_compiled_code: bool = False, **kwargs: Any) -> None:
        super().__init__(fn, **kwargs)
        self.include_compiled_code = include_compiled_code


def node_assets(ctx: RunContext, node: Node) -> tuple[Asset, list[Asset]] | None:
    """The asset a node's task materializes and the assets it reads, or ``None``.

    Models, seeds and snapshots with a relation name have one, unless ``disable_assets`` is
    set or the manifest does not name its adapter.
    """
    adapter = ctx.manifest.adapter_type
    if ctx.options.disable_assets or not node.is_executable or not has_asset(node, adapter):
        return None
    assert adapter is not None  # has_asset checked it
    spec = asset_spec(node, adapter)
    return to_asset(spec), [to_asset(u) for u in upstream_specs(ctx.manifest, node)]


def materializing(
    task: Task[..., Any], ctx: RunContext, asset: Asset, deps: list[Asset]
) -> NodeAssetTask:
    """``task`` as a :class:`NodeAssetTask` of ``asset`` (same options otherwise)."""
    options: dict[str, Any] = {}
    for name in inspect.signature(Task.__init__).parameters:
        if name in ("self", "fn"):
            continue
        attribute = _ATTRIBUTE_OF.get(name, name)
        if hasattr(task, attribute):
            value = getattr(task, attribute)
            options[name] = copy(value) if attribute.endswith("_hooks") else value
    options["asset_deps"] = deps or None
    return NodeAssetTask(
        task.fn,
        assets=[asset],
        materialized_by=MATERIALIZED_BY,
        include_compiled_code=ctx.options.include_compiled_code,
        **options,
    )


def record_materialization(node: Node, result: NodeResult) -> None:
    """Attach this run's outcome to the node's asset (inside its task, after dbt succeeded)."""
    from prefect.context import AssetContext, TaskRunContext

    asset_ctx = AssetContext.get()
    if asset_ctx is None or not asset_ctx.downstream_assets:
        return
    try:
        task_ctx = TaskRunContext.get()
        task = task_ctx.task if task_ctx is not None else None
        wants_code = bool(getattr(task, "include_compiled_code", False))
        assets = set()
        for asset in asset_ctx.downstream_assets:
            if wants_code and result.compiled_code:
                asset = _with_code(asset, result.compiled_code)
            assets.add(asset)
        asset_ctx.downstream_assets = assets
        # Prefect also counts the assets of every task this one waited for; test placement makes
        # a node wait for nodes it does not read, so lineage is the node's own reads only.
        asset_ctx.upstream_assets = set()
        for asset in assets:
            asset_ctx.add_asset_metadata(asset.key, materialization_metadata(node, result))
    except Exception:  # lineage must never fail the node
        logger.warning("Could not record the asset of %s", node.unique_id, exc_info=True)


def record_wave(ctx: RunContext, execution: ExecutionResult) -> None:
    """PER_WAVE: emit the asset events of the nodes one dbt invocation ran (in a flow run)."""
    from prefect.context import FlowRunContext

    adapter = ctx.manifest.adapter_type
    if ctx.options.disable_assets or not adapter or FlowRunContext.get() is None:
        return
    try:
        _emit_wave(ctx, adapter, execution, ctx.options.include_compiled_code)
    except Exception:  # lineage must never fail the build
        logger.warning("Could not emit the asset events of a wave", exc_info=True)


def _emit_wave(
    ctx: RunContext, adapter: str, execution: ExecutionResult, include_compiled_code: bool
) -> None:
    from prefect.context import AssetContext
    from prefect.events import emit_event

    referenced: dict[str, Asset] = {}
    materialized: list[tuple[str, Asset, list[Asset], dict[str, Any]]] = []
    for uid, result in execution.results.items():
        node = ctx.manifest.nodes.get(uid)
        if node is None or not node.is_executable or not has_asset(node, adapter):
            continue
        if result.status in (NodeStatus.SKIPPED, NodeStatus.NO_OP):
            continue
        asset = to_asset(asset_spec(node, adapter))
        if include_compiled_code and result.compiled_code and not result.is_failure:
            asset = _with_code(asset, result.compiled_code)
        upstream = [to_asset(u) for u in upstream_specs(ctx.manifest, node)]
        referenced.update((a.key, a) for a in upstream)
        outcome = "failed" if result.is_failure else "succeeded"
        materialized.append((outcome, asset, upstream, materialization_metadata(node, result)))
    for asset in referenced.values():
        emit_event(
            event="prefect.asset.referenced",
            resource=AssetContext.asset_as_resource(asset),
            related=[],
        )
    for outcome, asset, upstream, metadata in materialized:
        related = [AssetContext.asset_as_related(a) for a in upstream]
        related.append(AssetContext.related_materialized_by(MATERIALIZED_BY))
        emit_event(
            event=f"prefect.asset.materialization.{outcome}",
            resource=AssetContext.asset_as_resource(asset),
            related=related,
            payload=metadata if outcome == "succeeded" else None,
        )


def to_asset(spec: AssetSpec) -> Asset:
    """A Prefect ``Asset`` with the properties the spec has (unset ones are left out)."""
    properties: dict[str, Any] = {"name": spec.name}
    if spec.description:
        properties["description"] = spec.description
    if spec.owners:
        properties["owners"] = list(spec.owners)
    return Asset(key=spec.key, properties=AssetProperties(**properties))


def materialization_metadata(node: Node, result: NodeResult) -> dict[str, Any]:
    """dbt's outcome for the node, JSON-safe, as the materialization event's payload."""
    metadata: dict[str, Any] = {
        "unique_id": node.unique_id,
        "dbt_status": result.status.value,
        "message": result.message,
        "execution_time": result.execution_time,
        "relation_name": result.relation_name or node.relation_name,
    }
    if result.adapter_response:
        response = json.dumps(dict(result.adapter_response), default=str)
        metadata["adapter_response"] = json.loads(response)
    return metadata


def _with_code(asset: Asset, compiled_code: str) -> Asset:
    props = asset.properties.model_dump(exclude_unset=True) if asset.properties else {}
    props["description"] = with_compiled_code(props.get("description") or "", compiled_code)
    return Asset(key=asset.key, properties=AssetProperties(**props))
