"""``PrefectDbtOrchestrator``: the flow-facing API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from dbt_graph import ConcurrencyKey, Executor, TestStrategy

from prefect_dbt_orchestrator._build_plan import BuildPlan, preview
from prefect_dbt_orchestrator._collector import collector_paused, heap_frozen
from prefect_dbt_orchestrator._config import (
    CacheConfig,
    ExecutionMode,
    check_concurrency,
    check_concurrency_keys,
    check_mode_options,
    coerce_mode,
    coerce_scheduling,
    coerce_strategy,
)
from prefect_dbt_orchestrator._context import BuildArgs, RunOptions
from prefect_dbt_orchestrator._errors import DbtBuildFailed
from prefect_dbt_orchestrator._executors import executor_class
from prefect_dbt_orchestrator._finish import finish_run
from prefect_dbt_orchestrator._outcomes import OutcomeStatus, results_of
from prefect_dbt_orchestrator._per_node import run_per_node
from prefect_dbt_orchestrator._per_wave import run_per_wave
from prefect_dbt_orchestrator._prepare import prepare
from prefect_dbt_orchestrator._server import deprioritize_local_server
from prefect_dbt_orchestrator._settings import PrefectDbtSettings


class PrefectDbtOrchestrator:
    """Runs a dbt project under Prefect: per wave or per node, with retries, caching and lineage.

    Args:
        settings: Project, profiles and target directories. A copy is used; yours is never
            changed. Default: ``PrefectDbtSettings()`` from the working directory and ``DBT_``
            environment variables.
        manifest_path: A pre-built manifest.json (relative paths are resolved against the project
            dir). Without it, the executor resolves one (``dbt deps`` + ``dbt parse`` if needed).
        executor: Who runs dbt. Default: a ``DbtCoreExecutor`` built from ``settings`` and the
            five dbt flags below (it needs the ``[core]`` extra).
        threads: dbt ``--threads`` for the default executor.
        state_path: dbt ``--state`` for the default executor and for ``state:`` selectors.
        defer: dbt ``--defer`` for the default executor.
        defer_state_path: dbt ``--defer-state`` for the default executor.
        favor_state: dbt ``--favor-state`` for the default executor.
        execution_mode: ``PER_WAVE`` (default) or ``PER_NODE``, or their values.
        retries: Per-node retries (PER_NODE only).
        retry_delay_seconds: Delay between retries.
        concurrency: PER_NODE: an int (worker count) or the name of an existing Prefect global
            concurrency limit.
        task_runner_type: PER_NODE task runner class, instantiated as ``cls(max_workers=n)``
            (default ``ThreadPoolTaskRunner``: the executors bring their own worker processes).
        cache: A ``CacheConfig`` to enable cross-run caching (PER_NODE only).
        test_strategy: ``IMMEDIATE`` (default), ``DEFERRED`` or ``SKIP``, or their values.
        create_summary_artifact: Create the ``dbt-orchestrator-summary`` artifact in a flow run.
        include_compiled_code: Add this run's compiled SQL to asset descriptions.
        write_run_results: Write a dbt-compatible run_results.json to the target path.
        disable_assets: Do not create Prefect assets.
        raise_on_failure: Raise ``DbtBuildFailed`` when any node ends in ``"error"``.
        node_timeout_seconds: Stop a node (or a wave) that runs longer than this.
        scheduling: PER_NODE: which ready node starts first when several wait for a slot:
            ``"critical_path"`` (default), the one with the longest expected remaining path to
            the end of the build (durations learned from earlier builds), or ``"plan_order"``.
        concurrency_keys: PER_NODE: per-node limits beside ``concurrency``, e.g.
            ``[ConcurrencyKey(selector="tag:heavy", limit=1)]``; each is also a Prefect global
            concurrency limit (created when missing), so it holds across flow runs.

    The default executor keeps dbt worker processes alive between calls; ``close()`` (or a
    ``with`` block) stops them. An executor passed in is left to its owner to close.

    Raises:
        ValueError: An invalid mode, strategy or scheduling, ``retries``, ``cache`` or
            ``concurrency_keys`` with PER_WAVE, or (with the default executor) a project or
            profiles directory that is not usable.
        ImportError: No ``executor`` is given and dbt-exec-core is not installed
            (``pip install "prefect-dbt-orchestrator[core]"``).
    """

    def __init__(
        self,
        settings: PrefectDbtSettings | None = None,
        manifest_path: Path | str | None = None,
        executor: Executor | None = None,
        threads: int | None = None,
        state_path: Path | None = None,
        defer: bool = False,
        defer_state_path: Path | None = None,
        favor_state: bool = False,
        execution_mode: ExecutionMode | str = ExecutionMode.PER_WAVE,
        retries: int = 0,
        retry_delay_seconds: int = 30,
        concurrency: int | str | None = None,
        task_runner_type: type | None = None,
        cache: CacheConfig | None = None,
        test_strategy: TestStrategy | str = TestStrategy.IMMEDIATE,
        create_summary_artifact: bool = True,
        include_compiled_code: bool = False,
        write_run_results: bool = False,
        disable_assets: bool = False,
        raise_on_failure: bool = True,
        node_timeout_seconds: float | None = None,
        scheduling: str = "critical_path",
        concurrency_keys: Sequence[ConcurrencyKey] = (),
    ) -> None:
        self.execution_mode = coerce_mode(execution_mode)
        self.test_strategy = coerce_strategy(test_strategy)
        check_mode_options(self.execution_mode, retries=retries, cache=cache)
        check_concurrency(concurrency)
        self.scheduling = coerce_scheduling(scheduling)
        self.concurrency_keys = check_concurrency_keys(self.execution_mode, concurrency_keys)
        self.threads = threads
        self.settings = (settings or PrefectDbtSettings()).copy_with()
        self.manifest_path: Path | None = None
        if manifest_path is not None:
            self.manifest_path = _absolute(Path(manifest_path), self.settings.project_dir)
            self.settings = self.settings.copy_with(target_path=self.manifest_path.parent)
        self.state_path = state_path
        self.owns_executor = executor is None
        if executor is None:
            core_executor = executor_class("DbtCoreExecutor")  # the [core] extra
            default: Executor = core_executor(
                self.settings,
                threads=threads,
                state_path=state_path,
                defer=defer,
                defer_state_path=defer_state_path,
                favor_state=favor_state,
                manifest_path=self.manifest_path,  # run from it: no deps, no parse
            )
            executor = default
        self.executor: Executor = executor
        self.retries = retries
        self.retry_delay_seconds = retry_delay_seconds
        self.concurrency = concurrency
        self.task_runner_type = task_runner_type
        self.cache = cache
        self.create_summary_artifact = create_summary_artifact
        self.include_compiled_code = include_compiled_code
        self.write_run_results = write_run_results
        self.disable_assets = disable_assets
        self.raise_on_failure = raise_on_failure
        self.node_timeout_seconds = node_timeout_seconds

    def close(self) -> None:
        """Stop the executor if this orchestrator created it (the default ``DbtCoreExecutor``).

        An executor you passed in is yours: it is left open. The orchestrator can be used again
        after ``close()`` (the default executor restarts its workers when needed).
        """
        if self.owns_executor:
            self.executor.close()

    def __enter__(self) -> PrefectDbtOrchestrator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"PrefectDbtOrchestrator(project_dir={str(self.settings.project_dir)!r}, "
            f"execution_mode={self.execution_mode.value!r}, "
            f"test_strategy={self.test_strategy.value!r}, cache={self.cache is not None})"
        )

    def plan(
        self,
        select: str | None = None,
        exclude: str | None = None,
        full_refresh: bool = False,
        only_fresh_sources: bool = False,
        target: str | None = None,
        extra_cli_args: list[str] | None = None,
        *,
        selector: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> BuildPlan:
        """Preview what :meth:`run_build` would execute, without running any model.

        Parses/loads the manifest, resolves selection natively, checks source freshness when
        asked, computes waves and, with a cache, predicts hits and misses with their reasons.

        Returns:
            A :class:`BuildPlan`; ``print()`` it for a readable summary.
        """
        args = BuildArgs(
            select=select,
            exclude=exclude,
            selector=selector,
            full_refresh=full_refresh,
            only_fresh_sources=only_fresh_sources,
            target=target,
            extra_cli_args=tuple(extra_cli_args) if extra_cli_args is not None else None,
            vars=vars,
        )
        with collector_paused():
            return preview(prepare(self._options(), self.executor, args))

    def run_build(
        self,
        select: str | None = None,
        exclude: str | None = None,
        full_refresh: bool = False,
        only_fresh_sources: bool = False,
        target: str | None = None,
        extra_cli_args: list[str] | None = None,
        *,
        selector: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Build the selected nodes and return a result per node.

        Args:
            select: dbt selection syntax (``"tag:daily"``, ``"+orders"``, ``"state:modified+"``).
            exclude: dbt exclusion syntax.
            full_refresh: ``--full-refresh`` for models and seeds; also refreshes the cache.
            only_fresh_sources: Skip nodes fed by stale sources (``dbt source freshness``).
            target: The dbt target to run against.
            extra_cli_args: More dbt flags (validated: see the guide's table).
            selector: A YAML selector's name.
            vars: dbt ``--vars``.

        Returns:
            ``{unique_id: result}``; see the guide's "Result format".

        Raises:
            DbtBuildFailed: A node ended in ``"error"`` and ``raise_on_failure`` is set.
            ValueError: Blocked or first-class flags in ``extra_cli_args``.
        """
        args = BuildArgs(
            select=select,
            exclude=exclude,
            selector=selector,
            full_refresh=full_refresh,
            only_fresh_sources=only_fresh_sources,
            target=target,
            extra_cli_args=tuple(extra_cli_args) if extra_cli_args is not None else None,
            vars=vars,
        )
        executor, options = self.executor, self._options()
        deprioritize_local_server()  # its bookkeeping can wait; dbt's nodes cannot
        # One scope for the whole run, its preparation included: a dbt Cloud compile job made
        # to resolve the manifest belongs to the build and is swept with it.
        with _run_scope(executor, options):
            with collector_paused():
                ctx = prepare(options, executor, args)
            with heap_frozen():
                if ctx.options.execution_mode is ExecutionMode.PER_WAVE:
                    outcomes = run_per_wave(ctx, executor)
                else:
                    outcomes = run_per_node(ctx, executor)
                for uid, skip in ctx.stale_skips.items():
                    outcomes.setdefault(uid, skip)
                finish_run(ctx, outcomes)
                results = results_of(outcomes)
        failed = any(o.status is OutcomeStatus.ERROR for o in outcomes.values())
        if failed and ctx.options.raise_on_failure:
            raise DbtBuildFailed(results)
        return results

    def _options(self) -> RunOptions:
        """The options as they are now (the attributes may be changed between calls)."""
        return RunOptions(
            settings=self.settings,
            manifest_path=self.manifest_path,
            state_path=self.state_path,
            execution_mode=self.execution_mode,
            test_strategy=self.test_strategy,
            retries=self.retries,
            retry_delay_seconds=self.retry_delay_seconds,
            concurrency=self.concurrency,
            task_runner_type=self.task_runner_type,
            cache=self.cache,
            create_summary_artifact=self.create_summary_artifact,
            include_compiled_code=self.include_compiled_code,
            write_run_results=self.write_run_results,
            disable_assets=self.disable_assets,
            raise_on_failure=self.raise_on_failure,
            node_timeout_seconds=self.node_timeout_seconds,
            threads=self.threads,
            scheduling=self.scheduling,
            concurrency_keys=tuple(self.concurrency_keys),
        )


def _run_scope(executor: Executor, options: RunOptions) -> AbstractContextManager[Any, None]:
    """The executor's ``run_scope`` around one run (nothing for executors without one).

    Its ``concurrency`` is the most requests the run keeps in flight: one in PER_WAVE (a wave
    at a time, whose nodes dbt runs on its own ``--threads``), an int ``concurrency`` in
    PER_NODE. Otherwise it is ``None``, for the executor to choose (``DbtCoreExecutor``: at
    least 8 nodes at once): the scope opens before the plan whose width would tell.
    """
    scope = getattr(executor, "run_scope", None)
    if scope is None:
        return nullcontext()
    if options.execution_mode is ExecutionMode.PER_WAVE:
        return scope(concurrency=1)
    return scope(concurrency=options.max_in_flight)


def _absolute(path: Path, project_dir: Path) -> Path:
    """``path`` made absolute, relative paths against the project directory."""
    return (path if path.is_absolute() else project_dir / path).absolute()
