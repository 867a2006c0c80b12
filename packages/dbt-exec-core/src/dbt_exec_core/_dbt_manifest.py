"""dbt's parsed ``Manifest`` object inside a worker: stored, loaded, and reset between runs.

Workers pass a parsed manifest to ``dbtRunner(manifest=...)`` so that no invocation parses. The
object is pickled next to its ``manifest.json`` once (by ``dbt parse`` in a worker, or built from
an existing ``manifest.json`` by :func:`from_json`) and loaded by every worker that needs it.
"""

from __future__ import annotations

import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

#: Node attributes dbt's compiler sets in place; they are reset before every invocation because
#: dbt trusts them (a node whose ephemeral CTEs were injected once is never injected again, so a
#: reused manifest would run the second invocation's SQL without its CTEs).
_COMPILE_STATE = (
    "compiled",
    "compiled_code",
    "extra_ctes_injected",
    "extra_ctes",
    "_pre_injected_sql",
    "compiled_path",
    "relation_name",
)


class LoadedManifest:
    """A manifest object a worker holds, with every node's compile state as parsed.

    Attributes:
        digest: The fingerprint digest it was stored with.
        manifest: dbt's ``Manifest``.
    """

    def __init__(self, digest: str, manifest: Any) -> None:
        self.digest = digest
        self.manifest = manifest
        self._pristine = {
            uid: {a: _copy(vars(node)[a]) for a in _COMPILE_STATE if a in vars(node)}
            for uid, node in manifest.nodes.items()
        }

    def reset_compile_state(self) -> None:
        """Undo what compiling did to every node."""
        self.reset_nodes(self._pristine)

    def reset_nodes(self, unique_ids: Any) -> None:
        """Undo what compiling did to these nodes.

        The manifest's current node objects are reset, not the parsed ones: ``--defer``
        replaces every node that has a counterpart in the state with a copy
        (``Manifest.merge_from_artifact``), which would otherwise keep its compile state.
        """
        nodes = self.manifest.nodes
        for uid in unique_ids:
            state, node = self._pristine.get(uid), nodes.get(uid)
            if state is None or node is None:
                continue
            for attr, value in state.items():
                setattr(node, attr, _copy(value))


def _copy(value: Any) -> Any:
    return list(value) if isinstance(value, list) else value


def load(pickle_path: str, digest: str) -> LoadedManifest:
    """Load a stored manifest object, checking it is the one expected.

    Raises:
        RuntimeError: The stored manifest has another digest (it was re-parsed meanwhile).
    """
    with open(pickle_path, "rb") as handle:
        stored_digest, manifest = pickle.load(handle)
    if stored_digest != digest:
        raise RuntimeError(
            f"The manifest at {pickle_path} changed while it was being used (digest "
            f"{stored_digest}, expected {digest}); resolve the manifest again."
        )
    return LoadedManifest(digest, manifest)


def store(manifest: Any, pickle_path: str, digest: str) -> LoadedManifest:
    """Store a manifest object (atomically) for other workers to load."""
    target = Path(pickle_path)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".manifest-", suffix=".tmp")
    with os.fdopen(fd, "wb") as handle:
        _pickle_manifest((digest, manifest), handle)
    os.replace(tmp, target)
    return LoadedManifest(digest, manifest)


