"""A dbt-compatible ``run_results.json`` (schema v6) for a whole orchestrated build.

dbt's tooling reads it: ``dbt retry`` re-runs what failed or was skipped, ``--select result:fail
--state <dir>`` selects by outcome, docs and observability tools show timings. So statuses are
dbt's own vocabulary (tests ``pass``/``fail``/``warn``/``error``, other nodes
``success``/``error``/``skipped``), and a node served from the orchestrator's cache is a
``success`` (``pass`` for a test) whose message says so.

The file is written atomically: a failed write leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt_graph import Manifest, Node

SCHEMA_VERSION = "https://schemas.getdbt.com/dbt/run-results/v6.json"
FILE_NAME = "run_results.json"
THREAD_ID = "prefect-dbt-orchestrator"

_TEST_STATUSES = frozenset({"pass", "error", "fail", "warn", "skipped"})
_RUN_STATUSES = frozenset({"success", "error", "skipped", "partial success", "no-op"})


def dbt_status(result: Mapping[str, Any], node: Node | None) -> str:
    """The status dbt would have written for this result.

    >>> dbt_status({"status": "error", "dbt_status": "fail"}, None)
    'fail'
    >>> dbt_status({"status": "cached"}, None)
    'success'
    """
    is_test = node is not None and node.is_test
    if node is None:  # not in the manifest: trust dbt's word if it is any dbt status
        allowed = _TEST_STATUSES | _RUN_STATUSES
    else:
        allowed = _TEST_STATUSES if is_test else _RUN_STATUSES
    reported = result.get("dbt_status")
    status = result.get("status")
    if status == "cached":
        return "pass" if is_test else "success"
    if reported in allowed and not (status == "skipped" and reported != "skipped"):
        return str(reported)
    if status == "success":
        return "pass" if is_test else "success"
    if status == "skipped":
        return "skipped"
    return "error"


def result_message(result: Mapping[str, Any]) -> str | None:
    """dbt's message, the error, the skip reason, or a note that the cache served it."""
    status = result.get("status")
    if status == "cached":
        original = result.get("message")
        note = "Served from the orchestrator's cache; dbt did not run it"
        return f"{note} (cached result: {original})" if original else note
    if status == "error":
        return (result.get("error") or {}).get("message") or result.get("message") or "error"
    if status == "skipped":
        reason = result.get("reason") or "skipped"
        upstream = result.get("failed_upstream")
        return f"{reason}: {', '.join(upstream)}" if upstream else str(reason)
    return result.get("message")


def run_results(
    results: Mapping[str, Mapping[str, Any]],
    manifest: Manifest,
    *,
    invocation_id: str,
    generated_at: datetime | None = None,
    args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run_results.json document for an orchestrated build.

    Args:
        results: ``run_build()``'s results, by unique_id.
        manifest: The manifest the build ran (for test vs model vocabulary, relation names).
        invocation_id: Ties the file to the run (the flow run id when there is one).
        generated_at: When the document was made; default now.
        args: dbt's ``args`` block (``which`` and the flags ``dbt retry`` must replay).
    """
    rows = []
    starts: list[datetime] = []
    ends: list[datetime] = []
    for uid, result in results.items():
        node = manifest.nodes.get(uid)
        timing = result.get("timing") or {}
        entries = []
        if timing.get("started_at") and timing.get("completed_at"):
            entries.append(
                {
                    "name": "execute",
                    "started_at": _dbt_time(timing["started_at"]),
                    "completed_at": _dbt_time(timing["completed_at"]),
                }
            )
            starts.append(_parse(timing["started_at"]))
            ends.append(_parse(timing["completed_at"]))
        seconds = timing.get("execution_time")
        if seconds is None:
            seconds = timing.get("duration_seconds", 0.0)
        failures = result.get("failures")
        rows.append(
            {
                "status": dbt_status(result, node),
                "timing": entries,
                "thread_id": THREAD_ID,
                "execution_time": float(seconds or 0.0),
                "adapter_response": dict(result.get("adapter_response") or {}),
                "message": result_message(result),
                "failures": failures if isinstance(failures, int) else None,
                "unique_id": uid,
                "compiled": None,
                "compiled_code": None,
                "relation_name": result.get("relation_name")
                or (node.relation_name if node is not None and not node.is_test else None),
                "batch_results": None,
            }
        )
    now = generated_at or datetime.now(UTC)
    elapsed = max((max(ends) - min(starts)).total_seconds(), 0.0) if starts else 0.0
    metadata: dict[str, Any] = {
        "dbt_schema_version": SCHEMA_VERSION,
        "dbt_version": manifest.metadata.dbt_version or "unknown",
        "generated_at": _dbt_time(now),
        "invocation_id": invocation_id,
        "invocation_started_at": _dbt_time(min(starts)) if starts else None,
        "env": {},
    }
    return {
        "metadata": metadata,
        "results": rows,
        "elapsed_time": elapsed,
        "args": {"which": "build", **dict(args or {})},
    }


def write_atomically(path: Path, document: Mapping[str, Any]) -> None:
    """Write JSON to ``path`` through a temporary file in the same directory and a rename.

    Raises:
        OSError: The directory or file could not be written; ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, default=str)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _parse(value: str | datetime) -> datetime:
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _dbt_time(value: str | datetime) -> str:
    """dbt's timestamp format: ISO-8601 in UTC with a ``Z``."""
    return _parse(value).astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
