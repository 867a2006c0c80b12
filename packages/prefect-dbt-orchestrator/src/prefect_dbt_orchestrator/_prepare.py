"""Everything a call resolves before running a node: flags, manifest, selection, freshness,
plan and cache keys, into one :class:`~prefect_dbt_orchestrator._context.RunContext`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from dbt_graph import (
    ExecutionPlan,
    Executor,
    Manifest,
    SourceFreshness,
    build_plan,
    check_extra_args,
    drop_fed_by,
    load_manifest,
    select,
    upstream_sources,
)

from prefect_dbt_orchestrator._cache import NodeCache
from prefect_dbt_orchestrator._context import BuildArgs, RunContext, RunOptions
from prefect_dbt_orchestrator._fingerprinting import take_fingerprints
from prefect_dbt_orchestrator._outcomes import NodeOutcome, stale_source_skip
from prefect_dbt_orchestrator._project import ProjectConfig


def prepare(options: RunOptions, executor: Executor, args: BuildArgs) -> RunContext:
    """Resolve one call, in the order that fails fastest: flags, manifest, selection...

    Raises:
        ValueError: The executor (or the guide's table) refuses an extra dbt argument.
        FileNotFoundError: An explicit ``manifest_path`` does not exist.
    """
    extra_args = validated_extra_args(executor, args.extra_cli_args)
    manifest = load_manifest(_manifest_file(options, executor, args))
    selected = select(
        manifest, args.select, args.exclude, selector=args.selector, state=options.state_path
    )
    freshness: Mapping[str, SourceFreshness] = {}
    stale_skips: dict[str, NodeOutcome] = {}
    wants_ttl = options.cache is not None and options.cache.use_source_freshness_expiration
    if args.only_fresh_sources or wants_ttl:
        sources = upstream_sources(manifest, selected)
        if sources:
            freshness = executor.source_freshness(
                sorted(sources), target=args.target, vars=args.vars
            )
        if args.only_fresh_sources:
            selected, stale_skips = _drop_stale(manifest, selected, freshness)
    plan = build_plan(manifest, selected, test_strategy=options.test_strategy)
    return RunContext(
        options=options,
        manifest=manifest,
        plan=plan,
        stale_skips=stale_skips,
        freshness=freshness,
        full_refresh=args.full_refresh,
        target=args.target,
        vars=args.vars,
        extra_args=extra_args,
        cache=_cache(options, executor, manifest, plan, freshness, args, extra_args),
    )


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


def _manifest_file(options: RunOptions, executor: Executor, args: BuildArgs) -> Path:
    if options.manifest_path is None:
        return Path(executor.resolve_manifest(target=args.target, vars=args.vars))
    if not options.manifest_path.is_file():
        raise FileNotFoundError(
            f"manifest_path {options.manifest_path} does not exist. Build it with "
            "`dbt parse`, or drop manifest_path to let the executor create one."
        )
    return options.manifest_path


def _drop_stale(
    manifest: Manifest, selected: frozenset[str], freshness: Mapping[str, SourceFreshness]
) -> tuple[frozenset[str], dict[str, NodeOutcome]]:
    """Leave out what stale sources feed; the models, seeds and snapshots get a skip outcome."""
    stale = [uid for uid, f in freshness.items() if f.status.is_stale]
    kept, dropped = drop_fed_by(manifest, selected, stale)
    skips = {
        uid: stale_source_skip(sources)
        for uid, sources in dropped.items()
        if manifest.nodes[uid].is_executable
    }
    return kept, skips


def _cache(
    options: RunOptions,
    executor: Executor,
    manifest: Manifest,
    plan: ExecutionPlan,
    freshness: Mapping[str, SourceFreshness],
    args: BuildArgs,
    extra_args: tuple[str, ...],
) -> NodeCache | None:
    if options.cache is None:
        return None
    project = ProjectConfig.read(options.settings)
    fingerprints = None
    if options.cache.data_aware:
        # Before anything runs, for what the plan runs: see _fingerprinting.
        fingerprints = take_fingerprints(
            executor, manifest, plan.nodes, target=args.target, vars=args.vars
        )
    return NodeCache.create(
        options.cache,
        manifest=manifest,
        project_dir=options.settings.project_dir,
        plan=plan,
        freshness=freshness,
        full_refresh=args.full_refresh,
        target=project.target(args.target),
        vars=project.vars(args.vars),
        extra_args=extra_args,
        fingerprints=fingerprints,
    )
