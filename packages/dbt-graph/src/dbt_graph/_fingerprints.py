"""Source data fingerprints: the optional executor method behind data-aware caching.

A fingerprint is a short value computed in the warehouse that changes whenever a source's data
changes. Two fingerprints of the same source taken with the same method are equal only if the
data is (up to the method's stated limits), so a cache can skip a model whose code and upstream
data are both unchanged. A source without a usable fingerprint (``value is None``) must be
treated as *always changed*: never a stale skip.

How a source is fingerprinted is chosen in its ``meta`` (``config.meta`` in dbt 1.10+)::

    sources:
      - name: raw
        tables:
          - name: orders
            config:
              meta:
                data_fingerprint: content          # the default where the adapter has it
          - name: events
            config:
              meta:
                data_fingerprint: loaded_at        # row count + max(loaded_at_field)
          - name: clicks
            config:
              meta:
                data_fingerprint: {method: max_column, column: id}   # row count + max(id)
          - name: api_feed
            config:
              meta:
                data_fingerprint: none             # never fingerprinted: always rebuilt

Executors that can fingerprint offer ``source_fingerprints()`` (see
:class:`SourceFingerprinter`); it is optional, so callers check for it first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from dbt_graph._errors import FingerprintConfigError
from dbt_graph._nodes import Node, ResourceType

#: The ``meta`` key with which a source chooses its fingerprint method.
FINGERPRINT_META_KEY = "data_fingerprint"


class FingerprintMethod(StrEnum):
    """How a source's data is fingerprinted.

    ``content``: the row count, an order-independent sum of a hash of every row, and the column
    names and types; one full scan; changes on any insert, update, delete, truncate or schema
    change (two different tables collide only when 64-bit row hashes do).
    ``loaded_at``: the row count and ``max(loaded_at_field)``; sees inserts and deletes, and
    updates that move ``loaded_at_field``, not other updates.
    ``max_column``: the row count and ``max(column)`` of a column the user names (one that only
    grows); same limits as ``loaded_at``.
    ``none``: no fingerprint; the source always counts as changed.
    """

    CONTENT = "content"
    LOADED_AT = "loaded_at"
    MAX_COLUMN = "max_column"
    NONE = "none"


@dataclass(frozen=True, kw_only=True)
class FingerprintSpec:
    """The fingerprint method a source asks for.

    Attributes:
        method: The method.
        column: For ``max_column``, the column (an SQL expression, as ``loaded_at_field`` is).
        explicit: Whether the source chose it in ``meta`` (rather than the executor's default).
    """

    method: FingerprintMethod
    column: str | None = None
    explicit: bool = False

    @classmethod
    def for_source(
        cls, node: Node, *, default: FingerprintMethod = FingerprintMethod.CONTENT
    ) -> FingerprintSpec:
        """Read a source's ``meta.data_fingerprint``; ``default`` when it has none.

        Args:
            node: A source node.
            default: The method used when the source chooses none.

        Raises:
            FingerprintConfigError: The setting names an unknown method, ``loaded_at`` on a
                source without ``loaded_at_field``, or ``max_column`` without a column.

        Example:
            >>> from dbt_graph import Node, ResourceType
            >>> src = Node(unique_id="source.p.raw.t", name="t", package_name="p",
            ...            resource_type=ResourceType.SOURCE,
            ...            meta={"data_fingerprint": {"method": "max_column", "column": "id"}})
            >>> FingerprintSpec.for_source(src)
            FingerprintSpec(method=<FingerprintMethod.MAX_COLUMN: 'max_column'>, column='id', \
explicit=True)
        """
        if node.resource_type is not ResourceType.SOURCE:
            raise FingerprintConfigError(
                "only sources have data fingerprints", unique_id=node.unique_id
            )
        raw = node.meta.get(FINGERPRINT_META_KEY)
        if raw is None:
            if default is FingerprintMethod.LOADED_AT and not node.loaded_at_field:
                return cls(method=FingerprintMethod.NONE)
            return cls(method=default)
        method, column = _parse_setting(raw, node.unique_id)
        if method is FingerprintMethod.LOADED_AT and not node.loaded_at_field:
            raise FingerprintConfigError(
                f"{FINGERPRINT_META_KEY}: loaded_at needs the source's loaded_at_field; set "
                "loaded_at_field, or choose content or max_column",
                unique_id=node.unique_id,
            )
        return cls(method=method, column=column, explicit=True)


def _parse_setting(raw: Any, unique_id: str) -> tuple[FingerprintMethod, str | None]:
    choices = ", ".join(m.value for m in FingerprintMethod)
    setting = raw if isinstance(raw, Mapping) else {"method": raw}
    unknown = set(setting) - {"method", "column"}
    if unknown:
        raise FingerprintConfigError(
            f"{FINGERPRINT_META_KEY} has unknown keys {sorted(unknown)}; use method and column",
            unique_id=unique_id,
        )
    try:
        method = FingerprintMethod(str(setting.get("method")).lower())
    except ValueError:
        raise FingerprintConfigError(
            f"{FINGERPRINT_META_KEY}: unknown method {setting.get('method')!r}; use one of "
            f"{choices}",
            unique_id=unique_id,
        ) from None
    column = setting.get("column")
    if method is FingerprintMethod.MAX_COLUMN:
        if not isinstance(column, str) or not column.strip():
            raise FingerprintConfigError(
                f"{FINGERPRINT_META_KEY}: max_column needs a column, e.g. "
                "{method: max_column, column: id}",
                unique_id=unique_id,
            )
        return method, column.strip()
    if column is not None:
        raise FingerprintConfigError(
            f"{FINGERPRINT_META_KEY}: column is only used with max_column", unique_id=unique_id
        )
    return method, None


@dataclass(frozen=True, kw_only=True)
class SourceFingerprint:
    """What one source's data looked like when it was fingerprinted.

    Attributes:
        unique_id: The source, e.g. ``source.shop.raw.orders``.
        value: The fingerprint; ``None`` when the source has no usable one (a missing table, a
            method the adapter lacks, ``none``): it then counts as changed every time.
        method: How it was computed.
        observed_at: When it was taken (UTC), before the data was read by any model of the run.
        detail: For people: what was seen (``"1204 rows"``,
            ``"1204 rows, max(loaded_at) 2026-01-02 10:00:00"``), or why there is no value.

    Example:
        >>> from datetime import UTC
        >>> SourceFingerprint(unique_id="source.p.raw.t", value=None,
        ...     method=FingerprintMethod.CONTENT, observed_at=datetime(2026, 1, 1, tzinfo=UTC),
        ...     detail="relation does not exist").usable
        False
    """

    unique_id: str
    value: str | None
    method: FingerprintMethod
    observed_at: datetime
    detail: str | None = None

    @property
    def usable(self) -> bool:
        """Whether the fingerprint can show that the data did not change."""
        return self.value is not None


@runtime_checkable
class SourceFingerprinter(Protocol):
    """The optional executor method for data-aware caching.

    ``DbtCoreExecutor`` (DuckDB and PostgreSQL: ``content``; every adapter: ``loaded_at`` and
    ``max_column``) and :class:`dbt_graph.testing.FakeExecutor` implement it. Check with
    ``isinstance(executor, SourceFingerprinter)`` before calling.
    """

    def source_fingerprints(
        self,
        sources: Sequence[str],
        *,
        target: str | None = None,
        vars: Mapping[str, Any] | None = None,
    ) -> Mapping[str, SourceFingerprint]:
        """Fingerprint the data of these sources (unique_ids), all in one go.

        Returns one fingerprint for every requested source; a source that cannot be
        fingerprinted gets one with ``value=None`` and the reason in ``detail``, never an
        exception. Take fingerprints *before* the run reads the sources: data that lands in
        between then only costs a rebuild next time, never a stale result.

        Raises:
            FingerprintConfigError: A source's ``meta.data_fingerprint`` is not usable.
            KeyError: A unique_id is not a source of the manifest.
        """
        ...
