"""One ephemeral dbt Cloud job: create, trigger, poll, read an artifact, delete.

The rule this module exists for: **a job it created is deleted**, whatever happens — a failed
run, an API error, a run timeout, ``KeyboardInterrupt``, or a "create job" answer lost after
dbt Cloud had created it (then the job is found by its unique name). A run still going when the
caller gives up (timeout, interrupt) is cancelled first, so it does not keep working unseen. A
deletion that fails within its retries is reported (:class:`JobNotDeletedWarning`) and handed
to ``on_undeleted``, so the build's sweep (:mod:`dbt_exec_cloud._scopes`) tries again.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from dbt_exec_cloud._client import CloudClient
from dbt_exec_cloud._errors import (
    ArtifactNotFoundError,
    CloudAPIError,
    DbtCloudError,
    JobNotDeletedWarning,
    TransientError,
)
from dbt_exec_cloud._models import Run

logger = logging.getLogger("dbt_exec_cloud")


@dataclass(frozen=True, kw_only=True)
class JobSpec:
    """What to run in one ephemeral job.

    Attributes:
        name: The job's unique name.
        step: The one dbt command it runs.
        cause: Why it runs (dbt Cloud requires a ``cause`` when triggering).
        artifact: The file to read from the run's last step, e.g. ``run_results.json``.
        settings: Job settings (``threads``, ``target_name``), or ``None`` for dbt Cloud's.
        timeout_seconds: Cancel the run if it has not finished this long after triggering.
    """

    name: str
    step: str
    cause: str
    artifact: str
    settings: Mapping[str, Any] | None = None
    timeout_seconds: float | None = None


@dataclass(frozen=True, kw_only=True)
class JobOutcome:
    """How an ephemeral job ended.

    Attributes:
        job_id: The job (already deleted).
        run: The run's last known state.
        artifact: The requested artifact's bytes, or ``None`` if the run wrote none.
        timed_out: The run did not finish in time and was cancelled.
    """

    job_id: int
    run: Run
    artifact: bytes | None
    timed_out: bool = False


@dataclass(frozen=True, kw_only=True)
class Polling:
    """How to wait for a run: the pause between polls, and the injected time functions."""

    interval: float
    sleep: Callable[[float], None]
    clock: Callable[[], float]


def run_ephemeral_job(
    client: CloudClient,
    *,
    project_id: int,
    environment_id: int,
    spec: JobSpec,
    polling: Polling,
    on_undeleted: Callable[[int, str], None] | None = None,
) -> JobOutcome:
    """Run ``spec`` as a job of its own and return how it ended; the job is always deleted.

    Args:
        client: The API client.
        project_id: The dbt Cloud project.
        environment_id: The environment the job runs in.
        spec: The step, name, cause and artifact.
        polling: Poll interval, sleep and monotonic clock.
        on_undeleted: Called with the id and name of a job that could not be deleted, so it
            can be tried again later.

    Raises:
        DbtCloudError: The job could not be created, triggered or watched.
    """
    job_id: int | None = None
    run: Run | None = None
    try:
        try:
            job_id = client.create_job(
                project_id=project_id,
                environment_id=environment_id,
                name=spec.name,
                execute_steps=[spec.step],
                settings=spec.settings,
            ).id
        except BaseException as exc:
            if _maybe_created(exc):
                _delete_by_name(client, spec, project_id, environment_id, on_undeleted)
            raise
        run = client.trigger_run(job_id, cause=spec.cause)
        logger.info("dbt Cloud run %s started for `%s` (%s)", run.id, spec.step, run.href or "")
        run, timed_out = _wait(client, run, spec.timeout_seconds, polling)
        if timed_out:
            run = _cancel(client, run)
        artifact = _artifact(client, run, spec.artifact)
        return JobOutcome(job_id=job_id, run=run, artifact=artifact, timed_out=timed_out)
    except BaseException as exc:
        if run is not None and not run.status.is_terminal:
            _cancel(client, run)
        elif run is None and job_id is not None and _maybe_created(exc):
            # The trigger may have started a run before its answer was lost or interrupted.
            cancel_runs_of(client, job_id)
        raise
    finally:
        if job_id is not None:
            _delete(client, job_id, spec.name, on_undeleted)


def _maybe_created(exc: BaseException) -> bool:
    # A definite refusal (400, 401, 403, 404, 422) created nothing. Anything else might have:
    # a transient status (a 429 or 5xx can come from a gateway after the service acted), a
    # lost connection, an interrupt.
    return not isinstance(exc, CloudAPIError) or isinstance(exc, TransientError)


def _wait(
    client: CloudClient, run: Run, timeout: float | None, polling: Polling
) -> tuple[Run, bool]:
    deadline = None if timeout is None else polling.clock() + timeout
    while not run.status.is_terminal:
        pause = polling.interval
        if deadline is not None:
            remaining = deadline - polling.clock()
            if remaining <= 0:
                return run, True
            pause = min(pause, remaining)
        polling.sleep(pause)
        run = client.get_run(run.id)
        logger.debug("dbt Cloud run %s is %s", run.id, run.status.label)
    return run, False


def _cancel(client: CloudClient, run: Run) -> Run:
    try:
        cancelled = client.cancel_run(run.id)
    except DbtCloudError as exc:
        logger.warning("Could not cancel dbt Cloud run %s: %s", run.id, exc)
        return run
    logger.warning("Cancelled dbt Cloud run %s", run.id)
    return cancelled


def cancel_runs_of(client: CloudClient, job_id: int) -> None:
    """Cancel every run of the job that has not ended (errors are logged, not raised)."""
    try:
        runs = client.list_runs(job_id=job_id)
    except DbtCloudError as exc:
        logger.warning("Could not list the runs of dbt Cloud job %s: %s", job_id, exc)
        return
    for run in runs:
        if not run.status.is_terminal:
            _cancel(client, run)


def _artifact(client: CloudClient, run: Run, path: str) -> bytes | None:
    try:
        return client.get_run_artifact(run.id, path)
    except ArtifactNotFoundError:
        logger.info("dbt Cloud run %s (%s) has no %s", run.id, run.status.label, path)
        return None


def _delete(
    client: CloudClient,
    job_id: int,
    name: str,
    on_undeleted: Callable[[int, str], None] | None,
) -> None:
    then = (
        "It will be tried again when the build's sweep runs (or the executor is closed)."
        if on_undeleted is not None
        else "Delete it under Deploy -> Jobs."
    )
    if not delete_or_warn(client, job_id, name, then=then) and on_undeleted is not None:
        on_undeleted(job_id, name)


def delete_or_warn(client: CloudClient, job_id: int, name: str, *, then: str) -> bool:
    """Delete a job; if that fails within the retry budget, say so loudly and return ``False``.

    The failure is logged and issued as a :class:`JobNotDeletedWarning` naming the job id and
    the account, never dropped silently. ``then`` says what happens next.
    """
    try:
        client.delete_job(job_id)
    except DbtCloudError as exc:
        message = (
            f"dbt Cloud job {job_id} ({name}) of account {client.credentials.account_id} could "
            f"not be deleted: {exc} {then}"
        )
        logger.warning(message)
        warnings.warn(message, JobNotDeletedWarning, stacklevel=2)
        return False
    return True


def _delete_by_name(
    client: CloudClient,
    spec: JobSpec,
    project_id: int,
    environment_id: int,
    on_undeleted: Callable[[int, str], None] | None,
) -> None:
    try:
        found = client.find_jobs(
            name=spec.name, project_id=project_id, environment_id=environment_id
        )
    except DbtCloudError as exc:
        logger.warning(
            "Creating dbt Cloud job %r failed in a way that may have created it, and looking it "
            "up failed too (%s). The build's sweep looks for it again by name.",
            spec.name,
            exc,
        )
        return
    for job in found:
        logger.warning("Deleting dbt Cloud job %s (%s), created by a failed call", job.id, job.name)
        _delete(client, job.id, job.name, on_undeleted)
