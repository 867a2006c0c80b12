"""What a dbt node looks like as a Prefect asset: key, display name, description, owners, upstream.

Pure functions over manifest data; the Prefect glue lives in :mod:`._assets`.

Keys come from the relation dbt writes, per adapter: ``"db"."main"."orders"`` on DuckDB becomes
``duckdb://db/main/orders``; BigQuery's ``` `proj`.`ds`.`t` ``` becomes ``bigquery://proj/ds/t``.
Quoting is understood (a dot inside a quoted identifier stays part of the name) and characters
Prefect refuses in asset keys are replaced, never silently dropped, so two relations never share
a key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from dbt_graph import Manifest, Node, ResourceType, nearest_ancestors

#: Prefect's limits (prefect.types.names / prefect.assets.core), repeated so keys are built
#: without importing Prefect.
MAX_KEY_LENGTH = 512
MAX_DESCRIPTION_LENGTH = 2500
_RESTRICTED = frozenset("\n\r\t\0 #?&%\"'<>[]{}|\\^`")
_QUOTES = {'"': '"', "`": "`", "[": "]"}
_CODE_OMITTED = "_Compiled code omitted: it is longer than an asset description may be._"


@dataclass(frozen=True, kw_only=True)
class AssetSpec:
    """A Prefect asset for one dbt node, as plain data.

    Attributes:
        key: The asset key, e.g. ``postgres://analytics/public/orders``.
        name: The display name, from the relation: ``analytics.public.orders``.
        description: The node's description (may be empty).
        owners: From ``meta.owner`` (a string or a list of strings).
    """

    key: str
    name: str
    description: str = ""
    owners: tuple[str, ...] = ()


def relation_parts(relation_name: str) -> tuple[str, ...]:
    """Split a relation name into its identifiers, honouring ``"..."``, ```...``` and ``[...]``.

    >>> relation_parts('"db"."my.schema"."orders"')
    ('db', 'my.schema', 'orders')
    >>> relation_parts("`proj`.`ds`.`t`")
    ('proj', 'ds', 't')
    >>> relation_parts("ANALYTICS.PUBLIC.ORDERS")
    ('ANALYTICS', 'PUBLIC', 'ORDERS')
    """
    parts: list[str] = []
    current: list[str] = []
    closing: str | None = None
    chars = iter(relation_name.strip())
    for ch in chars:
        if closing is not None:
            if ch == closing:
                closing = None
            else:
                current.append(ch)
        elif ch in _QUOTES:
            closing = _QUOTES[ch]
        elif ch == ".":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return tuple(p for p in parts if p)


def asset_key(relation_name: str, adapter_type: str) -> str:
    """The asset key for a relation on an adapter.

    Characters Prefect forbids become ``_``; a key longer than Prefect allows is shortened
    and made unique with a hash of the full relation name.

    >>> asset_key('"shop"."main"."orders"', "duckdb")
    'duckdb://shop/main/orders'
    >>> asset_key('"DB"."SCH"."my table"', "snowflake")
    'snowflake://DB/SCH/my_table'
    """
    scheme = re.sub(r"[^a-z0-9]", "", adapter_type.lower()) or "dbt"
    path = "/".join(_clean(p) for p in relation_parts(relation_name))
    key = f"{scheme}://{path}"
    if len(key) > MAX_KEY_LENGTH:
        digest = hashlib.sha256(relation_name.encode()).hexdigest()[:12]
        key = f"{key[: MAX_KEY_LENGTH - len(digest) - 1]}-{digest}"
    return key


def asset_name(relation_name: str) -> str:
    """The display name of a relation's asset: its identifiers, unquoted, dot-joined.

    >>> asset_name('"shop"."main"."orders"')
    'shop.main.orders'
    """
    return ".".join(relation_parts(relation_name))


def owners(node: Node) -> tuple[str, ...]:
    """``meta.owner`` as a tuple: one owner, a list of owners, or none."""
    owner = node.meta.get("owner")
    if isinstance(owner, str) and owner.strip():
        return (owner.strip(),)
    if isinstance(owner, list | tuple):
        return tuple(o.strip() for o in owner if isinstance(o, str) and o.strip())
    return ()


def has_asset(node: Node, adapter_type: str | None) -> bool:
    """Whether the node is a relation an asset can name (executable nodes and sources)."""
    if not adapter_type or not node.relation_name:
        return False
    return node.is_executable or node.resource_type is ResourceType.SOURCE


def asset_spec(node: Node, adapter_type: str) -> AssetSpec:
    """The asset of a node that :func:`has_asset`."""
    relation = node.relation_name or ""
    return AssetSpec(
        key=asset_key(relation, adapter_type),
        name=asset_name(relation),
        description=_truncate(node.description.strip(), MAX_DESCRIPTION_LENGTH),
        owners=owners(node),
    )


def upstream_specs(manifest: Manifest, node: Node) -> tuple[AssetSpec, ...]:
    """The assets a node reads: its parent relations and sources, looking through ephemerals.

    This is data lineage, so it follows the manifest's edges (not the scheduling edges that
    place tests), and it includes sources, which never run.
    """
    adapter = manifest.adapter_type
    if not adapter:
        return ()
    nodes = manifest.nodes
    reads = nearest_ancestors(
        manifest.parent_map,
        [node.unique_id],
        keep=lambda uid: not nodes[uid].is_ephemeral and has_asset(nodes[uid], adapter),
        through=lambda uid: nodes[uid].is_ephemeral,
    )[node.unique_id]
    found: dict[str, AssetSpec] = {}
    for uid in reads:
        spec = asset_spec(nodes[uid], adapter)
        found.setdefault(spec.key, spec)
    return tuple(found.values())


def with_compiled_code(description: str, compiled_code: str | None) -> str:
    """A description with a ``Compiled code`` section, within Prefect's length limit.

    The description is kept whole when it fits; code too long to fit is replaced by a sentence
    saying so.

    >>> print(with_compiled_code("Orders.", "select 1"))
    Orders.
    <BLANKLINE>
    ### Compiled code
    ```sql
    select 1
    ```
    """
    if not compiled_code or not compiled_code.strip():
        return description
    base = _truncate(description, MAX_DESCRIPTION_LENGTH)
    fence = "```"
    while fence in compiled_code:
        fence += "`"
    section = f"### Compiled code\n{fence}sql\n{compiled_code.strip()}\n{fence}"
    joined = f"{base}\n\n{section}" if base else section
    if len(joined) <= MAX_DESCRIPTION_LENGTH:
        return joined
    omitted = f"{base}\n\n{_CODE_OMITTED}" if base else _CODE_OMITTED
    return omitted if len(omitted) <= MAX_DESCRIPTION_LENGTH else base


def _clean(identifier: str) -> str:
    # "/" separates the identifiers in the key, so one inside an identifier is replaced too.
    return "".join(
        "_" if ch in _RESTRICTED or ch == "/" or not ch.isprintable() else ch for ch in identifier
    )


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
