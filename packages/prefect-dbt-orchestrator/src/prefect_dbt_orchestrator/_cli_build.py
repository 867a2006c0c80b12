"""``dbt-orchestrator build``: the build in a Prefect flow, with progress and a summary.

The flow returns ``run_build()``'s documented dicts; they are read back into
:class:`~prefect_dbt_orchestrator._outcomes.NodeOutcome` here, at the edge, to be shown.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TextIO

from prefect_dbt_orchestrator._artifacts import node_label, status_counts
from prefect_dbt_orchestrator._build_plan import BuildPlan
from prefect_dbt_orchestrator._cli import EXIT_FAILED, EXIT_OK, unusable
from prefect_dbt_orchestrator._errors import DbtBuildFailed
from prefect_dbt_orchestrator._orchestrator import PrefectDbtOrchestrator
from prefect_dbt_orchestrator._outcomes import NodeOutcome, OutcomeStatus
from prefect_dbt_orchestrator._progress import Progress, ProgressExecutor
from prefect_dbt_orchestrator._savings import CacheSavings
from prefect_dbt_orchestrator._server import (
    needs_local_server,
    start_local_server,
    wait_until_recorded,
)

FLOW_NAME = "dbt-build"
#: Skipped nodes listed by name in the summary at most.
MAX_SKIPS_SHOWN = 20


def build(
    orch: PrefectDbtOrchestrator,
    args: argparse.Namespace,
    selection: dict[str, Any],
    out: TextIO,
) -> int:
    """Plan (for the total), run the build in a flow with live progress, print the summary.

    The orchestrator is closed when the build is over.
    """
    with orch:
        try:
            # Knowing the plan gives the display its total; with --only-fresh-sources that
            # would check freshness twice, so the total is left open instead.
            plan = None if args.only_fresh_sources else orch.plan(**selection)
        except Exception as exc:
            return unusable(exc)
        titles = _titles(plan)
        if plan is not None:
            print(
                f"Building {plan.node_count} node(s) in {len(plan.waves)} wave(s) "
                f"({args.mode}, tests: {args.test_strategy}) from {orch.settings.project_dir}",
                file=out,
                flush=True,
            )
        progress = Progress(total=plan.node_count if plan is not None else None, stream=out)
        orch.executor = ProgressExecutor(orch.executor, progress)
        try:
            outcomes, flow_run = _run_in_flow(orch, selection, progress, titles, out)
        except Exception as exc:
            return unusable(exc)
    _print_summary(outcomes, titles, progress, orch, out)
    if flow_run is not None:
        # A link into a temporary server's UI would be dead by the time it is read.
        from prefect.settings import get_current_settings

        link = _flow_run_link(flow_run, with_url=bool(get_current_settings().api.url))
        print(f"Prefect flow run: {link}", file=out, flush=True)
    failed = any(o.status is OutcomeStatus.ERROR for o in outcomes.values())
    return EXIT_FAILED if failed else EXIT_OK


def _titles(plan: BuildPlan | None) -> dict[str, str]:
    if plan is None:
        return {}
    return {
        n.unique_id: f"{n.resource_type.value} {n.display_name}"
        for wave in plan.waves
        for n in wave.nodes
    }


def _run_in_flow(
    orch: PrefectDbtOrchestrator,
    selection: dict[str, Any],
    progress: Progress,
    titles: Mapping[str, str],
    out: TextIO,
) -> tuple[dict[str, NodeOutcome], Any]:
    """Run the build in the ``dbt-build`` flow; its outcomes and the flow run."""
    from prefect import flow

    flow_runs: list[Any] = []

    @flow(name=FLOW_NAME, log_prints=False, validate_parameters=False)
    def dbt_build(**parameters: Any) -> dict[str, dict[str, Any]]:
        from prefect.context import FlowRunContext

        flow_ctx = FlowRunContext.get()
        if flow_ctx is not None and flow_ctx.flow_run is not None:
            flow_runs.append(flow_ctx.flow_run)
        return orch.run_build(**parameters)

    results: Mapping[str, Mapping[str, Any]] = {}
    with _prefect_api(out) as local_server:
        with progress:
            try:
                results = dbt_build(**selection)
            except DbtBuildFailed as exc:
                results = exc.results
            finally:
                outcomes = {uid: NodeOutcome.from_dict(r) for uid, r in results.items()}
                _report_unseen(outcomes, progress, titles)
        if local_server and flow_runs:
            # It stops when this process exits: let it record the last task runs first.
            wait_until_recorded(flow_runs[0].id)
    return outcomes, flow_runs[0] if flow_runs else None


def _report_unseen(
    outcomes: Mapping[str, NodeOutcome], progress: Progress, titles: Mapping[str, str]
) -> None:
    """Nodes dbt never saw (cache hits and skips), reported once the run is over."""
    for uid, outcome in outcomes.items():
        unseen = outcome.status in (OutcomeStatus.CACHED, OutcomeStatus.SKIPPED)
        if unseen and uid not in progress.outcomes:
            title = _name(uid, titles)
            progress.finished(uid, title, outcome.status.value, _reason(outcome, titles))


@contextmanager
def _prefect_api(out: TextIO) -> Iterator[bool]:
    """The configured Prefect API, or Prefect's own local server, started for this build;
    whether it is the latter.

    Prefect would start that server itself, but with a startup timeout meant for fast
    machines; a first start (database migrations) on a busy one takes longer.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if not needs_local_server():
        yield False
        return
    print(
        "No PREFECT_API_URL set: starting a local Prefect server for this build...",
        file=out,
        flush=True,
    )
    server = start_local_server(min_timeout=180)
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield True


