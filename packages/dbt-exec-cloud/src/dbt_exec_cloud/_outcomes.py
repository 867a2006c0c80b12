"""Turning how an ephemeral job ended into the executor contract's results and errors."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime

from dbt_graph import ErrorInfo, ExecutionRequest, ExecutionResult, LogLine, NodeResult, NodeStatus

from dbt_exec_cloud._artifacts import NOT_REPORTED, parse_run_results
from dbt_exec_cloud._errors import DbtCloudError, ResponseError, RunFailedError, RunTimeoutError
from dbt_exec_cloud._jobs import JobOutcome
from dbt_exec_cloud._models import Run, RunStatus


def now() -> datetime:
    """The current UTC time."""
    return datetime.now(UTC)


def ended(run: Run) -> str:
    """``<id> ended with status <label> (<message>)`` for error messages."""
    said = f" ({run.status_message})" if run.status_message else ""
    return f"{run.id} ended with status {run.status.label}{said}"


def see(run: Run) -> str:
    """Where to read the run's logs."""
    return f"The run's logs: {run.href}" if run.href else "Open the run in dbt Cloud for its logs."


def timeout_message(run_id: int, timeout: float, href: str | None) -> str:
    """What a run timeout says, with what to do next."""
    where = f"look at the run: {href}" if href else "look at the run in dbt Cloud"
    return (
        f"dbt Cloud run {run_id} did not finish within {timeout:g} s and was cancelled. "
        f"Raise timeout_seconds if the nodes need longer, or {where}"
    )


def error_info(exc: DbtCloudError) -> ErrorInfo:
    """A structured error; a run timeout is reported as ``TimeoutError``."""
    if isinstance(exc, RunTimeoutError):
        return ErrorInfo(type="TimeoutError", message=str(exc))
    return ErrorInfo.from_exception(exc)


def require_artifact(outcome: JobOutcome, name: str, timeout: float) -> bytes:
    """The artifact of a run the executor needed for itself.

    Raises:
        RunTimeoutError: The run timed out (it was cancelled).
        RunFailedError: The run wrote no such file.
    """
    run = outcome.run
    if outcome.timed_out:
        raise RunTimeoutError(
            timeout_message(run.id, timeout, run.href),
            run_id=run.id,
            timeout_seconds=timeout,
            href=run.href,
        )
    if outcome.artifact is None:
        raise RunFailedError(
            f"dbt Cloud run {ended(run)} and wrote no {name}. {see(run)}",
            run_id=run.id,
            status=run.status.label,
            href=run.href,
        )
    return outcome.artifact


def compiled_manifest(outcome: JobOutcome, timeout: float) -> bytes:
    """The manifest.json of the executor's own ``dbt compile`` run.

    Raises:
        RunFailedError: The compile run did not succeed, or wrote no manifest.
        RunTimeoutError: The compile run timed out (it was cancelled).
    """
    run = outcome.run
    if run.status is not RunStatus.SUCCESS and not outcome.timed_out:
        raise RunFailedError(
            f"dbt Cloud compile run {ended(run)}, so there is no manifest. Fix the project so "
            f"that it compiles, or set defer_to_job_id. {see(run)}",
            run_id=run.id,
            status=run.status.label,
            href=run.href,
        )
    return require_artifact(outcome, "manifest.json", timeout)


def _invocation_args(step: str | None) -> tuple[str, ...]:
    return tuple(shlex.split(step))[1:] if step else ()


def execution_result(
    request: ExecutionRequest, started: datetime, step: str, outcome: JobOutcome, timeout: float
) -> ExecutionResult:
    """One result per requested node from a finished (or timed-out) run.

    dbt's own statuses come through as reported. A run-level problem (timeout, cancellation, a
    failed run without failed nodes, a missing run_results.json) becomes the result's
    ``error``, and every requested node run_results.json does not mention is ``error``.
    """
    run = outcome.run
    reported: dict[str, NodeResult] = {}
    problem: ErrorInfo | None = None
    if outcome.artifact is not None:
        try:
            reported = parse_run_results(outcome.artifact)
        except ResponseError as exc:
            problem = error_info(exc)
    wanted = request.node_ids
    if outcome.timed_out:
        problem = ErrorInfo(type="TimeoutError", message=timeout_message(run.id, timeout, run.href))
    elif problem is None and run.status is RunStatus.CANCELLED:
        problem = ErrorInfo(
            type="RunFailedError",
            message=f"dbt Cloud run {ended(run)}: it was cancelled in dbt Cloud. {see(run)}",
        )
    elif (
        problem is None
        and run.status is RunStatus.ERROR
        and not any(reported[u].is_failure for u in wanted if u in reported)
    ):
        problem = ErrorInfo(
            type="RunFailedError",
            message=f"dbt Cloud run {ended(run)} without a failed node in its results. {see(run)}",
        )
    elif problem is None and outcome.artifact is None:
        problem = ErrorInfo(
            type="ArtifactNotFoundError",
            message=f"dbt Cloud run {ended(run)} but served no run_results.json. {see(run)}",
        )
    results = {}
    for uid in wanted:
        if uid in reported:
            results[uid] = reported[uid]
            continue
        message = NOT_REPORTED + (f": {problem.message}" if problem else "")
        results[uid] = NodeResult(
            unique_id=uid,
            status=NodeStatus.ERROR,
            message=message,
            error=ErrorInfo(type=problem.type if problem else "MissingResult", message=message),
        )
    return ExecutionResult(
        results=results,
        started_at=started,
        completed_at=now(),
        error=problem,
        logs=(
            LogLine(
                level="info",
                message=f"dbt Cloud run {run.id} ended {run.status.label}: {run.href or ''}",
            ),
        ),
        invocation_args=_invocation_args(step),
    )


def failed_result(
    request: ExecutionRequest, started: datetime, step: str | None, error: ErrorInfo
) -> ExecutionResult:
    """Every requested node ``error`` because the invocation itself failed."""
    return ExecutionResult(
        results={
            uid: NodeResult(
                unique_id=uid, status=NodeStatus.ERROR, message=error.message, error=error
            )
            for uid in request.node_ids
        },
        started_at=started,
        completed_at=now(),
        error=error,
        invocation_args=_invocation_args(step),
    )
