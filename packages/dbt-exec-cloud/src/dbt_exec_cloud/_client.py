"""A small client for the dbt Cloud Administrative API v2, with retries built in.

Every call goes through :func:`dbt_exec_cloud._sending.send`, the one place that retries and
where httpx errors and error statuses become :mod:`dbt_exec_cloud._errors` types.

Calls that change state are made safe to repeat: a ``POST`` whose outcome was not confirmed (a
read timeout, a dropped connection, any 5xx, or a 408, 409, 425 or 429 that a gateway may give
after the service acted) may still have been carried out, so before sending it again the client
asks dbt Cloud whether it was (the job with our unique name, the run of our job) and adopts what
it finds. A lost answer therefore never creates a second job or run.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import httpx

from dbt_exec_cloud._credentials import DbtCloudCredentials
from dbt_exec_cloud._errors import (
    ArtifactNotFoundError,
    NotFoundError,
    ResponseError,
)
from dbt_exec_cloud._models import Job, Run, envelope, parse_job, parse_run
from dbt_exec_cloud._retry import RetryPolicy
from dbt_exec_cloud._sending import send

logger = logging.getLogger("dbt_exec_cloud")

_T = TypeVar("_T")

#: dbt Cloud caps list pages at 100 items.
_PAGE_SIZE = 100
#: Pages scanned when looking a job up by name (the newest come first, so this is plenty).
_MAX_PAGES = 20
#: Pages scanned when listing every job with a name prefix (only matters if the service ignores
#: the name filter: then it is the 10,000 newest jobs of the project).
_MAX_LIST_PAGES = 100


def _user_agent() -> str:
    try:
        return f"dbt-exec-cloud/{version('dbt-exec-cloud')}"
    except PackageNotFoundError:  # running from a source tree without metadata
        return "dbt-exec-cloud"


class CloudClient:
    """The dbt Cloud v2 calls an ephemeral-job executor needs.

    It is thread-safe (one pooled ``httpx.Client``), retries 408, 409, 425, 429, 5xx and
    connection errors with backoff and jitter within :class:`RetryPolicy`, honours
    ``Retry-After``, and fails fast on other 4xx with a message that says what to check.

    Args:
        credentials: Account, API key and host.
        retry: The retry budget and the per-request timeout.
        transport: An httpx transport to use instead of the network (tests pass
            ``httpx.MockTransport`` or a respx router's transport).
        sleep: Called with seconds to wait between retries.
        rng: Source of jitter.
        max_connections: Upper bound on simultaneous HTTP connections.

    Example:
        >>> creds = DbtCloudCredentials(api_key="dbc_x", account_id=1)
        >>> with CloudClient(creds) as client:  # doctest: +SKIP
        ...     run = client.get_run(42)
    """

    def __init__(
        self,
        credentials: DbtCloudCredentials,
        *,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        max_connections: int = 20,
    ) -> None:
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.Client(
            base_url=credentials.api_base_url,
            headers={
                "Authorization": f"Bearer {credentials.api_key.get_secret_value()}",
                "Accept": "application/json",
                "User-Agent": _user_agent(),
            },
            timeout=self.retry.request_timeout,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"CloudClient(base_url={self.credentials.api_base_url!r})"

    def __enter__(self) -> CloudClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # Jobs ---------------------------------------------------------------------------------

    def create_job(
        self,
        *,
        project_id: int,
        environment_id: int,
        name: str,
        execute_steps: tuple[str, ...] | list[str],
        settings: Mapping[str, Any] | None = None,
    ) -> Job:
        """Create a job (``POST /jobs/``); ``name`` must be unique, see below.

        If the answer is lost, the job is looked up by ``name`` before creating it again, so a
        job name unique to this call guarantees exactly one job.

        Raises:
            DbtCloudError: A subclass saying what went wrong.
        """
        body: dict[str, Any] = {
            "account_id": self.credentials.account_id,
            "project_id": project_id,
            "environment_id": environment_id,
            "name": name,
            "execute_steps": list(execute_steps),
            "job_type": "other",
        }
        if settings:
            body["settings"] = dict(settings)

        def already_created() -> Job | None:
            found = self.find_jobs(name=name, project_id=project_id, environment_id=environment_id)
            if found:
                logger.warning(
                    "The answer to creating dbt Cloud job %r was lost; found it as job %s",
                    name,
                    found[0].id,
                )
                return found[0]
            return None

        result = self._call("POST", "/jobs/", json=body, recover=already_created)
        return result if isinstance(result, Job) else parse_job(self._data(result, "job"))

    def find_jobs(
        self,
        *,
        name: str,
        project_id: int | None = None,
        environment_id: int | None = None,
    ) -> tuple[Job, ...]:
        """Jobs whose name is exactly ``name`` (``GET /jobs/``, newest first).

        dbt Cloud's name filter is a substring match and some deployments ignore it, so the
        match is checked here; at most 2,000 jobs are scanned.
        """
        found: list[Job] = []
        for page in self._job_pages(name, project_id, environment_id, _MAX_PAGES):
            found.extend(j for j in page if j.name == name)
            if found:
                break
        return tuple(found)

    def list_jobs(
        self,
        *,
        name_prefix: str,
        project_id: int | None = None,
        environment_id: int | None = None,
    ) -> tuple[Job, ...]:
        """Every job whose name starts with ``name_prefix`` (``GET /jobs/``, all pages).

        The prefix is checked here, not only by dbt Cloud's substring filter, so a job whose
        name merely contains it is never listed.

        Example:
            >>> with CloudClient(creds) as client:  # doctest: +SKIP
            ...     leftovers = client.list_jobs(name_prefix="prefect-orchestrator-3f9c2a7e1b04-")
        """
        seen: dict[int, Job] = {}
        for page in self._job_pages(name_prefix, project_id, environment_id, _MAX_LIST_PAGES):
            for job in page:
                if job.name.startswith(name_prefix):
                    seen.setdefault(job.id, job)  # a job created meanwhile shifts the pages
        return tuple(seen.values())

    def _job_pages(
        self, name: str, project_id: int | None, environment_id: int | None, max_pages: int
    ) -> Iterator[list[Job]]:
        """Pages of jobs filtered by ``name`` (substring), project and environment, newest first."""
        params: dict[str, Any] = {"order_by": "-id", "limit": _PAGE_SIZE, "name__icontains": name}
        if project_id is not None:
            params["project_id"] = project_id
        if environment_id is not None:
            params["environment_id"] = environment_id
        for page in range(max_pages):
            params["offset"] = page * _PAGE_SIZE
            data, extra = envelope(self._json(self._call("GET", "/jobs/", params=params)), "list")
            if not isinstance(data, list):
                raise ResponseError("dbt Cloud returned a job list that is not a list")
            jobs = [parse_job(item) for item in data]
            yield [
                j
                for j in jobs
                if (project_id is None or j.project_id in (None, project_id))
                and (environment_id is None or j.environment_id in (None, environment_id))
            ]
            seen = params["offset"] + len(jobs)
            total = (extra.get("pagination") or {}).get("total_count")
            if len(jobs) < _PAGE_SIZE or (total is not None and seen >= total):
                return
        logger.warning(
            "Stopped listing dbt Cloud jobs matching %r after %d pages; more may exist",
            name,
            max_pages,
        )

    def delete_job(self, job_id: int) -> None:
        """Delete a job (``DELETE /jobs/{id}/``); a job that is already gone is not an error.

        So a retry after a lost answer (the first attempt deleted it) succeeds too.
        """
        try:
            self._call("DELETE", f"/jobs/{job_id}/")
        except NotFoundError:
            logger.debug("dbt Cloud job %s was already deleted", job_id)

    def get_job_artifact(self, job_id: int, path: str) -> bytes:
        """An artifact of the job's latest successful run (``GET /jobs/{id}/artifacts/{path}``).

        Raises:
            ArtifactNotFoundError: The job has no successful run with that artifact.
        """
        try:
            return self._call("GET", f"/jobs/{job_id}/artifacts/{path}").content
        except ArtifactNotFoundError:
            raise
        except NotFoundError as exc:
            raise ArtifactNotFoundError(
                f"dbt Cloud job {job_id} has no {path} (HTTP 404). Check that defer_to_job_id "
                "names a job of this account that has completed at least one successful run.",
                status_code=404,
                method=exc.method,
                url=exc.url,
                user_message=exc.user_message,
            ) from None

    # Runs ---------------------------------------------------------------------------------

    def trigger_run(self, job_id: int, *, cause: str) -> Run:
        """Start a run of a job (``POST /jobs/{id}/run/``); ``cause`` is required by dbt Cloud.

        If the answer is lost, the job's runs are listed first; an existing run is adopted
        instead of starting a second one.
        """

        def already_triggered() -> Run | None:
            runs = self.list_runs(job_id=job_id)
            if runs:
                logger.warning(
                    "The answer to triggering dbt Cloud job %s was lost; found its run %s",
                    job_id,
                    runs[0].id,
                )
                return runs[0]
            return None

        result = self._call(
            "POST", f"/jobs/{job_id}/run/", json={"cause": cause[:255]}, recover=already_triggered
        )
        return result if isinstance(result, Run) else parse_run(self._data(result, "run"))

    def get_run(self, run_id: int) -> Run:
        """A run's current state (``GET /runs/{id}/``)."""
        return parse_run(self._data(self._call("GET", f"/runs/{run_id}/"), "run"))

    def list_runs(self, *, job_id: int) -> tuple[Run, ...]:
        """The runs of one job, newest first (``GET /runs/?job_definition_id=``)."""
        params = {"job_definition_id": job_id, "order_by": "-id", "limit": _PAGE_SIZE}
        data, _ = envelope(self._json(self._call("GET", "/runs/", params=params)), "list")
        if not isinstance(data, list):
            raise ResponseError("dbt Cloud returned a run list that is not a list")
        runs = [parse_run(item) for item in data]
        return tuple(r for r in runs if r.job_id in (None, job_id))

    def cancel_run(self, run_id: int) -> Run:
        """Ask dbt Cloud to cancel a run (``POST /runs/{id}/cancel/``); repeating it is harmless."""
        return parse_run(self._data(self._call("POST", f"/runs/{run_id}/cancel/"), "run"))

    def get_run_artifact(self, run_id: int, path: str) -> bytes:
        """An artifact of a run's last step (``GET /runs/{id}/artifacts/{path}``).

        Raises:
            ArtifactNotFoundError: The run wrote no such file (it failed before dbt ran, or was
                cancelled).
        """
        try:
            return self._call("GET", f"/runs/{run_id}/artifacts/{path}").content
        except ArtifactNotFoundError:
            raise
        except NotFoundError as exc:
            raise ArtifactNotFoundError(
                f"dbt Cloud run {run_id} has no {path} (HTTP 404): the run ended before dbt "
                "wrote it.",
                status_code=404,
                method=exc.method,
                url=exc.url,
                user_message=exc.user_message,
            ) from None

    # The one place that sends requests ------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        recover: Callable[[], _T | None] | None = None,
    ) -> httpx.Response | _T:
        """One logical request with retries (``recover``: see :mod:`dbt_exec_cloud._sending`)."""
        return send(
            self._http,
            lambda: self._http.build_request(method, path, json=json, params=params),
            retry=self.retry,
            sleep=self._sleep,
            rng=self._rng,
            recover=recover,
        )

    @staticmethod
    def _json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ResponseError(
                f"dbt Cloud answered {response.request.method} {response.request.url.path} "
                f"with HTTP {response.status_code} but the body is not JSON. Check that the "
                "domain is your dbt Cloud access URL."
            ) from None

    def _data(self, response: httpx.Response, what: str) -> Any:
        data, _ = envelope(self._json(response), what)
        return data
