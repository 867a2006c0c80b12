"""The dbt Cloud executor: dbt-graph's :class:`~dbt_graph.Executor` over ephemeral jobs."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
from dbt_graph import (
    Command,
    ExecutionRequest,
    ExecutionResult,
    Manifest,
    Node,
    ResourceType,
    SourceFreshness,
)

from dbt_exec_cloud._artifacts import parse_sources
from dbt_exec_cloud._client import CloudClient
from dbt_exec_cloud._credentials import DbtCloudCredentials
from dbt_exec_cloud._errors import (
    ConfigurationError,
    DbtCloudError,
)
from dbt_exec_cloud._flags import check_extra_args
from dbt_exec_cloud._jobs import JobOutcome, JobSpec, Polling, run_ephemeral_job
from dbt_exec_cloud._manifests import (
    default_cache_dir,
    manifest_path,
    read_manifest,
    store_manifest,
)
from dbt_exec_cloud._outcomes import (
    compiled_manifest,
    error_info,
    execution_result,
    failed_result,
    now,
    require_artifact,
)
from dbt_exec_cloud._retry import RetryPolicy
from dbt_exec_cloud._scopes import Owners, new_owner, owner_prefix, sweep
from dbt_exec_cloud._steps import dbt_step, job_name, selectors_for

logger = logging.getLogger("dbt_exec_cloud")

#: Commands that would add the tests of selected models unless told not to.
_TESTING = frozenset({Command.BUILD, Command.TEST})
#: dbt Cloud's default job threads, sent when a job's settings must be given at all.
_DEFAULT_THREADS = 4


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return value


class DbtCloudExecutor:
    """Runs dbt nodes as ephemeral dbt Cloud jobs.

    Each :meth:`execute` creates a job whose one step selects exactly the requested nodes,
    triggers it (with a ``cause``), polls until the run ends, reads the run's
    ``run_results.json`` and deletes the job. The job is deleted in every case — also on API
    errors, run timeouts (the run is cancelled first), ``KeyboardInterrupt``, and when dbt Cloud
    created the job but its answer was lost. Inside :meth:`run_scope` (one build), every job is
    named after the build, and leaving the scope deletes any job of the build still there;
    :meth:`close` does the same for jobs made outside a scope.

    The executor pickles without its HTTP client (rebuilt lazily), so it works under thread
    pools, process pools and Dask. Calls from many threads share one connection pool; a waiting
    call sleeps between polls and holds no connection while it sleeps.

    Args:
        credentials: :class:`DbtCloudCredentials`, or any object with ``api_key`` (str or a
            secret with ``get_secret_value()``), ``account_id`` and ``domain`` — such as a
            Prefect block with those fields.
        project_id: The dbt Cloud project id.
        environment_id: The environment the jobs run in (its dbt version and credentials apply).
        job_name_prefix: Start of every ephemeral job's name, to recognise them in the UI.
        timeout_seconds: Longest a run may take from trigger to end, queueing included; then it
            is cancelled and its nodes are reported as ``error`` with a ``TimeoutError``.
        poll_frequency_seconds: Pause between two status polls of a run.
        threads: Adds ``--threads N`` to every dbt command.
        defer_to_job_id: Take the manifest from this job's latest successful run instead of
            compiling one in an ephemeral ``dbt compile`` job.
        manifest_dir: Where fetched manifests are kept (default: the user cache directory,
            ``~/.cache/dbt-exec-cloud``); they outlive the executor.
        retry: Retry budget and per-request timeout for API calls.
        transport: An httpx transport instead of the network (tests).
        sleep: Called to wait between polls and retries (tests inject a fake).
        clock: Monotonic clock for the run timeout (tests inject a fake).
        max_connections: Upper bound on simultaneous HTTP connections to dbt Cloud.

    Raises:
        ConfigurationError: An argument is invalid.

    Example:
        >>> executor = DbtCloudExecutor(
        ...     DbtCloudCredentials(api_key="dbc_x", account_id=12345),
        ...     project_id=123456,
        ...     environment_id=654321,
        ...     defer_to_job_id=789012,
        ... )
        >>> executor  # doctest: +NORMALIZE_WHITESPACE
        DbtCloudExecutor(domain='cloud.getdbt.com', account_id=12345, project_id=123456,
                         environment_id=654321)
        >>> manifest = executor.resolve_manifest()  # doctest: +SKIP
    """

    def __init__(
        self,
        credentials: Any,
        project_id: int,
        environment_id: int,
        job_name_prefix: str = "prefect-orchestrator",
        timeout_seconds: float = 900,
        poll_frequency_seconds: float = 10,
        threads: int | None = None,
        defer_to_job_id: int | None = None,
        *,
        manifest_dir: str | Path | None = None,
        retry: RetryPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        max_connections: int = 20,
    ) -> None:
        self.credentials = DbtCloudCredentials.from_any(credentials)
        self.project_id = _positive_int("project_id", project_id)
        self.environment_id = _positive_int("environment_id", environment_id)
        if not job_name_prefix.strip():
            raise ConfigurationError("job_name_prefix must not be empty")
        self.job_name_prefix = job_name_prefix.strip()
        if timeout_seconds <= 0 or poll_frequency_seconds <= 0:
            raise ConfigurationError("timeout_seconds and poll_frequency_seconds must be > 0")
        self.timeout_seconds = float(timeout_seconds)
        self.poll_frequency_seconds = float(poll_frequency_seconds)
        self.threads = None if threads is None else _positive_int("threads", threads)
        self.defer_to_job_id = (
            None if defer_to_job_id is None else _positive_int("defer_to_job_id", defer_to_job_id)
        )
        self.manifest_dir = Path(manifest_dir) if manifest_dir is not None else default_cache_dir()
        self.retry = retry or RetryPolicy()
        self.max_connections = _positive_int("max_connections", max_connections)
        self._transport = transport
        self._sleep = sleep
        self._clock = clock
        self._manifest_paths: set[Path] = set()
        # Shared with pickled copies: which executor they come from, and the build they were
        # made in (see dbt_exec_cloud._scopes).
        self._family = new_owner()
        self._inherited_scope: str | None = None
        self._init_local_state()

    def _init_local_state(self) -> None:
        # Live or process-local state: never pickled, rebuilt on first use.
        self._client: CloudClient | None = None
        self._client_lock = threading.Lock()
        self._manifest_lock = threading.RLock()
        self._owners = Owners(self._family, self._inherited_scope)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        for key in ("_client", "_client_lock", "_manifest_lock", "_owners"):
            del state[key]
        state["_inherited_scope"] = self._owners.for_copy()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_local_state()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(domain={self.credentials.domain!r}, "
            f"account_id={self.credentials.account_id}, project_id={self.project_id}, "
            f"environment_id={self.environment_id})"
        )

    @property
    def client(self) -> CloudClient:
        """The API client, created on first use (and again after :meth:`close`)."""
        with self._client_lock:
            if self._client is None:
                self._client = CloudClient(
                    self.credentials,
                    retry=self.retry,
                    transport=self._transport,
                    sleep=self._sleep,
                    max_connections=self.max_connections,
                )
            return self._client

    # Executor protocol ----------------------------------------------------------------------

    def resolve_manifest(
        self, *, target: str | None = None, vars: Mapping[str, Any] | None = None
    ) -> Path:
        """Fetch the project's manifest.json once and return its path.

        With ``defer_to_job_id`` it is the manifest of that job's latest successful run
        (``target`` and ``vars`` cannot change it); otherwise an ephemeral ``dbt compile`` job
        builds it for ``target`` and ``vars``. The file is kept under ``manifest_dir`` and
        outlives this executor; pickled copies reuse it without fetching again.

        Raises:
            DbtCloudError: The manifest could not be fetched or read (the subclass says why).
        """
        path = manifest_path(
            self.manifest_dir,
            account_id=self.credentials.account_id,
            project_id=self.project_id,
            environment_id=self.environment_id,
            defer_to_job_id=self.defer_to_job_id,
            target=target,
            vars=vars,
        )
        with self._manifest_lock:
            if path in self._manifest_paths and path.is_file():
                return path
            store_manifest(path, self._fetch_manifest(target, vars))
            self._manifest_paths.add(path)
        logger.info("dbt Cloud manifest saved to %s", path)
        return path

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        """Run the request's nodes in one ephemeral dbt Cloud job.

        Returns one result per requested node with dbt's own status. API errors and timeouts
        do not raise: they become the result's ``error`` and every node without a result is
        ``error``. Only ``KeyboardInterrupt`` and the like propagate, after the run was
        cancelled and the job deleted.
        """
        started = now()
        if not request.nodes:
            return ExecutionResult(results={}, started_at=started, completed_at=now())
        step: str | None = None
        try:
            manifest = self._manifest(request.target, request.vars)
            command = request.command.value
            step = dbt_step(
                command,
                selectors_for(request.nodes, manifest),
                threads=self.threads,
                full_refresh=request.full_refresh,
                indirect_selection="empty" if request.command in _TESTING else None,
                vars=request.vars,
                extra_args=check_extra_args(request.extra_args, warn=False),
            )
            timeout = self.timeout_seconds
            if request.timeout_seconds is not None:
                timeout = min(timeout, request.timeout_seconds)
            first = request.nodes[0].display_name
            more = f" and {len(request.nodes) - 1} more" if len(request.nodes) > 1 else ""
            outcome = self._run(
                JobSpec(
                    name=self._job_name(command, request.nodes),
                    step=step,
                    cause=f"{self.job_name_prefix}: dbt {command} {first}{more}",
                    artifact="run_results.json",
                    settings=self._settings(request.target),
                    timeout_seconds=timeout,
                )
            )
            return execution_result(request, started, step, outcome, timeout)
        except DbtCloudError as exc:
            logger.error("dbt Cloud could not run %s: %s", step or request.command.value, exc)
            return failed_result(request, started, step, error_info(exc))

    def source_freshness(
        self,
        sources: Sequence[str],
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> Mapping[str, SourceFreshness]:
        """Run ``dbt source freshness`` for these sources in an ephemeral job.

        Returns the freshness dbt reported, by unique_id; a source without a freshness config
        is not checked by dbt and so is absent. Stale sources are data, not errors.

        Raises:
            ConfigurationError: An id is not a source of the manifest.
            DbtCloudError: The job could not run, timed out or wrote no sources.json.
        """
        if not sources:
            return {}
        manifest = self._manifest(target, vars)
        nodes = []
        for uid in dict.fromkeys(sources):
            node = manifest.nodes.get(uid)
            if node is None or node.resource_type is not ResourceType.SOURCE:
                raise ConfigurationError(f"{uid!r} is not a source of the project's manifest")
            nodes.append(node)
        step = dbt_step(
            "source freshness", selectors_for(nodes, manifest), threads=self.threads, vars=vars
        )
        outcome = self._run(
            JobSpec(
                name=self._job_name("freshness", nodes),
                step=step,
                cause=f"{self.job_name_prefix}: dbt source freshness of {len(nodes)} source(s)",
                artifact="sources.json",
                settings=self._settings(target),
                timeout_seconds=self.timeout_seconds,
            )
        )
        content = require_artifact(outcome, "sources.json", self.timeout_seconds)
        reported = parse_sources(content)
        return {uid: reported[uid] for uid in dict.fromkeys(sources) if uid in reported}

    def close(self) -> None:
        """Delete this object's leftover jobs (the sweep), then close the HTTP client.

        The sweep deletes every job this object created outside :meth:`run_scope` that is
        still there, and retries deletions that failed earlier. Safe to call twice; the
        executor can be used again afterwards. Call it when no :meth:`execute` is running on
        this object.
        """
        with self._client_lock:
            client, self._client = self._client, None
        if client is None:
            return
        try:
            if self._owners.home_used or self._owners.undeleted:
                self._sweep(client, self._owners.home, "executor")
        finally:
            client.close()

    # Builds ----------------------------------------------------------------------------------

    @contextlib.contextmanager
    def run_scope(self, concurrency: int | None = None) -> Iterator[None]:
        """Run one build: its jobs are named after it, and its leftovers deleted at the end.

        Jobs created inside the scope, also by copies pickled inside it for process pools or
        Dask, carry a name prefix unique to this build: ``<job_name_prefix>-<12 hex>-``. On
        leaving the scope, normally or by an exception, ``KeyboardInterrupt`` and cancellation
        included, a sweep lists the account's jobs with that prefix and deletes every one still
        there (cancelling a run it still has). The number deleted is logged: 0 in a healthy
        build. Concurrent scopes, in threads of one executor or in several executors, have
        prefixes of their own, so a sweep never touches another build's jobs.

        Args:
            concurrency: How many requests the caller keeps in flight (part of the executor
                contract; dbt Cloud runs each job on its own, so it needs no sizing).

        Example:
            >>> with executor.run_scope():  # doctest: +SKIP
            ...     for request in requests:
            ...         executor.execute(request)
        """
        with self._owners.scope() as owner:
            try:
                yield
            finally:
                self._sweep(self.client, owner, "build")

    def validate_extra_args(self, args: Sequence[str]) -> tuple[str, ...]:
        """Check extra dbt flags for the job step; return them as a tuple.

        Refused (with what to use instead): node selection (``--select``, ``--models``,
        ``--exclude``, ``--selector``, ``--indirect-selection``), what dbt Cloud provides
        (``--project-dir``, ``--profiles-dir``, ``--profile``, ``--target-path``,
        ``--log-path``, ``--log-level``, ``--state``, ``--defer-state``) and flags with a
        parameter of their own (``--threads``, ``--target``, ``--full-refresh``).
        ``--resource-type``, ``--exclude-resource-type`` and ``--fail-fast`` pass with a logged
        warning; anything else passes unchanged.

        Raises:
            InvalidCliArgsError: A refused flag (a ``ValueError``); the message says what to use.

        Example:
            >>> executor.validate_extra_args(["--vars", "{day: mon}"])  # doctest: +SKIP
            ('--vars', '{day: mon}')
        """
        return check_extra_args(args)

    # Helpers ----------------------------------------------------------------------------

    def _job_name(self, command: str, nodes: Sequence[Node] = ()) -> str:
        return job_name(f"{self.job_name_prefix}-{self._owners.current()}", command, nodes)

    def _run(self, spec: JobSpec) -> JobOutcome:
        return run_ephemeral_job(
            self.client,
            project_id=self.project_id,
            environment_id=self.environment_id,
            spec=spec,
            polling=Polling(
                interval=self.poll_frequency_seconds, sleep=self._sleep, clock=self._clock
            ),
            on_undeleted=self._owners.note_undeleted,
        )

    def _sweep(self, client: CloudClient, owner: str, what: str) -> None:
        prefix = owner_prefix(self.job_name_prefix, owner)
        # Closing takes every failed deletion of this object; a build takes its own.
        known = self._owners.take_undeleted(None if what == "executor" else prefix)
        sweep(
            client,
            prefix=prefix,
            project_id=self.project_id,
            environment_id=self.environment_id,
            known=known,
            what=what,
        )

    def _settings(self, target: str | None) -> dict[str, Any] | None:
        # A dbt Cloud job has one generated profile whose target is the job's target_name, so
        # a target is chosen in the job settings; `--target` in the step would name a target
        # that profile does not have.
        if target is None:
            return None
        return {"threads": self.threads or _DEFAULT_THREADS, "target_name": target}

    def _manifest(self, target: str | None, vars: Mapping[str, Any] | None) -> Manifest:
        return read_manifest(self.resolve_manifest(target=target, vars=vars))

    def _fetch_manifest(self, target: str | None, vars: Mapping[str, Any] | None) -> bytes:
        if self.defer_to_job_id is not None:
            if target is not None or vars:
                logger.info(
                    "target and vars do not apply to the manifest of job %s; it is used as is",
                    self.defer_to_job_id,
                )
            return self.client.get_job_artifact(self.defer_to_job_id, "manifest.json")
        outcome = self._run(
            JobSpec(
                name=self._job_name("compile"),
                step=dbt_step("compile", threads=self.threads, vars=vars),
                cause=f"{self.job_name_prefix}: dbt compile for the project manifest",
                artifact="manifest.json",
                settings=self._settings(target),
                timeout_seconds=self.timeout_seconds,
            )
        )
        return compiled_manifest(outcome, self.timeout_seconds)
