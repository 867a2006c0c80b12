"""What is stored per node after it ran successfully, and its JSON form."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from dbt_cachekeys._errors import RecordError
from dbt_cachekeys._keys import SCHEMA_VERSION, Components

#: Marks a JSON document as a record of this package, so foreign files are told apart.
RECORD_FORMAT = "dbt-cachekeys/record"


@dataclass(frozen=True, kw_only=True)
class KeyRecord:
    """The stored outcome of a node's last successful execution.

    Attributes:
        unique_id: The node.
        key: The key it was executed with.
        token: An id unique to that execution. A downstream node stores the tokens it consumed in
            :attr:`inputs`; a different token means the upstream node ran again since. It is also
            a good name under which to store the execution's result.
        finished_at: When the execution finished (timezone-aware).
        expires_at: When the result stops being valid because an upstream source becomes stale
            (from source freshness at the time it ran), or ``None``.
        inputs: ``(data parent id, token)`` for each data parent at the time it ran (``None``
            when the parent had no record).
        components: The key's components, to explain a later mismatch.
        execution_time: dbt's own seconds for the execution, when known: what serving the
            result instead saves.
        schema_version: The :data:`~dbt_cachekeys.SCHEMA_VERSION` it was written with.
    """

    unique_id: str
    key: str
    token: str
    finished_at: datetime
    components: Components
    expires_at: datetime | None = None
    inputs: tuple[tuple[str, str | None], ...] = ()
    execution_time: float | None = None
    schema_version: int = SCHEMA_VERSION

    def to_json(self) -> bytes:
        """The record as UTF-8 JSON.

        Example:
            >>> from datetime import UTC, datetime
            >>> c = Components(text="t", config="c", relation="r")
            >>> r = KeyRecord(unique_id="model.p.m", key="k", token="x", components=c,
            ...               finished_at=datetime(2025, 1, 1, tzinfo=UTC))
            >>> KeyRecord.from_json(r.to_json()) == r
            True
        """
        data = {
            "format": RECORD_FORMAT,
            "schema_version": self.schema_version,
            "unique_id": self.unique_id,
            "key": self.key,
            "token": self.token,
            "finished_at": self.finished_at.isoformat(),
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "inputs": dict(self.inputs),
            "components": self.components.to_dict(),
            "execution_time": self.execution_time,
        }
        return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, unique_id: str | None = None) -> KeyRecord:
        """Read a record written by :meth:`to_json`.

        Args:
            data: The stored bytes.
            unique_id: The node the record is expected to be for; a record of another node is
                rejected.

        Raises:
            RecordError: The bytes are not JSON, not a record of this package, of another node,
                or malformed. Records of another :data:`SCHEMA_VERSION` are read (they explain as
                "cache format changed") as long as their layout is this one.
        """
        try:
            raw = _decode(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise RecordError(f"not JSON ({exc}); it was damaged", unique_id=unique_id) from None
        if not isinstance(raw, dict) or raw.get("format") != RECORD_FORMAT:
            raise RecordError(
                "not a dbt-cachekeys record; remove it from the key store", unique_id=unique_id
            )
        if unique_id is not None and raw.get("unique_id") != unique_id:
            raise RecordError(
                f"holds the record of {raw.get('unique_id')!r}; remove it from the key store",
                unique_id=unique_id,
            )
        try:
            return _parse(raw)
        except (TypeError, KeyError, ValueError, AttributeError) as exc:
            raise RecordError(
                f"malformed record ({type(exc).__name__}: {exc}); it will be rewritten after "
                "the node runs again",
                unique_id=unique_id,
            ) from None


def _decode(data: bytes) -> Any:
    """orjson (twice as fast: a plan reads every node's record), else the standard library,
    which words the error."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return json.loads(data)


def _parse(raw: Mapping[str, Any]) -> KeyRecord:
    def text(name: str) -> str:
        value = raw[name]
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a string")
        return value

    def moment(value: Any) -> datetime:
        parsed = datetime.fromisoformat(value)
        if parsed.tzinfo is None:
            raise ValueError("times must be timezone-aware")
        return parsed

    inputs = raw["inputs"]
    if not isinstance(inputs, dict) or not all(
        v is None or isinstance(v, str) for v in inputs.values()
    ):
        raise TypeError("inputs must map node ids to tokens")
    version = raw["schema_version"]
    if not isinstance(version, int):
        raise TypeError("schema_version must be an integer")
    seconds = raw.get("execution_time")  # absent in records written before it was kept
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int | float)):
        raise TypeError("execution_time must be a number")
    return KeyRecord(
        unique_id=text("unique_id"),
        key=text("key"),
        token=text("token"),
        finished_at=moment(raw["finished_at"]),
        expires_at=moment(raw["expires_at"]) if raw["expires_at"] is not None else None,
        inputs=tuple(sorted(inputs.items())),
        components=Components.from_dict(raw["components"]),
        execution_time=float(seconds) if seconds is not None else None,
        schema_version=version,
    )
