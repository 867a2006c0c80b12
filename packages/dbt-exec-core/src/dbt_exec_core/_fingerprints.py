"""Source data fingerprints, computed in the warehouse by one ``dbt show --inline`` query.

The fingerprints of all requested sources come from one query, a ``UNION ALL`` of one
aggregate per source, run by ``dbt show`` in a worker against the parsed manifest, so the
profile, target, vars and relation names are dbt's own. When that query fails (a source table
is missing, a column named in ``meta`` does not exist), each source is queried alone, and the
ones that still fail get no fingerprint: they count as changed, never as unchanged.

Methods (see :class:`dbt_graph.FingerprintMethod`):

* ``content`` (DuckDB and PostgreSQL; the default there): ``count(*)``, the sum of a 64-bit hash
  of every row, and the column names and types. One scan. A sum (not an XOR) of row hashes is
  order-independent yet counts duplicates, so inserting, updating, deleting or truncating rows,
  and replacing the table with other data or another schema, all change it. DuckDB hashes the
  row with ``hash(row)`` and reads the shape from ``typeof(row)``; PostgreSQL hashes the row's
  text form with ``hashtextextended(row::text, 0)`` and reads the shape from ``pg_attribute``.
  Equal fingerprints of different data need a 64-bit hash collision of the sums. A setting
  that changes how values print (PostgreSQL's ``TimeZone``, ``extra_float_digits``) or a new
  DuckDB version that hashes differently changes the fingerprint: one needless rebuild.
* ``loaded_at`` (every adapter; the default elsewhere where the source has a
  ``loaded_at_field``): ``count(*)`` and ``max(loaded_at_field)``. It sees inserts and deletes,
  and updates that move ``loaded_at_field``; an update that leaves both unchanged is not seen.
* ``max_column``: ``count(*)`` and ``max(column)`` of a column named in ``meta``; same limits.

PostgreSQL's cumulative statistics (``pg_stat_user_tables.n_tup_ins``...) are not used: they
are flushed by each backend only after its transaction, at most once a second and up to a
minute late under contention, and can be reset, so they can miss a change that has committed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from dbt_graph import (
    FingerprintMethod,
    FingerprintSpec,
    Node,
    ResourceType,
    SourceFingerprint,
)

from dbt_exec_core._invocation import QUIET
from dbt_exec_core._jobs import Job
from dbt_exec_core._manifests import ResolvedManifest
from dbt_exec_core._project import ProjectPaths, canonical_vars
from dbt_exec_core._protocol import QUERY, InvokeDone

#: Adapters with a ``content`` fingerprint.
CONTENT_ADAPTERS = frozenset({"duckdb", "postgres"})
#: The alias of the scanned relation: a whole-row reference, unlikely to be a column's name.
_ROW = "dbt_fingerprint_row"
_CAST = "{{ dbt.type_string() }}"
_SPACES = re.compile(r"\s+")


def fingerprint_sources(
    sources: Sequence[str],
    *,
    resolved: ResolvedManifest,
    paths: ProjectPaths,
    submit: Callable[[Job], Future[Any]],
) -> dict[str, SourceFingerprint]:
    """Fingerprint ``sources`` with one dbt invocation (one per source after a failure).

    Args:
        sources: Source unique_ids.
        resolved: The manifest for the target and vars.
        paths: The project's directories.
        submit: Queues a job on the executor's workers.

    Returns:
        A fingerprint for every requested source (``value=None`` when unusable).

    Raises:
        KeyError: A unique_id is not a source of the manifest.
        dbt_graph.FingerprintConfigError: A source's ``meta.data_fingerprint`` is not usable.
    """
    graph = resolved.graph
    nodes = [_source(graph.nodes, uid) for uid in dict.fromkeys(sources)]
    adapter = resolved.adapter_type or ""
    observed_at = datetime.now(UTC)
    out: dict[str, SourceFingerprint] = {}
    queries: dict[str, tuple[FingerprintSpec, str]] = {}
    for node in nodes:
        spec = FingerprintSpec.for_source(node, default=default_method(adapter))
        sql, problem = source_query(node, spec, adapter)
        if sql is None:
            out[node.unique_id] = _unusable(node.unique_id, spec, observed_at, problem)
        else:
            queries[node.unique_id] = (spec, sql)
    if not queries:
        return out

    def run(uids: Iterable[str]) -> Future[Any]:
        sql = "\nunion all\n".join(queries[uid][1] for uid in uids)
        return submit(_query_job(sql, resolved, paths))

    done: InvokeDone = run(queries).result()
    if done.error is None or len(queries) == 1:
        out.update(_read(done, queries, observed_at))
        return out
    # One query failed for all: ask each source alone, so only the broken ones lose theirs.
    alone = {uid: run([uid]) for uid in queries}
    for uid, future in alone.items():
        out.update(_read(future.result(), {uid: queries[uid]}, observed_at))
    return out


def default_method(adapter_type: str) -> FingerprintMethod:
    """The method for sources that choose none: ``content`` where the adapter has it, else
    ``loaded_at`` (a source without ``loaded_at_field`` then gets none).

    >>> default_method("postgres"), default_method("snowflake")
    (<FingerprintMethod.CONTENT: 'content'>, <FingerprintMethod.LOADED_AT: 'loaded_at'>)
    """
    if adapter_type in CONTENT_ADAPTERS:
        return FingerprintMethod.CONTENT
    return FingerprintMethod.LOADED_AT


def source_query(
    node: Node, spec: FingerprintSpec, adapter_type: str
) -> tuple[str | None, str | None]:
    """The SELECT that fingerprints one source, or ``None`` and why there is none.

    The SELECT returns one row: ``source_id, row_count, value, shape``, all as text.

    Example:
        >>> from dbt_graph import Node, ResourceType
        >>> src = Node(unique_id="source.p.raw.t", name="t", package_name="p",
        ...            resource_type=ResourceType.SOURCE, relation_name='"db"."raw"."t"')
        >>> sql, _ = source_query(src, FingerprintSpec(method=FingerprintMethod.CONTENT),
        ...                       "duckdb")
        >>> "sum(hash(dbt_fingerprint_row))" in sql
        True
    """
    relation = node.relation_name
    if spec.method is FingerprintMethod.NONE:
        return None, f"meta.data_fingerprint is none{_default_note(spec, node)}"
    if not relation:
        return None, "the manifest has no relation name for this source"
    uid = _literal(node.unique_id)
    head = f"select {uid} as source_id, cast(count(*) as {_CAST}) as row_count"
    tail = f"from {relation} as {_ROW}"
    if spec.method is FingerprintMethod.CONTENT:
        if adapter_type == "duckdb":
            value = f"cast(sum(hash({_ROW})) as {_CAST})"
            shape = f"typeof(any_value({_ROW}))"
        elif adapter_type == "postgres":
            value = f"cast(sum(hashtextextended({_ROW}::text, 0)) as {_CAST})"
            shape = (
                "(select string_agg(quote_ident(a.attname) || ' ' || "
                "format_type(a.atttypid, a.atttypmod), ', ' order by a.attnum) "
                f"from pg_catalog.pg_attribute as a where a.attrelid = {_literal(relation)}"
                "::regclass and a.attnum > 0 and not a.attisdropped)"
            )
        else:
            return None, (
                f"content fingerprints are not available on {adapter_type or 'this adapter'}; "
                "set meta.data_fingerprint to loaded_at or {method: max_column, column: ...}"
            )
        return f"{head}, {value} as value, {shape} as shape {tail}", None
    column = node.loaded_at_field if spec.method is FingerprintMethod.LOADED_AT else spec.column
    value = f"cast(max({column}) as {_CAST})"
    return f"{head}, {value} as value, cast(null as {_CAST}) as shape {tail}", None


def query_rows(payload: Any) -> list[tuple[str | None, ...]]:
    """The rows ``dbt show`` returned, as text (worker side; ``payload`` is dbt's result)."""
    for item in getattr(payload, "results", None) or ():
        table = getattr(item, "agate_table", None)
        if table is not None:
            return [tuple(None if v is None else str(v) for v in row) for row in table.rows]
    return []


def forget_inline_nodes(manifest: Any) -> None:
    """Remove the node ``dbt show --inline`` added to a reused manifest (worker side).

    dbt removes it only when the query succeeds; left behind, it makes the next inline query
    of the worker fail as a duplicate.
    """
    if manifest is None:
        return
    for uid in [u for u in manifest.nodes if u.startswith("sql_operation.")]:
        if uid.endswith(".inline_query"):
            manifest.nodes.pop(uid, None)


def _source(nodes: Mapping[str, Node], unique_id: str) -> Node:
    node = nodes.get(unique_id)
    if node is None or node.resource_type is not ResourceType.SOURCE:
        raise KeyError(f"{unique_id!r} is not a source of the manifest")
    return node


def _default_note(spec: FingerprintSpec, node: Node) -> str:
    if spec.explicit:
        return ""
    return " (this adapter has no content fingerprint and the source no loaded_at_field)"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _query_job(sql: str, resolved: ResolvedManifest, paths: ProjectPaths) -> Job:
    args = [
        "show",
        "--inline",
        sql,
        "--limit",
        "-1",
        "--project-dir",
        str(paths.project_dir),
        "--profiles-dir",
        str(paths.profiles_dir),
        *QUIET,
        "--log-level-file",
        "none",
        # The query reads only the sources it names: no relation cache to fill.
        "--no-populate-cache",
    ]
    if resolved.target:
        args += ["--target", resolved.target]
    if resolved.vars:
        args += ["--vars", canonical_vars(resolved.vars)]
    return Job(
        kind=QUERY,
        args=tuple(args),
        manifest=resolved.ref,
        duckdb_path=resolved.duckdb_path,
        environ=dict(os.environ),
    )


def _read(
    done: InvokeDone,
    queries: Mapping[str, tuple[FingerprintSpec, str]],
    observed_at: datetime,
) -> dict[str, SourceFingerprint]:
    rows = {row[0]: row for row in done.info.get("rows", ()) if row and row[0] in queries}
    out: dict[str, SourceFingerprint] = {}
    for uid, (spec, _) in queries.items():
        row = rows.get(uid)
        if row is None or len(row) != 4:
            why = _error_text(done) or "the fingerprint query returned no row for it"
            out[uid] = _unusable(uid, spec, observed_at, why)
            continue
        _, count, value, shape = row
        out[uid] = SourceFingerprint(
            unique_id=uid,
            value=json.dumps([count, value, shape]),
            method=spec.method,
            observed_at=observed_at,
            detail=_detail(spec, count, value),
        )
    return out


def _detail(spec: FingerprintSpec, count: str | None, value: str | None) -> str:
    rows = f"{count} rows" if count != "1" else "1 row"
    if spec.method is FingerprintMethod.CONTENT:
        return rows
    what = "loaded_at" if spec.method is FingerprintMethod.LOADED_AT else spec.column
    return f"{rows}, max({what}) {value if value is not None else 'null'}"


def _unusable(
    uid: str, spec: FingerprintSpec, observed_at: datetime, why: str | None
) -> SourceFingerprint:
    return SourceFingerprint(
        unique_id=uid, value=None, method=spec.method, observed_at=observed_at, detail=why
    )


def _error_text(done: InvokeDone) -> str | None:
    if done.error is None:
        return None
    text = _SPACES.sub(" ", done.error.message).strip()
    return f"the fingerprint query failed: {text[:300]}"
