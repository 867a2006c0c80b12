"""``DbtCoreExecutor``: the executor contract, run by dbt-core in long-lived worker processes."""

from __future__ import annotations

import contextlib
import os
import threading
import weakref
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt_graph import ExecutionRequest, ExecutionResult, SourceFingerprint, SourceFreshness

from dbt_exec_core._cli_args import lift_vars, validate_extra_cli_args
from dbt_exec_core._errors import FreshnessError
from dbt_exec_core._fingerprints import fingerprint_sources
from dbt_exec_core._invocation import RunArgs, absolute, command_args
from dbt_exec_core._jobs import Job
from dbt_exec_core._manifests import ResolvedManifest
from dbt_exec_core._project import ProjectPaths
from dbt_exec_core._protocol import FRESHNESS, InvokeDone
from dbt_exec_core._requests import jobs_for, merge, selectors_for
from dbt_exec_core._resolver import ManifestResolver
from dbt_exec_core._scheduler import Scheduler


class DbtCoreExecutor:
    """Runs dbt-core locally, per node or per wave, at close to ``dbt build`` speed.

    Requests go to long-lived worker processes, each holding the parsed manifest and invoking
    ``dbtRunner(manifest=...)``, so a request pays neither interpreter start-up nor parsing.
    Single-node requests join one streaming ``dbt build`` session that takes each node into
    dbt's own queue as it is requested; multi-node requests arriving together are coalesced into
    one invocation when their nodes are independent. Either way each caller gets its own nodes'
    results: per-node semantics at ``dbt build`` cost. All DuckDB work on one database file goes
    through one worker (DuckDB admits a single writing process), guarded across processes by a
    lock file next to the database.

    Safe to call from several threads at once. Pickles as configuration only: a copy in another
    process starts its own workers when first used.

    Args:
        settings: Any object with ``project_dir``, ``profiles_dir`` and ``target_path``
            (``target_path`` may be relative to ``project_dir``).
        threads: dbt ``--threads``: how many nodes of one multi-node request (a wave) dbt
            runs at once; ``None``: the profile's, raised to the number of requests coalesced
            into one invocation. It never limits how many single-node requests run at once:
            a streaming session has at least ``run_scope(concurrency=...)`` threads (else 8).
        state_path: dbt ``--state`` directory.
        defer: Pass ``--defer``.
        defer_state_path: dbt ``--defer-state`` directory.
        favor_state: Pass ``--favor-state``.
        run_deps: Run ``dbt deps`` before ``dbt parse`` when a manifest must be (re)built.
        target: The target for requests that name none (``None``: the profile's default).
        vars: Vars for every request; a request's own vars override them key by key.
        workers: Most worker processes (default: CPU count, at most 4). DuckDB work on one file
            always uses one.
        node_timeout_seconds: Timeout for requests that set none.
        log_level: Lowest dbt event level kept in results' log lines.
        coalesce_ms: How long a request waits for others to join its invocation.
        manifest_path: A pre-built manifest.json to run from: the project is never parsed
            (no ``dbt deps``, no ``dbt parse``); the packages it uses must be installed.

    Raises:
        ProjectConfigError: A directory or its ``dbt_project.yml``/``profiles.yml`` is missing
            (a ``ValueError``).
        ValueError: ``threads``, ``workers`` or a timeout is not positive.

    Example:
        >>> executor = DbtCoreExecutor(settings)  # doctest: +SKIP
        >>> manifest = load_manifest(executor.resolve_manifest())  # doctest: +SKIP
        >>> node = manifest.node("model.shop.orders")  # doctest: +SKIP
        >>> executor.execute(ExecutionRequest(command=Command.RUN, nodes=(node,)))  # doctest: +SKIP
    """

    def __init__(
        self,
        settings: Any,
        threads: int | None = None,
        state_path: str | Path | None = None,
        defer: bool = False,
        defer_state_path: str | Path | None = None,
        favor_state: bool = False,
        run_deps: bool = True,
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
        workers: int | None = None,
        node_timeout_seconds: float | None = None,
        log_level: str = "info",
        coalesce_ms: float = 5.0,
        manifest_path: str | Path | None = None,
    ) -> None:
        for name, value in (
            ("threads", threads),
            ("workers", workers),
            ("node_timeout_seconds", node_timeout_seconds),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        if coalesce_ms < 0:
            raise ValueError(f"coalesce_ms must not be negative, got {coalesce_ms!r}")
        self._paths = ProjectPaths.from_settings(settings)
        self._threads = threads
        self._state_path = absolute(state_path)
        self._defer = defer
        self._defer_state_path = absolute(defer_state_path)
        self._favor_state = favor_state
        self._run_deps = run_deps
        self._target = target
        self._vars = dict(vars or {})
        self._workers = workers or min(4, os.cpu_count() or 1)
        self._node_timeout = node_timeout_seconds
        self._log_level = log_level
        self._coalesce_ms = coalesce_ms
        self._manifest_path = absolute(manifest_path)
        self._init_runtime()

    # -- pickling: configuration only ----------------------------------------------------------

    _RUNTIME = ("_lock", "_scheduler", "_resolver", "_finalizer", "_scopes")

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._scheduler: Scheduler | None = None
        self._resolver: ManifestResolver | None = None
        self._finalizer: weakref.finalize | None = None
        self._scopes = 0

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in self._RUNTIME}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    def __repr__(self) -> str:
        return (
            f"DbtCoreExecutor(project_dir={str(self._paths.project_dir)!r}, "
            f"target={self._target!r}, workers={self._workers})"
        )

    @property
    def paths(self) -> ProjectPaths:
        """The project's validated directories."""
        return self._paths

    # -- manifest ------------------------------------------------------------------------------

    def resolve_manifest(
        self, *, target: str | None = None, vars: Mapping[str, Any] | None = None
    ) -> Path:
        """Return a manifest.json parsed for exactly this project state, target and vars.

        An existing manifest is reused only while its fingerprint (project files, profile,
        target, vars, referenced environment variables, dbt version) still matches; otherwise
        ``dbt deps`` (unless ``run_deps=False``) and ``dbt parse`` run in a worker. With
        ``manifest_path``, that file is returned, and nothing is parsed.

        Raises:
            ManifestResolutionError: ``dbt deps`` or ``dbt parse`` failed (the message is
                dbt's), or the pre-built manifest cannot be read or run from.
        """
        return self._resolve(target, vars, check=True).manifest_path

    def _resolve(
        self, target: str | None, vars: Mapping[str, Any] | None, *, check: bool
    ) -> ResolvedManifest:
        with self._lock:
            if self._resolver is None:
                self._resolver = ManifestResolver(
                    paths=self._paths,
                    run_deps=self._run_deps,
                    prebuilt=self._manifest_path,
                    target=self._target,
                    vars=self._vars,
                    scheduler=self._get_scheduler,
                )
            resolver = self._resolver
        return resolver.resolve(target, vars, check=check)

    def validate_extra_args(self, args: Sequence[str]) -> tuple[str, ...]:
        """Check extra dbt arguments against this executor's flag table.

        Returns:
            The arguments, unchanged.

        Raises:
            InvalidCliArgsError: A blocked or first-class flag (a ``ValueError`` whose message
                says what to use instead).

        Example:
            >>> executor.validate_extra_args(["--store-failures"])  # doctest: +SKIP
            ('--store-failures',)
        """
        return validate_extra_cli_args(args)

    # -- execution -----------------------------------------------------------------------------

    def execute(self, request: ExecutionRequest) -> ExecutionResult:
        """Run dbt for the request's nodes and return one result per requested node.

        A failing node never raises: it is a result with dbt's status (``error``, ``fail``...).
        ``warn`` tests stay ``warn``, nodes dbt skipped stay ``skipped``, and a node dbt did not
        report is ``error``, never success.

        Raises:
            InvalidCliArgsError: ``request.extra_args`` holds a blocked or first-class flag.
            ManifestResolutionError: The manifest had to be parsed and parsing failed.
        """
        started = datetime.now(UTC)
        extra, lifted = lift_vars(validate_extra_cli_args(request.extra_args))
        vars = {**(request.vars or {}), **(lifted or {})}
        resolved = self._resolve(request.target, vars, check=False)
        ids = tuple(dict.fromkeys(request.node_ids))
        selectors, unselectable = selectors_for(ids, resolved)
        if not selectors:
            return ExecutionResult(
                results=unselectable, started_at=started, completed_at=datetime.now(UTC)
            )
        jobs = jobs_for(
            request,
            selectors,
            resolved,
            extra_args=extra,
            environ=dict(os.environ),
            timeout=request.timeout_seconds or self._node_timeout,
        )
        scheduler = self._get_scheduler()
        futures = [scheduler.submit(job) for job in jobs]
        return merge(ids, started, unselectable, [f.result() for f in futures])

    # -- freshness -----------------------------------------------------------------------------

    def source_freshness(
        self,
        sources: Sequence[str],
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> Mapping[str, SourceFreshness]:
        """Run ``dbt source freshness`` for exactly these sources.

        Args:
            sources: Source unique_ids (``source.shop.shop_app.orders``).
            target: The target (``None``: the executor's).
            vars: Vars.

        Returns:
            Freshness by unique_id, for every requested source dbt checked (sources without a
            freshness configuration are not checked and so are absent).

        Raises:
            FreshnessError: dbt could not run the check at all.
            KeyError: A unique_id is not a source of the manifest.
        """
        if not sources:
            return {}
        resolved = self._resolve(target, vars, check=False)
        selectors = tuple(dict.fromkeys(resolved.selector(uid) for uid in sources))
        args = command_args(
            self._paths,
            "source",
            "freshness",
            "--select",
            *selectors,
            target=resolved.target,
            vars=resolved.vars,
        )
        job = Job(
            kind=FRESHNESS,
            args=tuple(args),
            manifest=resolved.ref,
            duckdb_path=resolved.duckdb_path,
            environ=dict(os.environ),
        )
        done: InvokeDone = self._get_scheduler().submit(job).result()
        if not done.freshness and done.error is not None:
            raise FreshnessError(f"`dbt source freshness` could not run: {done.error.message}")
        wanted = set(sources)
        return {uid: f for uid, f in done.freshness.items() if uid in wanted}

    def source_fingerprints(
        self,
        sources: Sequence[str],
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> Mapping[str, SourceFingerprint]:
        """Fingerprint the data of these sources with one ``dbt show`` query.

        DuckDB and PostgreSQL fingerprint content by default; other adapters use
        ``max(loaded_at_field)`` and the row count. See :mod:`dbt_exec_core._fingerprints`.

        Returns:
            A fingerprint for every requested source; ``value=None`` (always changed) for a
            source that cannot be fingerprinted, with the reason in ``detail``.

        Raises:
            KeyError: A unique_id is not a source of the manifest.
            dbt_graph.FingerprintConfigError: A source's ``meta.data_fingerprint`` is unusable.
        """
        resolved = self._resolve(target, vars, check=False)
        submit = self._get_scheduler().submit
        return fingerprint_sources(sources, resolved=resolved, paths=self._paths, submit=submit)

    # -- lifecycle -----------------------------------------------------------------------------

    def _get_scheduler(self) -> Scheduler:
        with self._lock:
            if self._scheduler is not None and self._scheduler.failed:
                # Its requests have failed with the reason; start afresh.
                if self._finalizer is not None:
                    self._finalizer.detach()
                self._scheduler.close()
                self._scheduler = None
            if self._scheduler is None:
                self._scheduler = Scheduler(
                    max_workers=self._workers,
                    log_level=self._log_level,
                    window_seconds=self._coalesce_ms / 1000,
                    run_args=RunArgs(
                        paths=self._paths,
                        threads=self._threads,
                        state_path=self._state_path,
                        defer=self._defer,
                        defer_state_path=self._defer_state_path,
                        favor_state=self._favor_state,
                    ),
                )
                self._finalizer = weakref.finalize(self, self._scheduler.close)
            return self._scheduler

    @contextlib.contextmanager
    def run_scope(
        self, linger_seconds: float = 10.0, *, concurrency: int | None = None
    ) -> Iterator[None]:
        """Keep streaming sessions open between the requests of one run.

        A per-node run submits a node when its parents' results arrive, so a session would
        often run dry just before the next request comes and pay dbt's start-up and teardown
        again. Inside the scope a dry session answers at once and waits up to
        ``linger_seconds`` for the next request. On leaving the (outermost) scope every
        lingering session is ended, and DuckDB files are closed, before this returns.

        Args:
            linger_seconds: How long a dry session waits for the next request.
            concurrency: The most requests the caller keeps in flight at once. A session runs
                that many nodes at once (dbt's ``--threads`` for it is at least this, whatever
                ``threads`` says), on every adapter; ``None``: at least 8.

        Example:
            >>> with executor.run_scope(concurrency=4):  # doctest: +SKIP
            ...     for request in requests:
            ...         executor.execute(request)
        """
        if linger_seconds < 0:
            raise ValueError(f"linger_seconds must not be negative, got {linger_seconds!r}")
        if concurrency is not None and concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency!r}")
        scheduler = self._get_scheduler()
        with self._lock:
            self._scopes += 1
            scheduler.linger = max(scheduler.linger, linger_seconds)
            if concurrency is not None:
                scheduler.in_flight = max(scheduler.in_flight or 0, concurrency)
        try:
            yield
        finally:
            with self._lock:
                self._scopes -= 1
                last = self._scopes == 0
                if last:
                    scheduler.linger = 0.0
                    scheduler.in_flight = None
            if last:
                scheduler.end_sessions()

    def close(self) -> None:
        """Stop the worker processes. The executor may be used again (workers restart)."""
        with self._lock:
            scheduler, self._scheduler = self._scheduler, None
            finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if scheduler is not None:
            scheduler.close()

    def __enter__(self) -> DbtCoreExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
