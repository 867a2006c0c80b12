"""The ``dbt-orchestrator-summary`` markdown artifact: what a build did, readable in the UI.

Nodes are named as dbt users know them (``orders``, ``customers.v2``, ``not_null_orders_id``),
never by the last segment of a unique_id (a hash for generic tests).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from dbt_graph import Manifest

logger = logging.getLogger("prefect_dbt_orchestrator.artifacts")

ARTIFACT_KEY = "dbt-orchestrator-summary"
#: Successful and cached nodes listed by name at most; errors and skips are always all listed.
MAX_LISTED = 500

_STATUSES = ("success", "cached", "error", "skipped")


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


def status_counts(results: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """How many nodes ended in each status, plus ``warn`` (successes dbt flagged as warnings).

    >>> status_counts({"a": {"status": "success", "dbt_status": "warn"}, "b": {"status": "error"}})
    {'success': 1, 'cached': 0, 'error': 1, 'skipped': 0, 'warn': 1, 'total': 2}
    """
    counts = dict.fromkeys(_STATUSES, 0)
    for result in results.values():
        status = result.get("status")
        if status in counts:
            counts[status] += 1
    counts["warn"] = sum(1 for r in results.values() if r.get("dbt_status") == "warn")
    counts["total"] = len(results)
    return counts


def summary_markdown(
    results: Mapping[str, Mapping[str, Any]], manifest: Manifest | None = None
) -> str:
    """The summary artifact's markdown.

    Sections: a count table, then errors (with dbt's message), warnings, skipped nodes (with
    the reason and the failed nodes upstream), cached and successful nodes.
    """
    counts = status_counts(results)
    lines = [
        "## dbt build summary",
        "",
        "| Success | Cached | Warn | Error | Skipped | Total |",
        "| :---: | :---: | :---: | :---: | :---: | :---: |",
        f"| {counts['success']} | {counts['cached']} | {counts['warn']} | {counts['error']} "
        f"| {counts['skipped']} | {counts['total']} |",
    ]

    def label(uid: str) -> str:
        name, kind = node_label(uid, manifest)
        return f"`{name}` ({kind})"

    by_status: dict[str, list[str]] = {s: [] for s in _STATUSES}
    for uid, result in results.items():
        by_status.setdefault(result.get("status", ""), []).append(uid)

    if by_status["error"]:
        lines += ["", f"### Errors ({len(by_status['error'])})"]
        for uid in by_status["error"]:
            result = results[uid]
            message = (result.get("error") or {}).get("message") or result.get("message")
            detail = result.get("dbt_status") or (result.get("error") or {}).get("type")
            lines += ["", f"**{label(uid)}**" + (f" — {detail}" if detail else "")]
            lines += _quoted(message or "unknown error")

    warned = [u for u in results if results[u].get("dbt_status") == "warn"]
    if warned:
        lines += ["", f"### Warnings ({len(warned)})", ""]
        lines += [f"- {label(u)}: {_one_line(results[u].get('message'))}" for u in warned]

    if by_status["skipped"]:
        lines += ["", f"### Skipped ({len(by_status['skipped'])})", ""]
        for uid in by_status["skipped"]:
            result = results[uid]
            line = f"- {label(uid)}: {_one_line(result.get('reason')) or 'skipped'}"
            upstream = result.get("failed_upstream") or []
            if upstream:
                line += " — after " + ", ".join(f"`{node_label(u, manifest)[0]}`" for u in upstream)
            lines.append(line)

    for status, title in (("cached", "Cached"), ("success", "Successful")):
        listed = by_status[status]
        if not listed:
            continue
        lines += ["", f"### {title} ({len(listed)})", ""]
        for uid in listed[:MAX_LISTED]:
            seconds = (results[uid].get("timing") or {}).get("duration_seconds")
            lines.append(
                f"- {label(uid)}"
                + (
                    f" in {seconds:.2f}s"
                    if status == "success" and isinstance(seconds, int | float)
                    else ""
                )
            )
        if len(listed) > MAX_LISTED:
            lines.append(f"- … and {len(listed) - MAX_LISTED} more")
    return "\n".join(lines) + "\n"


def create_summary_artifact(
    results: Mapping[str, Mapping[str, Any]], manifest: Manifest | None = None
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

        counts = status_counts(results)
        artifact_id = create_markdown_artifact(
            markdown=summary_markdown(results, manifest),
            key=ARTIFACT_KEY,
            description=(
                f"dbt build: {counts['success']} success, {counts['cached']} cached, "
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
