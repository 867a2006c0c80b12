"""Execution modes and cache configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from dbt_graph import ConcurrencyKey, ResourceType, TestStrategy

_E = TypeVar("_E", bound=StrEnum)


class ExecutionMode(StrEnum):
    """How nodes are handed to dbt."""

    #: One dbt invocation per node, each a Prefect task scheduled as soon as its parents finish.
    PER_NODE = "per_node"
    #: One dbt invocation per wave of independent nodes. Lowest overhead.
    PER_WAVE = "per_wave"


class Scheduling(StrEnum):
    """Which ready node PER_NODE starts first when several wait for a slot."""

    #: The one with the longest expected remaining path to the end of the build.
    CRITICAL_PATH = "critical_path"
    #: The first in plan order (the order before critical-path scheduling).
    PLAN_ORDER = "plan_order"


def _coerce(enum: type[_E], value: Any, what: str) -> _E:
    try:
        return enum(value.value if isinstance(value, StrEnum) else value)
    except ValueError:
        allowed = ", ".join(m.value for m in enum)
        raise ValueError(f"Invalid {what} {value!r}. Must be one of: {allowed}") from None


def coerce_mode(value: Any) -> ExecutionMode:
    """``ExecutionMode`` from a member or its value; ``ValueError`` listing the valid values."""
    return _coerce(ExecutionMode, value, "execution_mode")


def coerce_strategy(value: Any) -> TestStrategy:
    """``TestStrategy`` from a member or its value; ``ValueError`` listing the valid values."""
    return _coerce(TestStrategy, value, "test_strategy")


def coerce_scheduling(value: Any) -> Scheduling:
    """``Scheduling`` from its value; ``ValueError`` listing the valid values."""
    return _coerce(Scheduling, value, "scheduling")


def check_concurrency_keys(mode: ExecutionMode, keys: Any) -> tuple[ConcurrencyKey, ...]:
    """The concurrency keys as a tuple, after checking their type and the mode.

    Raises:
        ValueError: They are not a list of ``ConcurrencyKey``, or are given with PER_WAVE.
    """
    if not isinstance(keys, list | tuple):
        raise ValueError(
            f"concurrency_keys must be a list of ConcurrencyKey, got {keys!r}; e.g. "
            'concurrency_keys=[ConcurrencyKey(selector="tag:heavy", limit=1)].'
        )
    wrong = [k for k in keys if not isinstance(k, ConcurrencyKey)]
    if wrong:
        raise ValueError(
            f"concurrency_keys must hold ConcurrencyKey objects, got {wrong[0]!r}; e.g. "
            'ConcurrencyKey(selector="tag:heavy", limit=1).'
        )
    if keys and mode is not ExecutionMode.PER_NODE:
        raise ValueError(
            "Concurrency keys are only supported in PER_NODE execution mode (a wave is one dbt "
            "invocation). Pass execution_mode=ExecutionMode.PER_NODE, or no concurrency_keys."
        )
    return tuple(keys)


def check_mode_options(mode: ExecutionMode, *, retries: int, cache: Any) -> None:
    """Retries and caching need PER_NODE.

    Raises:
        ValueError: Either is asked for in another mode; the message says what to pass.
    """
    if retries and mode is not ExecutionMode.PER_NODE:
        raise ValueError(
            "Retries are only supported in PER_NODE execution mode. Pass "
            "execution_mode=ExecutionMode.PER_NODE, or retries=0."
        )
    if cache is not None and mode is not ExecutionMode.PER_NODE:
        raise ValueError(
            "Caching is only supported in PER_NODE execution mode. Pass "
            "execution_mode=ExecutionMode.PER_NODE, or cache=None."
        )


def check_concurrency(concurrency: Any) -> None:
    """``concurrency`` is an int, a concurrency limit's name, or ``None``.

    Raises:
        ValueError: It is anything else (a bool included).
    """
    if isinstance(concurrency, bool) or not isinstance(concurrency, int | str | None):
        raise ValueError(
            f"concurrency must be an int (worker count), the name of a Prefect global "
            f"concurrency limit, or None; got {concurrency!r}"
        )


@dataclass(frozen=True)
class CacheConfig:
    """Cross-run caching of node results (PER_NODE only).

    Attributes:
        expiration: Global time-to-live of a cached result; ``None`` never expires.
        result_storage: Where results are stored: a ``Path``, a block slug such as
            ``"s3-bucket/my-results"``, or ``None`` for Prefect's default result storage.
        key_storage: Where cache-key records are stored; same forms. ``None`` keeps them next to
            the results, wherever those are (a ``cache-keys`` folder of the result storage), so
            machines that share result storage share the keys too.
        use_source_freshness_expiration: Derive each node's TTL from its upstream sources'
            freshness thresholds, overriding ``expiration`` where it can be computed.
        exclude_materializations: Materializations never served from cache. Left out (or
            ``None``), it is ``{"incremental"}``, or nothing when ``data_aware`` is set: an
            incremental model whose inputs have no new data has nothing to add. The resolved
            set is what the attribute holds, so ``dataclasses.replace(config, data_aware=True)``
            keeps it; pass ``exclude_materializations=None`` there to resolve it again.
        exclude_resource_types: Resource types never served from cache.
        data_aware: Keys also cover the data of the sources upstream of each node (their
            fingerprints, taken before the run), so a rerun after new rows landed in one
            source rebuilds that source's descendants only; models' ``freshness.build_after``
            is honoured. A source that cannot be fingerprinted counts as changed every time.

    Example:
        >>> from datetime import timedelta
        >>> CacheConfig(expiration=timedelta(hours=24)).exclude_materializations
        frozenset({'incremental'})
        >>> CacheConfig(data_aware=True).exclude_materializations
        frozenset()
    """

    expiration: timedelta | None = None
    result_storage: Path | str | Any | None = None
    key_storage: Path | str | Any | None = None
    use_source_freshness_expiration: bool = False
    # None is resolved per mode in __post_init__: the attribute always holds a frozenset.
    exclude_materializations: frozenset[str] | None = None
    exclude_resource_types: frozenset[ResourceType] = field(
        default=frozenset({ResourceType.TEST, ResourceType.SNAPSHOT, ResourceType.UNIT_TEST})
    )
    data_aware: bool = False

    def __post_init__(self) -> None:
        if self.exclude_materializations is None:
            default = frozenset() if self.data_aware else frozenset({"incremental"})
            object.__setattr__(self, "exclude_materializations", default)
