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
import shutil
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dbt_graph import Manifest, Node

from prefect_dbt_orchestrator._outcomes import NodeOutcome, OutcomeStatus

SCHEMA_VERSION = "https://schemas.getdbt.com/dbt/run-results/v6.json"
FILE_NAME = "run_results.json"
THREAD_ID = "prefect-dbt-orchestrator"

_TEST_STATUSES = frozenset({"pass", "error", "fail", "warn", "skipped"})
_RUN_STATUSES = frozenset({"success", "error", "skipped", "partial success", "no-op"})


def dbt_status(outcome: NodeOutcome, node: Node | None) -> str:
    """The status dbt would have written for this outcome.

    >>> from prefect_dbt_orchestrator._outcomes import NodeOutcome, OutcomeStatus
    >>> dbt_status(NodeOutcome(status=OutcomeStatus.ERROR, dbt_status="fail"), None)
    'fail'
    >>> dbt_status(NodeOutcome(status=OutcomeStatus.CACHED), None)
    'success'
    """
    is_test = node is not None and node.is_test
    if node is None:  # not in the manifest: trust dbt's word if it is any dbt status
        allowed = _TEST_STATUSES | _RUN_STATUSES
    else:
        allowed = _TEST_STATUSES if is_test else _RUN_STATUSES
    reported, status = outcome.dbt_status, outcome.status
    if status is OutcomeStatus.CACHED:
        return "pass" if is_test else "success"
    if reported in allowed and not (status is OutcomeStatus.SKIPPED and reported != "skipped"):
        return str(reported)
    if status is OutcomeStatus.SUCCESS:
        return "pass" if is_test else "success"
    if status is OutcomeStatus.SKIPPED:
        return "skipped"
    return "error"


def result_message(outcome: NodeOutcome) -> str | None:
    """dbt's message, the error, the skip reason, or a note that the cache served it."""
    status = outcome.status
    if status is OutcomeStatus.CACHED:
        note = "Served from the orchestrator's cache; dbt did not run it"
        return f"{note} (cached result: {outcome.message})" if outcome.message else note
    if status is OutcomeStatus.ERROR:
        return (outcome.error.message if outcome.error else None) or outcome.message or "error"
    if status is OutcomeStatus.SKIPPED:
        reason = outcome.reason or "skipped"
        upstream = outcome.failed_upstream
        return f"{reason}: {', '.join(upstream)}" if upstream else reason
    return outcome.message


def run_results(
    outcomes: Mapping[str, NodeOutcome],
    manifest: Manifest,
    *,
    invocation_id: str,
    generated_at: datetime | None = None,
    args: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run_results.json document for an orchestrated build.

    Args:
        outcomes: The build's outcomes, by unique_id.
        manifest: The manifest the build ran (for test vs model vocabulary, relation names).
        invocation_id: Ties the file to the run (the flow run id when there is one).
        generated_at: When the document was made; default now.
        args: dbt's ``args`` block (``which`` and the flags ``dbt retry`` must replay).
    """
    rows = [_row(uid, outcome, manifest.nodes.get(uid)) for uid, outcome in outcomes.items()]
    timings = [o.timing for o in outcomes.values() if o.timing is not None]
    start = min((t.started_at for t in timings), default=None)
    end = max((t.completed_at for t in timings), default=None)
    elapsed = max((end - start).total_seconds(), 0.0) if start and end else 0.0
    metadata: dict[str, Any] = {
        "dbt_schema_version": SCHEMA_VERSION,
        "dbt_version": manifest.metadata.dbt_version or "unknown",
        "generated_at": _dbt_time(generated_at or datetime.now(UTC)),
        "invocation_id": invocation_id,
        "invocation_started_at": _dbt_time(start) if start else None,
        "env": {},
    }
    return {
        "metadata": metadata,
        "results": rows,
        "elapsed_time": elapsed,
        "args": {"which": "build", **dict(args or {})},
    }


def _row(uid: str, outcome: NodeOutcome, node: Node | None) -> dict[str, Any]:
    timing = outcome.timing
    entries = []
    seconds = 0.0
    if timing is not None:
        entries.append(
            {
                "name": "execute",
                "started_at": _dbt_time(timing.started_at),
                "completed_at": _dbt_time(timing.completed_at),
            }
        )
        seconds = (
            timing.duration_seconds if timing.execution_time is None else timing.execution_time
        )
    return {
        "status": dbt_status(outcome, node),
        "timing": entries,
        "thread_id": THREAD_ID,
        "execution_time": float(seconds or 0.0),
        "adapter_response": dict(outcome.adapter_response),
        "message": result_message(outcome),
        "failures": outcome.failures,
        "unique_id": uid,
        "compiled": None,
        "compiled_code": None,
        "relation_name": node.relation_name if node is not None and not node.is_test else None,
        "batch_results": None,
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


def copy_atomically(source: Path, path: Path) -> None:
    """Copy ``source`` to ``path`` through a temporary file in the same directory and a rename.

    Raises:
        OSError: ``source`` could not be read or ``path`` written; ``path`` is left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle, source.open("rb") as original:
            shutil.copyfileobj(original, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _dbt_time(moment: datetime) -> str:
    """dbt's timestamp format: ISO-8601 in UTC with a ``Z``."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).replace(tzinfo=None).isoformat() + "Z"
