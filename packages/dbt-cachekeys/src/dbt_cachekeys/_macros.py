"""The macros a node's result can depend on, with each macro hashed once.

dbt records in ``depends_on.macros`` only the macros a node or macro calls *statically*. What
actually runs can be more:

* **Overrides.** An unqualified call resolves to a same-named macro of the root project or a
  package before dbt's own (a project's ``create_table_as`` replaces dbt's).
* **Dispatch.** ``adapter.dispatch("x")`` records only ``default__x``; the adapter may run
  ``duckdb__x``, and a project may define ``postgres__x``.
* **Materializations.** The macro that builds a model (``materialization_table_duckdb``...) is
  in nobody's ``depends_on``.

So a macro's edges here are its ``depends_on.macros``, every same-named macro of another
package, and for ``default__x`` every ``<anything>__x``; a node's roots add every
``materialization_<its materialization>_*``. This over-approximates (a change to a macro that
would not have been picked invalidates too), which costs a rerun but is never wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from dbt_graph import Macro

from dbt_cachekeys._digest import sha256_hex

#: The digest of a macro that ``depends_on`` names but the manifest does not define.
_MISSING = sha256_hex(b"\0missing macro")


class MacroIndex:
    """Memoised macro digests and transitive closures over one manifest's macros.

    Args:
        macros: The manifest's macros by unique_id.
    """

    def __init__(self, macros: Mapping[str, Macro]) -> None:
        self._macros = macros
        by_name: dict[str, list[str]] = {}
        dispatch: dict[str, list[str]] = {}
        for uid, macro in macros.items():
            by_name.setdefault(macro.name, []).append(uid)
            prefix, sep, rest = macro.name.partition("__")
            if sep and prefix and rest:
                dispatch.setdefault(rest, []).append(uid)
        self._by_name = by_name
        self._dispatch = dispatch
        self._pairs: dict[str, tuple[str, str]] = {}
        self._lines: dict[str, str] = {}
        self._closure: dict[str, frozenset[str]] = {}
        self._materializations: dict[str, tuple[str, ...]] = {}
        self._by_roots: dict[frozenset[str], tuple[tuple[tuple[str, str], ...], str]] = {}
        self._by_closure: dict[frozenset[str], tuple[tuple[tuple[str, str], ...], str]] = {}

    def _hash(self, uid: str) -> None:
        # Once per macro: its (id, short digest) pair for records and its line in the closure
        # digest. Records keep a 64-bit prefix, enough to name what changed; keys fold in the
        # full digest.
        if uid not in self._pairs:
            macro = self._macros.get(uid)
            full = sha256_hex(macro.macro_sql) if macro is not None else _MISSING
            self._pairs[uid] = (uid, full[:16])
            self._lines[uid] = f"{uid} {full}\n"

    def materializations(self, materialized: str) -> tuple[str, ...]:
        """Every macro that may implement ``materialized`` (all adapters, all packages)."""
        found = self._materializations.get(materialized)
        if found is None:
            prefix = f"materialization_{materialized}_"
            found = tuple(
                uid
                for name, uids in self._by_name.items()
                if name.startswith(prefix)
                for uid in uids
            )
            self._materializations[materialized] = found
        return found

    def digests(self, roots: Iterable[str]) -> tuple[tuple[tuple[str, str], ...], str]:
        """The sorted ``(macro id, short digest)`` pairs of the closure of ``roots``, and the
        digest of the closure with full per-macro digests.

        Results are memoised per distinct root set and per distinct closure: most nodes of a
        project share a few.
        """
        key = frozenset(roots)
        found = self._by_roots.get(key)
        if found is None:
            closure = frozenset().union(*(self.closure(root) for root in key))
            found = self._by_closure.get(closure)
            if found is None:
                # Every member was hashed when its closure was made.
                order = sorted(closure)
                pairs = tuple(map(self._pairs.__getitem__, order))
                found = (pairs, sha256_hex("".join(map(self._lines.__getitem__, order))))
                self._by_closure[closure] = found
            self._by_roots[key] = found
        return found

    def closure(self, root: str) -> frozenset[str]:
        """``root`` and every macro reachable from it (cycles allowed)."""
        if root not in self._closure:
            self._visit(root)
        return self._closure[root]

    def _edges(self, uid: str) -> list[str]:
        macro = self._macros.get(uid)
        if macro is None:
            return []
        edges = [*macro.depends_on_macros, *self._by_name.get(macro.name, ())]
        if macro.name.startswith("default__"):
            edges.extend(self._dispatch.get(macro.name[len("default__") :], ()))
        return [e for e in edges if e != uid]

    def _visit(self, root: str) -> None:
        # Iterative Tarjan: every macro of a strongly connected component shares one closure.
        index: dict[str, int] = {root: 0}
        low: dict[str, int] = {root: 0}
        stack = [root]
        on_stack = {root}
        work = [(root, iter(self._edges(root)))]
        while work:
            uid, edges = work[-1]
            for nxt in edges:
                if nxt in self._closure:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = len(index)
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(self._edges(nxt))))
                    break
                if nxt in on_stack:
                    low[uid] = min(low[uid], index[nxt])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[uid])
                if low[uid] == index[uid]:
                    self._close_component(uid, stack, on_stack)

    def _close_component(self, head: str, stack: list[str], on_stack: set[str]) -> None:
        members: list[str] = []
        while True:
            member = stack.pop()
            on_stack.discard(member)
            members.append(member)
            if member == head:
                break
        closure = set(members)
        inside = set(members)
        for member in members:
            for nxt in self._edges(member):
                if nxt not in inside:
                    closure |= self._closure[nxt]
        frozen = frozenset(closure)
        for member in members:
            self._closure[member] = frozen
            self._hash(member)
