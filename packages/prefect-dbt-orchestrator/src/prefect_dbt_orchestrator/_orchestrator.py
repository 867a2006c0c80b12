"""``PrefectDbtOrchestrator``: the flow-facing API."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_graph import (
    ExecutionPlan,
    Executor,
    Manifest,
    Node,
    ResourceType,
    SourceFreshness,
    TestStrategy,
    build_plan,
    check_extra_args,
    load_manifest,
    select,
)

from prefect_dbt_orchestrator._build_plan import BuildPlan
from prefect_dbt_orchestrator._cache import NodeCache
from prefect_dbt_orchestrator._config import (
    CacheConfig,
    ExecutionMode,
    coerce_mode,
    coerce_strategy,
)
from prefect_dbt_orchestrator._errors import DbtBuildFailed
from prefect_dbt_orchestrator._finish import finish_run
from prefect_dbt_orchestrator._per_node import run_per_node
from prefect_dbt_orchestrator._per_wave import run_per_wave
from prefect_dbt_orchestrator._project import ProjectConfig
from prefect_dbt_orchestrator._settings import PrefectDbtSettings

logger = logging.getLogger("prefect_dbt_orchestrator")


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """Everything one run_build() or plan() call resolved before executing (no shared state)."""

    settings: PrefectDbtSettings
    manifest: Manifest
    plan: ExecutionPlan
    stale_skips: Mapping[str, dict[str, Any]]
    freshness: Mapping[str, SourceFreshness]
    full_refresh: bool
    target: str | None
    vars: Mapping[str, Any] | None
    extra_args: tuple[str, ...]
    cache: NodeCache | None


class PrefectDbtOrchestrator:
    """Runs a dbt project under Prefect: per wave or per node, with retries, caching and lineage.

    Args:
        settings: Project, profiles and target directories. A copy is used; yours is never
            changed. Default: ``PrefectDbtSettings()`` from the working directory and ``DBT_``
            environment variables.
        manifest_path: A pre-built manifest.json (relative paths are resolved against the project
            dir). Without it, the executor resolves one (``dbt deps`` + ``dbt parse`` if needed).
        executor: Who runs dbt. Default: a ``DbtCoreExecutor`` built from ``settings`` and the
            five dbt flags below.
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

    Raises:
        ValueError: An invalid mode or strategy, ``retries`` or ``cache`` with PER_WAVE, or (with
            the default executor) a project or profiles directory that is not usable.
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
    ) -> None:
        self.execution_mode = coerce_mode(execution_mode)
        self.test_strategy = coerce_strategy(test_strategy)
        if retries and self.execution_mode is not ExecutionMode.PER_NODE:
            raise ValueError(
                "Retries are only supported in PER_NODE execution mode. Pass "
                "execution_mode=ExecutionMode.PER_NODE, or retries=0."
            )
        if cache is not None and self.execution_mode is not ExecutionMode.PER_NODE:
            raise ValueError(
                "Caching is only supported in PER_NODE execution mode. Pass "
                "execution_mode=ExecutionMode.PER_NODE, or cache=None."
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int | str | None):
            raise ValueError(
                f"concurrency must be an int (worker count), the name of a Prefect global "
                f"concurrency limit, or None; got {concurrency!r}"
            )
        self.settings = (settings or PrefectDbtSettings()).copy_with()
        self.manifest_path: Path | None = None
        if manifest_path is not None:
            path = Path(manifest_path)
            if not path.is_absolute():
                path = self.settings.project_dir / path
            self.manifest_path = path.absolute()
            self.settings = self.settings.copy_with(target_path=self.manifest_path.parent)
        self.state_path = state_path
        self.owns_executor = executor is None
        if executor is None:
            from dbt_exec_core import DbtCoreExecutor

            executor = DbtCoreExecutor(
                self.settings,
                threads=threads,
                state_path=state_path,
                defer=defer,
                defer_state_path=defer_state_path,
                favor_state=favor_state,
            )
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
        ctx = self._prepare(
            select,
            exclude,
            selector,
            full_refresh,
            only_fresh_sources,
            target,
            extra_cli_args,
            vars,
        )
        predictions: dict[str, str] | None = None
        reasons: dict[str, tuple[str, ...]] = {}
        if ctx.cache is not None:
            predictions = {}
            for uid in ctx.plan.nodes:
                decision = ctx.cache.predict(uid)
                predictions[uid] = decision.outcome
                if decision.outcome == "miss":
                    reasons[uid] = decision.reasons
        return BuildPlan(
            waves=ctx.plan.waves,
            node_count=ctx.plan.node_count,
            cache_predictions=predictions,
            skipped_nodes={u: dict(v) for u, v in ctx.stale_skips.items()},
            estimated_parallelism=ctx.plan.estimated_parallelism,
            cache_reasons=reasons,
        )

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
        ctx = self._prepare(
            select,
            exclude,
            selector,
            full_refresh,
            only_fresh_sources,
            target,
            extra_cli_args,
            vars,
        )
        if self.execution_mode is ExecutionMode.PER_WAVE:
            results = run_per_wave(self, ctx)
        else:
            results = run_per_node(self, ctx)
        for uid, skip in ctx.stale_skips.items():
            results.setdefault(uid, dict(skip))
        finish_run(self, ctx, results)
        if self.raise_on_failure and any(r["status"] == "error" for r in results.values()):
            raise DbtBuildFailed(results)
        return results

    def _prepare(
        self,
        select_expr: str | None,
        exclude: str | None,
        selector: str | None,
        full_refresh: bool,
        only_fresh_sources: bool,
        target: str | None,
        extra_cli_args: Sequence[str] | None,
        vars: Mapping[str, Any] | None,
    ) -> RunContext:
        extra_args = validated_extra_args(self.executor, extra_cli_args)
        settings = self.settings
        if self.manifest_path is not None:
            if not self.manifest_path.is_file():
                raise FileNotFoundError(
                    f"manifest_path {self.manifest_path} does not exist. Build it with "
                    "`dbt parse`, or drop manifest_path to let the executor create one."
                )
            manifest_file = self.manifest_path
        else:
            manifest_file = self.executor.resolve_manifest(target=target, vars=vars)
            settings = settings.copy_with(target_path=Path(manifest_file).parent)
        manifest = load_manifest(manifest_file)
        selected = select(
            manifest,
            select_expr,
            exclude,
            selector=selector,
            state=self.state_path,
        )
        freshness: Mapping[str, SourceFreshness] = {}
        stale_skips: dict[str, dict[str, Any]] = {}
        wants_ttl = self.cache is not None and self.cache.use_source_freshness_expiration
        if only_fresh_sources or wants_ttl:
            sources = _upstream_sources(manifest, selected)
            if sources:
                freshness = self.executor.source_freshness(
                    sorted(sources), target=target, vars=vars
                )
            if only_fresh_sources:
                selected, stale_skips = _drop_stale(manifest, selected, freshness)
        plan = build_plan(manifest, selected, test_strategy=self.test_strategy)
        cache = None
        if self.cache is not None:
            project = ProjectConfig.read(settings)
            cache = NodeCache.create(
                self.cache,
                manifest=manifest,
                project_dir=settings.project_dir,
                plan=plan,
                freshness=freshness,
                full_refresh=full_refresh,
                target=project.target(target),
                vars=project.vars(vars),
                extra_args=extra_args,
            )
        return RunContext(
            settings=settings,
            manifest=manifest,
            plan=plan,
            stale_skips=stale_skips,
            freshness=freshness,
            full_refresh=full_refresh,
            target=target,
            vars=vars,
            extra_args=extra_args,
            cache=cache,
        )


