"""The ``dbt-orchestrator-summary`` markdown artifact: what a build did, readable in the UI.

Nodes are named as dbt users know them (``orders``, ``customers.v2``, ``not_null_orders_id``),
never by the last segment of a unique_id (a hash for generic tests).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dbt_graph import Manifest

from prefect_dbt_orchestrator._outcomes import NodeOutcome, OutcomeStatus
from prefect_dbt_orchestrator._savings import CacheSavings

logger = logging.getLogger("prefect_dbt_orchestrator.artifacts")

ARTIFACT_KEY = "dbt-orchestrator-summary"
#: Successful and cached nodes listed by name at most; errors and skips are always all listed.
MAX_LISTED = 500


def node_label(uid: str, manifest: Manifest | None) -> tuple[str, str]:
    """The readable name and resource type of a node.

    >>> node_label("test.shop.not_null_orders_id.e2cfb1f9aa", None)
    ('not_null_orders_id', 'test')
    >>> node_label("model.shop.customers.v2", None)
    ('customers.v2', 'model')
    """
    node = manifest.nodes.get(uid) if manifest is not None else None
    if node is not None:
        return node.display_name, node.resource_type.value
    # Not in the manifest: derive it from the id, without the hash of generic tests.
    parts = uid.split(".")
    kind = parts[0]
    if len(parts) < 3:
        return uid, kind
    if kind == "test":
        return parts[2], kind
    if kind == "unit_test":
        return parts[-1], kind
    return ".".join(parts[2:]), kind


def status_counts(outcomes: Mapping[str, NodeOutcome]) -> dict[str, int]:
    """How many nodes ended in each status, plus ``warn`` (successes dbt flagged as warnings).

    >>> from prefect_dbt_orchestrator._outcomes import NodeOutcome, OutcomeStatus
    >>> status_counts({"a": NodeOutcome(status=OutcomeStatus.SUCCESS, dbt_status="warn"),
    ...                "b": NodeOutcome(status=OutcomeStatus.ERROR)})
    {'success': 1, 'cached': 0, 'error': 1, 'skipped': 0, 'warn': 1, 'total': 2}
    """
    counts = {status.value: 0 for status in OutcomeStatus}
    for outcome in outcomes.values():
        counts[outcome.status.value] += 1
    counts["warn"] = sum(1 for o in outcomes.values() if o.dbt_status == "warn")
    counts["total"] = len(outcomes)
    return counts


def summary_markdown(outcomes: Mapping[str, NodeOutcome], manifest: Manifest | None = None) -> str:
    """The summary artifact's markdown.

    Sections: a count table and what the cache saved, then errors (with dbt's message),
    warnings, skipped nodes (with the reason and the failed nodes upstream), nodes whose
    ``freshness.build_after`` deferred a rebuild (with why), cached and successful nodes.
    """
    counts = status_counts(outcomes)
    lines = [
        "## dbt build summary",
        "",
        "| Success | Cached | Warn | Error | Skipped | Total |",
        "| :---: | :---: | :---: | :---: | :---: | :---: |",
        f"| {counts['success']} | {counts['cached']} | {counts['warn']} | {counts['error']} "
        f"| {counts['skipped']} | {counts['total']} |",
    ]
    savings = CacheSavings.of(outcomes)
    if savings.served:
        lines += ["", f"**Cache:** {savings.sentence()} (what their last real runs took)."]
    by_status: dict[OutcomeStatus, dict[str, NodeOutcome]] = {s: {} for s in OutcomeStatus}
    for uid, outcome in outcomes.items():
        by_status[outcome.status][uid] = outcome
    warned = {u: o for u, o in outcomes.items() if o.dbt_status == "warn"}
    lines += _errors(by_status[OutcomeStatus.ERROR], manifest)
    if warned:
        lines += ["", f"### Warnings ({len(warned)})", ""]
        lines += [f"- {_label(u, manifest)}: {_one_line(o.message)}" for u, o in warned.items()]
    lines += _skips(by_status[OutcomeStatus.SKIPPED], manifest)
    lines += _deferred(by_status[OutcomeStatus.CACHED], manifest)
    lines += _listed("Cached", by_status[OutcomeStatus.CACHED], manifest, timed=False)
    lines += _listed("Successful", by_status[OutcomeStatus.SUCCESS], manifest, timed=True)
    return "\n".join(lines) + "\n"


def _label(uid: str, manifest: Manifest | None) -> str:
    name, kind = node_label(uid, manifest)
    return f"`{name}` ({kind})"


def _errors(failed: Mapping[str, NodeOutcome], manifest: Manifest | None) -> list[str]:
    if not failed:
        return []
    lines = ["", f"### Errors ({len(failed)})"]
    for uid, outcome in failed.items():
        error = outcome.error
        message = (error.message if error else None) or outcome.message
        detail = outcome.dbt_status or (error.type if error else None)
        lines += ["", f"**{_label(uid, manifest)}**" + (f" — {detail}" if detail else "")]
        lines += _quoted(message or "unknown error")
    return lines


def _skips(skipped: Mapping[str, NodeOutcome], manifest: Manifest | None) -> list[str]:
    if not skipped:
        return []
    lines = ["", f"### Skipped ({len(skipped)})", ""]
    for uid, outcome in skipped.items():
        line = f"- {_label(uid, manifest)}: {_one_line(outcome.reason) or 'skipped'}"
        if outcome.failed_upstream:
            after = ", ".join(f"`{node_label(u, manifest)[0]}`" for u in outcome.failed_upstream)
            line += f" — after {after}"
        lines.append(line)
    return lines


def _deferred(cached: Mapping[str, NodeOutcome], manifest: Manifest | None) -> list[str]:
    deferred = {u: o.cache.deferred for u, o in cached.items() if o.cache and o.cache.deferred}
    if not deferred:
        return []
    lines = ["", f"### Deferred by freshness.build_after ({len(deferred)})", ""]
    lines += [f"- {_label(u, manifest)}: {_one_line(why)}" for u, why in deferred.items()]
    return lines


def _listed(
    title: str, listed: Mapping[str, NodeOutcome], manifest: Manifest | None, *, timed: bool
) -> list[str]:
    if not listed:
        return []
    lines = ["", f"### {title} ({len(listed)})", ""]
    for uid, outcome in list(listed.items())[:MAX_LISTED]:
        took = f" in {outcome.timing.duration_seconds:.2f}s" if timed and outcome.timing else ""
        lines.append(f"- {_label(uid, manifest)}{took}")
    if len(listed) > MAX_LISTED:
        lines.append(f"- … and {len(listed) - MAX_LISTED} more")
    return lines


def create_summary_artifact(
    outcomes: Mapping[str, NodeOutcome], manifest: Manifest | None = None
) -> str | None:
    """Create the summary artifact in the current flow run; log (never raise) on failure.

    Returns:
        The artifact's id, or ``None`` when there is no flow run or creation failed.
    """
    from prefect.context import FlowRunContext, TaskRunContext

    if FlowRunContext.get() is None and TaskRunContext.get() is None:
        logger.debug("Not in a flow run: no %s artifact", ARTIFACT_KEY)
        return None
    try:
        from prefect.artifacts import create_markdown_artifact

        counts = status_counts(outcomes)
        savings = CacheSavings.of(outcomes)
        saved = f" (saved {savings.seconds:.1f}s of dbt time)" if savings.served else ""
        artifact_id = create_markdown_artifact(
            markdown=summary_markdown(outcomes, manifest),
            key=ARTIFACT_KEY,
            description=(
                f"dbt build: {counts['success']} success, {counts['cached']} cached{saved}, "
                f"{counts['error']} error, {counts['skipped']} skipped"
            ),
        )
        return str(artifact_id)
    except Exception:
        logger.warning("Could not create the %s artifact", ARTIFACT_KEY, exc_info=True)
        return None


def _quoted(message: str) -> list[str]:
    # A fenced block keeps SQL and dbt's multi-line messages verbatim (no markdown rendering).
    fence = "```"
    while fence in message:
        fence += "`"
    return ["", f"{fence}text", message.rstrip(), fence]


def _one_line(text: Any) -> str:
    return " ".join(str(text).split()) if text else ""
