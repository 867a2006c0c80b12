"""A small client for the dbt Cloud Administrative API v2, with retries built in.

Every call goes through :meth:`CloudClient._call`, which is also the one place where httpx errors
and error statuses become :mod:`dbt_exec_cloud._errors` types.

Calls that change state are made safe to repeat: a ``POST`` whose answer was lost (a read
timeout, a dropped connection, a 5xx from a gateway) may still have been carried out, so before
sending it again the client asks dbt Cloud whether it was (the job with our unique name, the run
of our job) and adopts what it finds. A lost answer therefore never creates a second job or run.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeVar

import httpx

from dbt_exec_cloud._credentials import DbtCloudCredentials
from dbt_exec_cloud._errors import (
    ArtifactNotFoundError,
    AuthenticationError,
    CloudAPIError,
    CloudConnectionError,
    DbtCloudError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    ServerError,
)
from dbt_exec_cloud._models import Job, Run, envelope, parse_job, parse_run, user_message
from dbt_exec_cloud._retry import RetryPolicy, parse_retry_after

logger = logging.getLogger("dbt_exec_cloud")

_T = TypeVar("_T")

#: dbt Cloud caps list pages at 100 items.
_PAGE_SIZE = 100
#: Pages scanned when looking a job up by name (the newest come first, so this is plenty).
_MAX_PAGES = 20
#: Transport errors raised before the request left this machine: the server cannot have acted.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


def _user_agent() -> str:
    try:
        return f"dbt-exec-cloud/{version('dbt-exec-cloud')}"
    except PackageNotFoundError:  # running from a source tree without metadata
        return "dbt-exec-cloud"


class CloudClient:
    """The dbt Cloud v2 calls an ephemeral-job executor needs.

    It is thread-safe (one pooled ``httpx.Client``), retries 429, 5xx and connection errors with
    backoff and jitter within :class:`RetryPolicy`, honours ``Retry-After``, and fails fast on
    other 4xx with a message that says what to check.

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
        params: dict[str, Any] = {"order_by": "-id", "limit": _PAGE_SIZE, "name__icontains": name}
        if project_id is not None:
            params["project_id"] = project_id
        if environment_id is not None:
            params["environment_id"] = environment_id
        found: list[Job] = []
        for page in range(_MAX_PAGES):
            params["offset"] = page * _PAGE_SIZE
            data, extra = envelope(self._json(self._call("GET", "/jobs/", params=params)), "list")
            if not isinstance(data, list):
                raise ResponseError("dbt Cloud returned a job list that is not a list")
            jobs = [parse_job(item) for item in data]
            found.extend(
                j
                for j in jobs
                if j.name == name
                and (project_id is None or j.project_id in (None, project_id))
                and (environment_id is None or j.environment_id in (None, environment_id))
            )
            seen = params["offset"] + len(jobs)
            total = (extra.get("pagination") or {}).get("total_count")
            if found or len(jobs) < _PAGE_SIZE or (total is not None and seen >= total):
                break
        return tuple(found)

    def delete_job(self, job_id: int) -> None:
        """Delete a job (``DELETE /jobs/{id}/``); a job that is already gone is not an error."""
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
        """Send one logical request with retries; return the successful response.

        ``recover`` is for non-idempotent calls: after an answer that may have been lost after
        the server acted, it is asked for the result that call produced, and its non-``None``
        answer is returned instead of sending the request again.
        """
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            request = self._http.build_request(method, path, json=json, params=params)
            retry_after: float | None = None
            maybe_acted = False
            try:
                response = self._http.send(request)
            except httpx.TransportError as exc:
                failure: DbtCloudError = _error_for_transport(exc, request, attempt)
                maybe_acted = not isinstance(exc, _NOT_SENT)
                reason = type(exc).__name__
            else:
                logger.debug("%s %s -> %s", method, request.url.path, response.status_code)
                if response.is_success:
                    return response
                failure = _error_for_response(response, attempt)
                if response.status_code == 429 or response.status_code >= 500:
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                    maybe_acted = response.status_code >= 500
                    reason = f"HTTP {response.status_code}"
                else:
                    raise failure
            if maybe_acted and recover is not None:
                found = recover()
                if found is not None:
                    return found
            if attempt >= self.retry.max_attempts:
                raise failure
            delay = (
                retry_after if retry_after is not None else self.retry.backoff(attempt, self._rng)
            )
            if waited + delay > self.retry.max_total_delay:
                raise failure
            logger.warning(
                "dbt Cloud %s %s failed (%s); retrying in %.1f s (attempt %d of %d)",
                method,
                request.url.path,
                reason,
                delay,
                attempt + 1,
                self.retry.max_attempts,
            )
            self._sleep(delay)
            waited += delay

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


def _error_for_transport(
    exc: httpx.TransportError, request: httpx.Request, attempts: int
) -> CloudConnectionError:
    """Translate an httpx transport error (the message names the URL, never a header)."""
    kind = "did not answer in time" if isinstance(exc, httpx.TimeoutException) else "failed"
    return CloudConnectionError(
        f"{request.method} {request.url} {kind} after {attempts} attempt(s) "
        f"({type(exc).__name__}: {exc or 'no detail'}). Check the credentials' domain, the "
        "network and https://status.getdbt.com.",
        method=request.method,
        url=str(request.url),
    )


def _error_for_response(response: httpx.Response, attempts: int) -> CloudAPIError:
    """Translate an error status into the matching :class:`CloudAPIError` subclass."""
    request = response.request
    code = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    said = user_message(body)
    details = body.get("data") if isinstance(body, dict) else None
    told = [said.rstrip(". ")] if said else []
    if isinstance(details, dict) and details:
        told.append(json.dumps(details, sort_keys=True, default=str))
    heard = f"HTTP {code} to {request.method} {request.url}"
    if told:
        heard += f" ({'; '.join(told)})"
    kind: type[CloudAPIError]
    if code == 401:
        kind, advice = AuthenticationError, "check the API key / account id"
    elif code == 403:
        kind, advice = (
            PermissionDeniedError,
            "the API key lacks permission; use a service token with Job Admin permission on "
            "this project",
        )
    elif code == 404:
        kind, advice = NotFoundError, "check project/environment/job ids and the account id"
    elif code == 429:
        kind, advice = (
            RateLimitError,
            f"still rate-limited after {attempts} attempt(s); run fewer nodes at once or "
            "raise the retry budget",
        )
    elif code >= 500:
        kind, advice = (
            ServerError,
            f"dbt Cloud kept failing after {attempts} attempt(s); check "
            "https://status.getdbt.com and try again",
        )
    else:
        kind, advice = InvalidRequestError, "dbt Cloud refused the request as invalid"
    return kind(
        f"dbt Cloud answered {heard}: {advice}.",
        status_code=code,
        method=request.method,
        url=str(request.url),
        user_message=said,
    )
