"""What happens after execution: the summary artifact, manifest.json and run_results.json.

None may hide the build's own outcome: a failure to create the artifact or to write a file is
logged (with the path) and the build goes on to return its results or raise ``DbtBuildFailed``
as it would have.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from prefect_dbt_orchestrator import _logs
from prefect_dbt_orchestrator._artifacts import create_summary_artifact, status_counts
from prefect_dbt_orchestrator._context import RunContext
from prefect_dbt_orchestrator._outcomes import NodeOutcome
from prefect_dbt_orchestrator._run_results import (
    FILE_NAME,
    copy_atomically,
    run_results,
    write_atomically,
)
from prefect_dbt_orchestrator._savings import CacheSavings

MANIFEST_FILE = "manifest.json"


def finish_run(ctx: RunContext, outcomes: Mapping[str, NodeOutcome]) -> None:
    """Log a one-line summary, create the summary artifact, write manifest.json (always, as
    ``dbt build`` does) and run_results.json (when asked)."""
    logger = _logs.run_logger()
    counts = status_counts(outcomes)
    logger.info(
        "dbt build finished: %d success, %d cached, %d error, %d skipped (%d warn) of %d node(s)",
        counts["success"],
        counts["cached"],
        counts["error"],
        counts["skipped"],
        counts["warn"],
        counts["total"],
    )
    savings = CacheSavings.of(outcomes)
    if savings.served:
        logger.info("Cache: %s", savings.sentence())
    options = ctx.options
    if options.create_summary_artifact:
        create_summary_artifact(outcomes, ctx.manifest)
    write_manifest(ctx, logger)
    if options.write_run_results:
        # The user's target path (where `dbt retry` and `--state` look), not the directory the
        # executor keeps its own manifest in.
        path = options.settings.resolved_target_path() / FILE_NAME
        try:
            document = run_results(
                outcomes, ctx.manifest, invocation_id=_invocation_id(), args=_dbt_args(ctx)
            )
            write_atomically(path, document)
        except Exception as exc:
            logger.error("Could not write %s: %s: %s", path, type(exc).__name__, exc)
        else:
            logger.info("Wrote %s", path)


def write_manifest(ctx: RunContext, logger: Any) -> None:
    """Put the manifest the build ran at ``<target_path>/manifest.json``, as ``dbt build`` does.

    Teams keep that file from production and hand it to CI as ``state_path``; the executor's
    own copy (one per target and vars) is not where anyone looks for it. It is the manifest
    resolved for this run's target and vars (or ``manifest_path``), so ``state:`` comparisons
    against it compare what was built.
    """
    source = ctx.manifest.path
    path = ctx.options.settings.resolved_target_path() / MANIFEST_FILE
    if source is None or _same_file(source, path):
        return  # built in memory, or it already is that file (manifest_path)
    try:
        copy_atomically(source, path)
    except OSError as exc:
        logger.error("Could not write %s: %s: %s", path, type(exc).__name__, exc)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.samefile(b)
    except OSError:  # b does not exist yet
        return False


def _invocation_id() -> str:
    """The flow run's id when there is one, so the file points back to the run."""
    from prefect.context import FlowRunContext

    flow_ctx = FlowRunContext.get()
    if flow_ctx is not None and flow_ctx.flow_run is not None:
        return str(flow_ctx.flow_run.id)
    return str(uuid.uuid4())


def _dbt_args(ctx: RunContext) -> dict[str, Any]:
    """The flags ``dbt retry`` replays: the ones that change what a node builds."""
    settings = ctx.options.settings
    args: dict[str, Any] = {
        "project_dir": str(settings.project_dir),
        "target_path": str(settings.resolved_target_path()),
    }
    if settings.profiles_dir is not None:
        args["profiles_dir"] = str(settings.profiles_dir)
    if ctx.target:
        args["target"] = ctx.target
    if ctx.vars:
        args["vars"] = dict(ctx.vars)
    if ctx.full_refresh:
        args["full_refresh"] = True
    return args
