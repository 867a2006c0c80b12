"""Data-aware key inputs: the fingerprints of the sources upstream of a node.

In data-aware mode a node's key also covers the data fingerprint of every source upstream of it
(through every node, ephemeral models included), so new data in one source changes the keys of
exactly that source's descendants. A source without a usable fingerprint contributes a fresh
random token instead: every node downstream of it misses, every time. Never a stale skip.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from dbt_graph import Node, ResourceType, SourceFingerprint

from dbt_cachekeys._digest import digest_of

#: Materializations whose data changes only when they run (so a run token stands for it).
_STORED = frozenset({"table", "incremental", "seed", "snapshot"})


@dataclass(frozen=True, kw_only=True)
class DataInput:
    """What a node's key knows of one upstream source's data.

    Attributes:
        source: The source's unique_id.
        digest: The digest of its fingerprint (method and value), or ``None`` when it had no
            usable fingerprint (then it always counts as changed).
        observed_at: When the fingerprint was taken.
        detail: What was seen (``"1204 rows"``), or why there was no fingerprint.
    """

    source: str
    digest: str | None
    observed_at: datetime | None = None
    detail: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (the source id is the key it is stored under)."""
        return {
            "digest": self.digest,
            "observed_at": self.observed_at.isoformat() if self.observed_at else None,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, source: str, data: Mapping[str, Any]) -> DataInput:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            TypeError, KeyError, ValueError: The data does not have that shape.
        """
        digest, detail, seen = data["digest"], data["detail"], data["observed_at"]
        if not all(v is None or isinstance(v, str) for v in (digest, detail, seen)):
            raise TypeError("data inputs hold strings")
        observed_at = datetime.fromisoformat(seen) if seen is not None else None
        return cls(source=source, digest=digest, observed_at=observed_at, detail=detail)


class DataInputs:
    """The data inputs of one key computation: one per source, one random token per source
    without a usable fingerprint (shared by all its descendants within the computation)."""

    def __init__(self, fingerprints: Mapping[str, SourceFingerprint]) -> None:
        self._inputs: dict[str, DataInput] = {}
        for uid, fp in fingerprints.items():
            self._inputs[uid] = DataInput(
                source=uid,
                digest=digest_of([fp.method.value, fp.value]) if fp.usable else None,
                observed_at=fp.observed_at,
                detail=fp.detail,
            )
        self._tokens: dict[str, str] = {}

    def of(self, sources: Iterable[str]) -> tuple[DataInput, ...]:
        """The data inputs of a node whose upstream sources are ``sources``."""
        out = []
        for uid in sorted(sources):
            found = self._inputs.get(uid)
            if found is None:
                found = DataInput(source=uid, digest=None, detail="it was not fingerprinted")
                self._inputs[uid] = found
            out.append(found)
        return tuple(out)

    def key_part(self, inputs: tuple[DataInput, ...]) -> str:
        """The digest the key folds in: fingerprints, or a fresh token where there is none."""
        return digest_of([(d.source, d.digest or self._token(d.source)) for d in inputs])

    def _token(self, source: str) -> str:
        token = self._tokens.get(source)
        if token is None:
            token = self._tokens[source] = f"unknown:{secrets.token_hex(16)}"
        return token


def explain_data(old: tuple[DataInput, ...], new: tuple[DataInput, ...], show: Any) -> list[str]:
    """Why the data inputs of a node differ from those of its record, in words.

    Example:
        >>> t = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)
        >>> old = (DataInput(source="s.p.raw.orders", digest="a", observed_at=t,
        ...                  detail="7 rows"),)
        >>> new = (DataInput(source="s.p.raw.orders", digest="b", detail="9 rows"),)
        >>> explain_data(old, new, lambda uid: uid.split(".", 2)[2])
        ['source `raw.orders` has new data since 2026-03-01 08:30:00 UTC (7 rows -> 9 rows)']
    """
    if not old and not new:
        return []
    if not old:
        return ["no data fingerprints were recorded at the last build"]
    if not new:
        return ["data fingerprints are no longer part of the key"]
    before = {d.source: d for d in old}
    out: list[str] = []
    for now in new:
        then = before.get(now.source)
        if then is None:
            continue  # a source that is new upstream: explained as an upstream change
        name = show(now.source)
        if now.digest is None:
            why = f" ({now.detail})" if now.detail else ""
            out.append(f"source `{name}` has no data fingerprint{why}: counted as changed")
        elif then.digest is None:
            out.append(f"source `{name}` had no data fingerprint at the last build")
        elif then.digest != now.digest:
            out.append(
                f"source `{name}` has new data since {_when(then.observed_at)}"
                + _change(then.detail, now.detail)
            )
    return out


def direct_inputs(
    parents: Sequence[str],
    keyed: Mapping[str, Node],
    known: Mapping[str, tuple[tuple[str, tuple[str, ...]], ...]],
    sources: Mapping[str, frozenset[str]],
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """A node's direct inputs, seen through ephemeral models, each with the sources whose new
    data is new data of that input (see :attr:`~dbt_cachekeys.NodeKey.inputs`)."""
    found: dict[str, tuple[str, ...]] = {}
    for parent in parents:
        node = keyed.get(parent)
        if node is None:
            continue
        if node.resource_type is ResourceType.SOURCE:
            found[parent] = (parent,)
        elif node.is_ephemeral:
            found.update(known[parent])
        elif node.materialized in _STORED:
            found[parent] = ()
        else:
            found[parent] = tuple(sorted(sources[parent]))
    return tuple(sorted(found.items()))


def _when(moment: datetime | None) -> str:
    if moment is None:
        return "the last build"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _change(before: str | None, after: str | None) -> str:
    if before and after and before != after:
        return f" ({before} -> {after})"
    return ""
