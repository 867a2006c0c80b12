"""How long each node is expected to take, learned from its previous runs.

Observations come from dbt's own ``run_results.json`` (:func:`run_results_timings`) or from
executor results (:func:`node_result_timings`): seconds per unique_id for the nodes that ran to
completion. A :class:`DurationHistory` keeps the last few observations of every node across
runs, and :meth:`DurationHistory.durations` turns it into :class:`Durations`: the expected
seconds per node, with a per-resource-type default for nodes that never ran.

Why the median of the last five runs: a warehouse has one-off slow runs (cold caches, queueing,
a lock wait) that a mean or an exponentially weighted average would carry into the next
estimates, while the median ignores a single outlier and still follows a lasting change (data
growth) after three runs. After one run the estimate is that run's time.

Why samples per node rather than whole runs: a run of ``--select tag:daily`` observes only part
of the project; keeping the last runs *of each node* lets it refresh those nodes without
forgetting the others.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from dbt_graph._errors import ScheduleError
from dbt_graph._execution import NodeResult
from dbt_graph._graph import ExecutionPlan
from dbt_graph._nodes import Node, ResourceType

#: Seconds assumed for a node of a resource type no node of which has run before. Only their
#: ratios matter for the submission order: a test is usually a cheap query next to the model it
#: tests.
DEFAULT_DURATIONS: Mapping[ResourceType, float] = {
    ResourceType.MODEL: 1.0,
    ResourceType.SEED: 1.0,
    ResourceType.SNAPSHOT: 1.0,
    ResourceType.TEST: 0.5,
    ResourceType.UNIT_TEST: 0.5,
}
#: Seconds for a resource type without any default (the plan never holds one).
_FALLBACK_SECONDS = 1.0
#: Statuses of nodes that ran to completion: a failing test took its usual time; an error, a
#: skip or a partial success says nothing about the next run's duration.
_COMPLETED = frozenset({"success", "pass", "warn", "fail"})
_HISTORY_VERSION = 1


@dataclass(frozen=True, kw_only=True)
class Durations:
    """Expected seconds per node.

    Attributes:
        known: Seconds per unique_id for nodes with a history.
        defaults: Seconds per resource type for the other nodes; types missing here take
            :data:`DEFAULT_DURATIONS`.

    Example:
        >>> from dbt_graph import Node, ResourceType
        >>> d = Durations(known={"model.p.a": 12.0}, defaults={ResourceType.MODEL: 3.0})
        >>> node = Node(unique_id="model.p.b", name="b", resource_type=ResourceType.MODEL,
        ...             package_name="p")
        >>> d.seconds(node)
        3.0
    """

    known: Mapping[str, float] = field(default_factory=dict, hash=False)
    defaults: Mapping[ResourceType, float] = field(default_factory=dict, hash=False)

    def seconds(self, node: Node) -> float:
        """The expected seconds of ``node``: its own history, else its type's default."""
        known = self.known.get(node.unique_id)
        if known is not None:
            return known
        default = self.defaults.get(node.resource_type)
        if default is None:
            default = DEFAULT_DURATIONS.get(node.resource_type, _FALLBACK_SECONDS)
        return default

    def for_plan(self, plan: ExecutionPlan) -> dict[str, float]:
        """Expected seconds for every node of ``plan``, by unique_id (in plan order)."""
        return {uid: self.seconds(node) for uid, node in plan.nodes.items()}


@dataclass(frozen=True, kw_only=True)
class DurationHistory:
    """The last observed durations of every node, across runs.

    Immutable: :meth:`record` returns a new history. :meth:`to_json` and :meth:`from_json`
    store it between runs as one small JSON document.

    Attributes:
        samples: Seconds per unique_id, oldest first, at most ``window`` of them.
        window: How many observations per node are kept.

    Example:
        >>> h = DurationHistory().record({"model.p.a": 2.0}).record({"model.p.a": 9.0})
        >>> h = h.record({"model.p.a": 3.0, "test.p.t": 0.2})
        >>> h.durations().known
        {'model.p.a': 3.0, 'test.p.t': 0.2}
    """

    samples: Mapping[str, tuple[float, ...]] = field(default_factory=dict, hash=False)
    window: int = 5

    def __post_init__(self) -> None:
        if isinstance(self.window, bool) or not isinstance(self.window, int) or self.window < 1:
            raise ScheduleError(
                f"DurationHistory.window must be a positive int, got {self.window!r}; the "
                "default keeps the last 5 runs of each node."
            )
        for uid, seconds in self.samples.items():
            for value in seconds:
                _check_seconds(uid, value)

    def record(self, observed: Mapping[str, float]) -> DurationHistory:
        """Add one run's observations (seconds per unique_id); other nodes keep theirs.

        Raises:
            ScheduleError: A duration is negative, infinite or not a number.
        """
        samples = dict(self.samples)
        for uid, seconds in observed.items():
            _check_seconds(uid, seconds)
            samples[uid] = (*samples.get(uid, ()), float(seconds))[-self.window :]
        return DurationHistory(samples=samples, window=self.window)

    def durations(self, *, defaults: Mapping[ResourceType, float] | None = None) -> Durations:
        """Expected seconds: the median of each node's samples.

        Args:
            defaults: Seconds per resource type for nodes without samples. Without it, a type's
                default is the median expectation of the nodes of that type that have samples
                (a new model on a slow warehouse is expected to be as slow as the others), and
                :data:`DEFAULT_DURATIONS` for types none of whose nodes ran.
        """
        known = {uid: statistics.median(s) for uid, s in self.samples.items() if s}
        if defaults is None:
            by_type: dict[ResourceType, list[float]] = {}
            for uid, seconds in known.items():
                kind = _resource_type(uid)
                if kind is not None:
                    by_type.setdefault(kind, []).append(seconds)
            defaults = {kind: statistics.median(v) for kind, v in by_type.items()}
        return Durations(known=known, defaults=dict(defaults))

    def to_json(self) -> dict[str, Any]:
        """The history as JSON-ready data (read back with :meth:`from_json`)."""
        return {
            "version": _HISTORY_VERSION,
            "window": self.window,
            "samples": {uid: list(s) for uid, s in self.samples.items()},
        }

    @classmethod
    def from_json(cls, data: Any) -> DurationHistory:
        """Read what :meth:`to_json` wrote.

        Raises:
            ScheduleError: The data is not a duration history of this version.
        """
        try:
            parsed = _StoredHistory.model_validate(data)
        except ValidationError as exc:
            raise _malformed(
                "The stored duration history", exc, "Delete it to start over"
            ) from None
        if parsed.version != _HISTORY_VERSION:
            raise ScheduleError(
                f"The stored duration history has version {parsed.version}; this dbt-graph "
                f"reads version {_HISTORY_VERSION}. Delete it to start over, or upgrade."
            )
        return cls(samples={u: tuple(s) for u, s in parsed.samples.items()}, window=parsed.window)


