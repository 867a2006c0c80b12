"""Concurrency keys: per-node limits beside the global concurrency.

A :class:`ConcurrencyKey` says "at most ``limit`` of these nodes at once", where "these" is one
term of dbt's own selection grammar, restricted to what makes a stable key:

* ``tag:<tag>``: nodes with the tag (dbt's ``fnmatch`` patterns work, as in ``--select``);
* ``resource_type:<type>``: ``snapshot``, ``seed``, ``model``, ``test``, ``unit_test``;
* ``config.materialized:<materialization>``: ``incremental``, ``table``...;
* ``config.meta.<key>:<value>``: a ``meta`` entry (nested keys with more dots).

Matching is :func:`dbt_graph.select` with ``indirect_selection="empty"``, so a key holds exactly
the nodes ``dbt ls --select <selector> --indirect-selection empty`` lists (and never pulls in
tests of the nodes it names). The orchestrator maps each key onto a Prefect global concurrency
limit named :attr:`ConcurrencyKey.name`, so the limit also holds across flow runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from dbt_graph._errors import ConcurrencyKeyError, SelectionError
from dbt_graph._manifest import Manifest
from dbt_graph._selection import select

_KINDS = ("tag", "resource_type", "config.materialized", "config.meta.<key>")
_SELECTOR = re.compile(
    r"\A(?P<method>tag|resource_type|config\.materialized|config\.meta(?:\.[\w-]+)+):(?P<value>[^\s,+@]+)\Z"
)
#: Near misses and what to write instead.
_SPELLINGS = {
    "tags": "tag",
    "materialized": "config.materialized",
    "materialization": "config.materialized",
    "config.materialization": "config.materialized",
    "resource-type": "resource_type",
    "type": "resource_type",
}
#: Characters Prefect does not allow in a concurrency limit's name.
_BANNED_IN_NAMES = frozenset("/%&><")
_BANNED_TEXT = " ".join(sorted(_BANNED_IN_NAMES))


@dataclass(frozen=True, kw_only=True)
class ConcurrencyKey:
    """At most ``limit`` nodes matching ``selector`` run at once.

    Attributes:
        selector: ``tag:<tag>``, ``resource_type:<type>``, ``config.materialized:<value>`` or
            ``config.meta.<key>:<value>``.
        limit: How many such nodes may run at once (at least 1).
        name: The name of the Prefect global concurrency limit that enforces it; by default
            ``dbt-`` and the selector with every character but letters, digits, ``_``, ``.``
            and ``-`` turned into ``-`` (``tag:heavy`` -> ``dbt-tag-heavy``).

    Raises:
        ConcurrencyKeyError: The selector is not one of the four forms, the limit is not a
            positive int, or the name has a character Prefect rejects.

    Example:
        >>> ConcurrencyKey(selector="resource_type:snapshot", limit=2).name
        'dbt-resource_type-snapshot'
    """

    selector: str
    limit: int
    name: str = ""

    def __post_init__(self) -> None:
        _check_selector(self.selector)
        if isinstance(self.limit, bool) or not isinstance(self.limit, int) or self.limit < 1:
            raise ConcurrencyKeyError(
                f"The concurrency key {self.selector!r} has limit {self.limit!r}; give a "
                "positive int (1 lets one such node run at a time).",
                selector=self.selector,
            )
        if not self.name:
            object.__setattr__(self, "name", "dbt-" + re.sub(r"[^\w.-]", "-", self.selector))
        banned = sorted(_BANNED_IN_NAMES & set(self.name))
        if banned or not self.name.strip():
            raise ConcurrencyKeyError(
                f"The concurrency key {self.selector!r} has name {self.name!r}, which Prefect "
                f"does not accept as a concurrency limit name (no {_BANNED_TEXT}); pick another "
                "name.",
                selector=self.selector,
            )


def keys_by_node(
    manifest: Manifest,
    keys: Sequence[ConcurrencyKey],
    nodes: Iterable[str] | None = None,
) -> dict[str, tuple[ConcurrencyKey, ...]]:
    """The concurrency keys each node must hold while it runs.

    Args:
        manifest: The parsed manifest.
        keys: The keys, each with a distinct name and selector.
        nodes: The unique_ids to map (e.g. ``plan.nodes``); ``None`` for every node.

    Returns:
        For each node that holds at least one key, its keys in the order of ``keys`` (a node
        holding several takes them all at once, so the order cannot deadlock). Nodes that hold
        none are left out.

    Raises:
        ConcurrencyKeyError: Two keys share a name or a selector (they would share one limit,
            or limit the same nodes twice), or a selector's value is invalid for dbt
            (``resource_type:widget``).

    Example:
        >>> from dbt_graph.testing import ManifestBuilder
        >>> m = (ManifestBuilder().model("a", tags=["heavy"]).snapshot("s", depends_on=["a"])
        ...      .model("b").build())
        >>> held = keys_by_node(m, [ConcurrencyKey(selector="tag:heavy", limit=1),
        ...                         ConcurrencyKey(selector="resource_type:snapshot", limit=2)])
        >>> {uid: [k.name for k in ks] for uid, ks in held.items()}
        {'model.p.a': ['dbt-tag-heavy'], 'snapshot.p.s': ['dbt-resource_type-snapshot']}
    """
    _check_distinct(keys)
    wanted = manifest.nodes.keys() if nodes is None else set(nodes)
    held: dict[str, list[ConcurrencyKey]] = {}
    for key in keys:
        try:
            matched = select(manifest, key.selector, indirect_selection="empty")
        except SelectionError as exc:
            raise ConcurrencyKeyError(
                f"The concurrency key {key.selector!r} is invalid: {exc}", selector=key.selector
            ) from exc
        for uid in matched:
            if uid in wanted:
                held.setdefault(uid, []).append(key)
    return {uid: tuple(held[uid]) for uid in manifest.nodes if uid in held}


def _check_selector(selector: object) -> None:
    if not isinstance(selector, str) or _SELECTOR.match(selector) is None:
        text = selector if isinstance(selector, str) else repr(selector)
        method = text.split(":", 1)[0] if isinstance(selector, str) and ":" in text else ""
        hint = ""
        if method in _SPELLINGS:
            hint = f" Did you mean {_SPELLINGS[method]}:{text.split(':', 1)[1]}?"
        elif method.startswith("meta."):
            hint = f" Did you mean config.{text}?"
        raise ConcurrencyKeyError(
            f"The concurrency key selector {text!r} is not supported: use one term of the form "
            f"{', '.join(k + ':<value>' for k in _KINDS)}, without spaces, commas or graph "
            f"operators.{hint}",
            selector=text,
        )


def _check_distinct(keys: Sequence[ConcurrencyKey]) -> None:
    for attribute in ("name", "selector"):
        seen: dict[str, ConcurrencyKey] = {}
        for key in keys:
            value = getattr(key, attribute)
            if value in seen:
                raise ConcurrencyKeyError(
                    f"Two concurrency keys have the {attribute} {value!r}; give each key its "
                    "own name and selector (merge keys that limit the same nodes).",
                    selector=key.selector,
                )
            seen[value] = key