def from_json(path: str) -> Any:
    """dbt's ``Manifest`` object built from a ``manifest.json``, without parsing the project.

    dbt reads a manifest.json this way for ``--state`` (``WritableManifest`` ->
    ``Manifest.from_writable_manifest``), which is enough to compare nodes but not to run them:

    * its reader types every data test as a singular test (the first member of its union that
      fits), so a generic test would lose its arguments (``test_metadata``) and fail to compile
      (``'_dbt_generic_test_kwargs' is undefined``); generic tests are typed again here;
    * the flat graph that ``graph`` in Jinja reads is built by the parser, so it is built here.

    Raises:
        ValueError: The file is not JSON, or was written by a dbt that this one cannot read.
    """
    from dbt.artifacts.resources.v1.generic_test import GenericTest
    from dbt.artifacts.schemas.manifest import WritableManifest
    from dbt.contracts.graph.manifest import Manifest

    data = json.loads(Path(path).read_bytes())
    version = data.get("metadata", {}).get("dbt_schema_version")
    if version and not WritableManifest.is_compatible_version(version):
        raise ValueError(
            f"{path} was written with manifest schema {version}, which this dbt-core "
            f"({WritableManifest.dbt_schema_version}) cannot read; build it with this dbt."
        )
    raw_nodes = dict(data["nodes"])
    raw_disabled = {uid: list(items) for uid, items in (data.get("disabled") or {}).items()}
    writable = WritableManifest.upgrade_schema_version(data)

    def typed(raw: dict[str, Any], read: Any) -> Any:
        if raw.get("resource_type") == "test" and raw.get("test_metadata"):
            # The upgraded fields as dbt read them, plus the generic test's own.
            return GenericTest.from_dict({**raw, **read.to_dict()})
        return read

    writable.nodes = {uid: typed(raw_nodes[uid], node) for uid, node in writable.nodes.items()}
    writable.disabled = {
        uid: [typed(raw, node) for raw, node in zip(raw_disabled[uid], nodes, strict=True)]
        for uid, nodes in (writable.disabled or {}).items()
    }
    manifest = Manifest.from_writable_manifest(writable)
    manifest.build_flat_graph()
    return manifest


def _pickle_manifest(payload: Any, handle: Any) -> None:
    """Pickle a dbt Manifest by its public fields.

    dbt's own ``Manifest.__reduce_ex__`` passes its fields positionally in an order that no
    longer matches the class (dbt 1.11 added fields), which shifts the lookup caches into the
    wrong attributes of the copy. Rebuilding from keyword arguments leaves the caches empty;
    dbt rebuilds them on first use.
    """
    import copyreg
    import dataclasses

    from dbt.contracts.graph.manifest import Manifest

    def reduce(manifest: Any) -> tuple[Any, tuple[dict[str, Any]]]:
        state = {
            f.name: getattr(manifest, f.name)
            for f in dataclasses.fields(manifest)
            if f.init and not f.name.startswith("_")
        }
        return _rebuild_manifest, (state,)

    pickler = pickle.Pickler(handle, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, Manifest: reduce}
    pickler.dump(payload)


def _rebuild_manifest(state: dict[str, Any]) -> Any:
    from dbt.contracts.graph.manifest import Manifest

    return Manifest(**state)


def adapter_info(manifest: Any, *, check_packages: bool = False) -> dict[str, Any]:
    """What the parent needs to know about the target: adapter type, DuckDB file, threads.

    Read from the adapter dbt registered for the invocation that just ran with ``manifest``.

    Args:
        manifest: The manifest object that invocation ran with.
        check_packages: Also check, as dbt does before running anything, that the packages
            the project declares are installed (dbt needs them even with a ready manifest).

    Raises:
        dbt's own error when ``check_packages`` finds packages not installed.
    """
    from dbt.adapters.factory import FACTORY

    adapter_type = manifest.metadata.adapter_type
    info: dict[str, Any] = {"adapter_type": adapter_type, "duckdb_path": None, "threads": None}
    adapter = FACTORY.adapters.get(adapter_type) if adapter_type else None
    config = getattr(adapter, "config", None)
    if config is not None and check_packages:
        config.load_dependencies()
    if config is not None:
        info["threads"] = getattr(config, "threads", None)
        if adapter_type == "duckdb":
            path = str(getattr(config.credentials, "path", "") or "")
            if path and path != ":memory:" and not path.startswith("md:"):
                info["duckdb_path"] = os.path.abspath(path)
    return info