def run_results_timings(data: Any) -> dict[str, float]:
    """Seconds per unique_id of the nodes that ran to completion, from decoded run_results.json.

    A node counts when its status is ``success``, ``pass``, ``warn`` or ``fail`` and it took
    measurable time: dbt's ``execution_time``, else the span of its ``timing`` entries. Errors,
    skips and rows without time (nothing was executed) are left out.

    Raises:
        ScheduleError: The data is not a run_results artifact.

    Example:
        >>> run_results_timings({"results": [
        ...     {"unique_id": "model.p.a", "status": "success", "execution_time": 1.5},
        ...     {"unique_id": "model.p.b", "status": "error", "execution_time": 0.1},
        ...     {"unique_id": "test.p.t", "status": "fail", "execution_time": 0.0, "timing": [
        ...         {"name": "compile", "started_at": "2025-01-01T00:00:00Z",
        ...          "completed_at": "2025-01-01T00:00:00.100000Z"},
        ...         {"name": "execute", "started_at": "2025-01-01T00:00:00.100000Z",
        ...          "completed_at": "2025-01-01T00:00:00.400000Z"}]}]})
        {'model.p.a': 1.5, 'test.p.t': 0.4}
    """
    try:
        parsed = _RunResults.model_validate(data)
    except ValidationError as exc:
        raise _malformed("run_results.json", exc, "Pass the file dbt wrote") from None
    out: dict[str, float] = {}
    for row in parsed.results:
        if row.status not in _COMPLETED:
            continue
        seconds = row.execution_time or _span(row.timing)
        if seconds > 0 and math.isfinite(seconds):
            out[row.unique_id] = seconds
    return out


def node_result_timings(results: Iterable[NodeResult]) -> dict[str, float]:
    """Seconds per unique_id from executor results, by the rule of :func:`run_results_timings`.

    Example:
        >>> from dbt_graph import NodeResult, NodeStatus
        >>> node_result_timings([
        ...     NodeResult(unique_id="model.p.a", status=NodeStatus.SUCCESS, execution_time=2.0),
        ...     NodeResult(unique_id="model.p.b", status=NodeStatus.SKIPPED)])
        {'model.p.a': 2.0}
    """
    out: dict[str, float] = {}
    for result in results:
        if result.status.value not in _COMPLETED:
            continue
        seconds = result.execution_time
        if not seconds and result.started_at and result.completed_at:
            seconds = (result.completed_at - result.started_at).total_seconds()
        if seconds > 0 and math.isfinite(seconds):
            out[result.unique_id] = seconds
    return out


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


class _Timing(_Lenient):
    started_at: datetime | None = None
    completed_at: datetime | None = None


class _RunResult(_Lenient):
    unique_id: str
    status: str
    execution_time: float | None = None
    timing: list[_Timing] = []


class _RunResults(_Lenient):
    results: list[_RunResult]


class _StoredHistory(_Lenient):
    version: int
    window: int
    samples: dict[str, list[float]]


def _span(timing: list[_Timing]) -> float:
    starts = [t.started_at for t in timing if t.started_at is not None]
    ends = [t.completed_at for t in timing if t.completed_at is not None]
    if not starts or not ends:
        return 0.0
    return (max(ends) - min(starts)).total_seconds()


def _resource_type(uid: str) -> ResourceType | None:
    # dbt's unique_ids start with the resource type: model.pkg.name, test.pkg.name...
    try:
        return ResourceType(uid.split(".", 1)[0])
    except ValueError:
        return None


def _check_seconds(uid: str, seconds: Any) -> None:
    valid = isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
    if not valid or not math.isfinite(seconds) or seconds < 0:
        raise ScheduleError(
            f"The duration of {uid} is {seconds!r}; durations are finite, non-negative seconds."
        )


def _malformed(what: str, exc: ValidationError, remedy: str) -> ScheduleError:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "the top level"
    return ScheduleError(f"{what} is malformed ({first['msg']} at {where}). {remedy}.")
