"""An :class:`~dbt_graph.ExecutionRequest` as scheduler jobs, and their answers as one result.

A request becomes one ``run`` job, or two when a ``build`` holds unit tests without their model
(``dbt build`` runs a unit test only together with the model it tests, so those run with
``dbt test`` beside it). A single-node job may join a streaming session (:mod:`_session`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from dbt_graph import (
    ErrorInfo,
    ExecutionRequest,
    ExecutionResult,
    NodeResult,
    NodeStatus,
    SelectionError,
)

from dbt_exec_core._invocation import (
    FULL_REFRESH_COMMANDS,
    NO_SESSION_FLAGS,
    display_args,
    env_digest,
    session_key,
    split_orphan_unit_tests,
)
from dbt_exec_core._jobs import Job, Lane
from dbt_exec_core._manifests import ResolvedManifest
from dbt_exec_core._project import canonical_vars
from dbt_exec_core._protocol import RUN


def selectors_for(
    unique_ids: Sequence[str], resolved: ResolvedManifest
) -> tuple[dict[str, str], dict[str, NodeResult]]:
    """The exact ``--select`` value of each node, and an ``error`` result for each node that
    cannot be selected (not in the manifest, or no selector singles it out)."""
    selectors: dict[str, str] = {}
    unselectable: dict[str, NodeResult] = {}
    for uid in unique_ids:
        try:
            selectors[uid] = resolved.selector(uid)
        except (KeyError, SelectionError) as exc:
            message = f"dbt cannot select this node: {exc}"
            unselectable[uid] = NodeResult(
                unique_id=uid,
                status=NodeStatus.ERROR,
                message=message,
                error=ErrorInfo(type=type(exc).__name__, message=message),
            )
    return selectors, unselectable


def jobs_for(
    request: ExecutionRequest,
    selectors: Mapping[str, str],
    resolved: ResolvedManifest,
    *,
    extra_args: tuple[str, ...],
    environ: Mapping[str, str],
    timeout: float | None,
) -> list[Job]:
    """The scheduler jobs that run the request's selectable nodes."""
    lane = Lane(
        manifest=resolved.ref,
        target=resolved.target,
        vars_json=canonical_vars(resolved.vars),
        extra_args=extra_args,
        env_digest=env_digest(environ),
        duckdb_path=resolved.duckdb_path,
        profile_threads=resolved.profile_threads,
    )
    streaming = not any(a in NO_SESSION_FLAGS for a in extra_args)
    jobs = []
    for command, part in split_orphan_unit_tests(request, selectors, resolved):
        own = command == "test" and any(u.startswith("unit_test.") for u in part)
        full_refresh = request.full_refresh if command in FULL_REFRESH_COMMANDS else None
        alone = streaming and len(part) == 1 and not own
        jobs.append(
            Job(
                kind=RUN,
                node_ids=tuple(part),
                lane=lane,
                command=command,
                selectors=part,
                full_refresh=full_refresh,
                timeout=timeout,
                environ=environ,
                related=resolved.related(part),
                own_command=own,
                # Tests and snapshots, which --full-refresh does not change, join either session.
                also_joins=(session_key(lane, True),) if full_refresh is None else (),
                session=session_key(lane, bool(full_refresh)) if alone else None,
            )
        )
    return jobs


def merge(
    unique_ids: Sequence[str],
    started: datetime,
    unselectable: Mapping[str, NodeResult],
    answers: Sequence[ExecutionResult],
) -> ExecutionResult:
    """One result for the request, from the answers of its jobs (in request order)."""
    results = dict(unselectable)
    args: list[str] = []
    for answer in answers:
        results.update(answer.results)
        args += [*(["&&"] if args else []), *display_args(answer.invocation_args)]
    return ExecutionResult(
        results={uid: results[uid] for uid in unique_ids},
        started_at=min([started, *(a.started_at for a in answers)]),
        completed_at=max(a.completed_at for a in answers),
        error=next((a.error for a in answers if a.error is not None), None),
        logs=tuple(line for a in answers for line in a.logs),
        invocation_args=tuple(args),
    )