def _ancestry(manifest: Manifest) -> dict[str, frozenset[str]]:
    """Every node's ancestors (all types, through ephemerals), each computed once."""
    memo: dict[str, frozenset[str]] = {}
    parent_map = manifest.parent_map
    for start in manifest.nodes:
        stack = [start]
        while stack:  # iterative post-order: deep chains must not hit the recursion limit
            uid = stack[-1]
            pending = [p for p in parent_map.get(uid, ()) if p not in memo and p not in stack]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            if uid not in memo:
                acc: set[str] = set()
                for p in parent_map.get(uid, ()):
                    acc.add(p)
                    acc |= memo.get(p, frozenset())
                memo[uid] = frozenset(acc)
    return memo


def _upstream_sources(manifest: Manifest, selected: frozenset[str]) -> set[str]:
    ancestry = _ancestry(manifest)
    nodes = manifest.nodes
    return {
        a
        for uid in selected
        if uid in nodes and (nodes[uid].is_executable or nodes[uid].is_test)
        for a in ancestry[uid]
        if nodes[a].resource_type is ResourceType.SOURCE
    }


def _drop_stale(
    manifest: Manifest, selected: frozenset[str], freshness: Mapping[str, SourceFreshness]
) -> tuple[frozenset[str], dict[str, dict[str, Any]]]:
    stale = {uid for uid, f in freshness.items() if f.status.is_stale}
    if not stale:
        return selected, {}
    ancestry = _ancestry(manifest)
    nodes = manifest.nodes
    skips: dict[str, dict[str, Any]] = {}
    removed: set[str] = set()
    for uid in selected:
        node: Node | None = nodes.get(uid)
        if node is None or not (node.is_executable or node.is_test):
            continue
        hit = sorted(ancestry[uid] & stale)
        if hit:
            removed.add(uid)
            if node.is_executable:
                skips[uid] = {"status": "skipped", "reason": f"stale source: {', '.join(hit)}"}
    order = {u: i for i, u in enumerate(nodes)}
    return selected - removed, dict(sorted(skips.items(), key=lambda kv: order[kv[0]]))


def validated_extra_args(executor: Executor, args: Sequence[str] | None) -> tuple[str, ...]:
    """The executor's own check of extra dbt arguments, or the guide's table without one.

    The table applies to executors that cannot check their own flags because the guide promises
    a ``ValueError`` for its blocked flags whoever runs dbt: passed on unchecked, ``--select``
    would widen what a node's invocation builds.
    """
    validate = getattr(executor, "validate_extra_args", None)
    if validate is None:
        return check_extra_args(args)
    return tuple(validate(tuple(args or ())))