def _print_summary(
    outcomes: Mapping[str, NodeOutcome],
    titles: Mapping[str, str],
    progress: Progress,
    orch: PrefectDbtOrchestrator,
    out: TextIO,
) -> None:
    counts = status_counts(outcomes)
    savings = CacheSavings.of(outcomes)
    print(
        f"\nFinished in {progress.elapsed():.1f}s: {counts['success']} success, "
        f"{counts['cached']} cached, {counts['error']} error, {counts['skipped']} skipped, "
        f"{counts['warn']} warn ({counts['total']} node(s))."
        + (f" {savings.sentence()}." if savings.served else ""),
        file=out,
    )
    errors = {u: o for u, o in outcomes.items() if o.status is OutcomeStatus.ERROR}
    if errors:
        print("\nFailed:", file=out)
        for uid, outcome in errors.items():
            message = (outcome.error.message if outcome.error else None) or outcome.message
            first = " ".join((message or "").split())
            print(f"  {_name(uid, titles)}: {first[:400]}", file=out)
    skipped = [u for u, o in outcomes.items() if o.status is OutcomeStatus.SKIPPED]
    if skipped:
        print(f"\nSkipped ({len(skipped)}):", file=out)
        for uid in skipped[:MAX_SKIPS_SHOWN]:
            print(f"  {_name(uid, titles)}: {_reason(outcomes[uid], titles)}", file=out)
        if len(skipped) > MAX_SKIPS_SHOWN:
            print(f"  ... and {len(skipped) - MAX_SKIPS_SHOWN} more", file=out)
    target = orch.settings.resolved_target_path() / "run_results.json"
    print(f"\nrun_results.json: {target}", file=out, flush=True)


def _flow_run_link(flow_run: Any, *, with_url: bool) -> str:
    """``name (id)``, and the UI address when asked and Prefect knows one."""
    from prefect.utilities.urls import url_for

    text = f"{flow_run.name} ({flow_run.id})"
    url = None
    if with_url:
        try:
            url = url_for(flow_run)
        except Exception:  # no UI configured: the name and id are enough
            url = None
    return f"{text} {url}" if url else text


def _name(uid: str, titles: Mapping[str, str]) -> str:
    """``model orders``: the plan's title of a node, or one made from its id."""
    if uid in titles:
        return titles[uid]
    name, kind = node_label(uid, None)
    return f"{kind} {name}"


def _reason(outcome: NodeOutcome, titles: Mapping[str, str]) -> str:
    reason = outcome.reason or ""
    upstream = outcome.failed_upstream
    if upstream:
        names = ", ".join(titles.get(u, u) for u in upstream[:3])
        more = f" (+{len(upstream) - 3})" if len(upstream) > 3 else ""
        reason = f"{reason} ({names}{more})"
    return reason
