"""What one ``run_build()`` or ``plan()`` call works with: the options, the call's arguments and
everything resolved from them before anything runs.

The modules that execute a run (PER_WAVE, PER_NODE, assets, the finish) take a
:class:`RunContext` and the executor, never the orchestrator: the context is frozen and made
per call, so concurrent calls share nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_graph import (
    Command,
    ConcurrencyKey,
    ExecutionPlan,
    ExecutionRequest,
    Manifest,
    Node,
    SourceFreshness,
    TestStrategy,
)

from prefect_dbt_orchestrator._cache import NodeCache
from prefect_dbt_orchestrator._config import CacheConfig, ExecutionMode, Scheduling
from prefect_dbt_orchestrator._outcomes import NodeOutcome
from prefect_dbt_orchestrator._settings import PrefectDbtSettings


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The orchestrator's options, as one call sees them (see ``PrefectDbtOrchestrator``).

    Attributes:
        settings: The orchestrator's settings (the user's target path, log level).
        manifest_path: A pre-built manifest, absolute, or ``None``.
        state_path: dbt ``--state``, also for ``state:`` selectors.
        execution_mode: PER_WAVE or PER_NODE.
        test_strategy: Where tests go.
        retries: Per-node retries.
        retry_delay_seconds: Delay between retries.
        concurrency: Worker count, a Prefect global concurrency limit's name, or ``None``.
        task_runner_type: PER_NODE task runner class (or a configured instance).
        cache: Cross-run caching, or ``None``.
        create_summary_artifact: Create the summary artifact in a flow run.
        include_compiled_code: Compiled SQL in asset descriptions.
        write_run_results: Write run_results.json.
        disable_assets: No Prefect assets.
        raise_on_failure: Raise ``DbtBuildFailed`` when a node ended in error.
        node_timeout_seconds: Stop a node (or a wave) after this long.
        threads: dbt ``--threads`` given to the orchestrator, if any.
        scheduling: Which ready node PER_NODE starts first.
        concurrency_keys: Per-node limits beside ``concurrency`` (PER_NODE).
    """

    settings: PrefectDbtSettings
    manifest_path: Path | None = None
    state_path: Path | None = None
    execution_mode: ExecutionMode = ExecutionMode.PER_WAVE
    test_strategy: TestStrategy = TestStrategy.IMMEDIATE
    retries: int = 0
    retry_delay_seconds: int = 30
    concurrency: int | str | None = None
    task_runner_type: Any = None
    cache: CacheConfig | None = None
    create_summary_artifact: bool = True
    include_compiled_code: bool = False
    write_run_results: bool = False
    disable_assets: bool = False
    raise_on_failure: bool = True
    node_timeout_seconds: float | None = None
    threads: int | None = None
    scheduling: Scheduling = Scheduling.CRITICAL_PATH
    concurrency_keys: tuple[ConcurrencyKey, ...] = ()

    @property
    def log_level(self) -> int:
        """The level from which dbt's log lines are forwarded (``settings.log_level``)."""
        level = logging.getLevelName(self.settings.log_level.upper())
        return level if isinstance(level, int) else logging.INFO

    @property
    def max_in_flight(self) -> int | None:
        """How many nodes may run at once, when an int ``concurrency`` says so."""
        if isinstance(self.concurrency, int):
            return max(1, self.concurrency)
        return None


@dataclass(frozen=True, kw_only=True)
class BuildArgs:
    """The arguments of one ``run_build()`` or ``plan()`` call, as given."""

    select: str | None = None
    exclude: str | None = None
    selector: str | None = None
    full_refresh: bool = False
    only_fresh_sources: bool = False
    target: str | None = None
    extra_cli_args: tuple[str, ...] | None = None
    vars: Mapping[str, Any] | None = None


@dataclass(frozen=True, kw_only=True)
class RunContext:
    """Everything one call resolved before executing.

    Attributes:
        options: The orchestrator's options.
        manifest: The manifest the call runs.
        plan: What to run, in which order.
        stale_skips: Nodes left out because stale sources feed them, with their results.
        freshness: Source freshness, when it was checked.
        full_refresh: ``--full-refresh``.
        target: The target the call asked for (``None``: the profile's, left to dbt).
        vars: dbt ``--vars``.
        extra_args: Extra dbt arguments, as the executor's check returned them.
        cache: The call's cache, or ``None``.
    """

    options: RunOptions
    manifest: Manifest
    plan: ExecutionPlan
    stale_skips: Mapping[str, NodeOutcome]
    freshness: Mapping[str, SourceFreshness]
    full_refresh: bool
    target: str | None
    vars: Mapping[str, Any] | None
    extra_args: tuple[str, ...]
    cache: NodeCache | None

    def request(self, command: Command, nodes: tuple[Node, ...]) -> ExecutionRequest:
        """The executor request that runs ``nodes`` with ``command`` in this call."""
        return ExecutionRequest(
            command=command,
            nodes=nodes,
            full_refresh=self.full_refresh,
            target=self.target,
            vars=self.vars,
            extra_args=self.extra_args,
            timeout_seconds=self.options.node_timeout_seconds,
        )
