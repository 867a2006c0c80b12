"""Where fetched manifests live: a directory that outlives the executor object.

The reference executor kept its manifest in a temporary directory removed when the executor was
garbage-collected, so files the orchestrator still read vanished with it. Here the manifest goes
to a cache directory keyed by account, project, environment and source (the job deferred to, or
the compile's target and vars); it stays until replaced. A new executor fetches again and
replaces the file atomically, so a build never reads a half-written or stale-by-deploy file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dbt_graph import Manifest, ManifestError, load_manifest

from dbt_exec_cloud._errors import ConfigurationError, ResponseError

#: Parsed manifests kept per process, so that executors unpickled for every task (as process
#: pools and Dask do) parse a large manifest once per process, not once per task.
_PARSED: OrderedDict[tuple[str, int, int], Manifest] = OrderedDict()
_PARSED_LOCK = threading.Lock()
_PARSED_MAX = 4


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/dbt-exec-cloud``, else ``~/.cache/dbt-exec-cloud``."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "dbt-exec-cloud"


def manifest_path(
    root: Path,
    *,
    account_id: int,
    project_id: int,
    environment_id: int,
    defer_to_job_id: int | None,
    target: str | None,
    vars: Mapping[str, Any] | None,
) -> Path:
    """The file for one manifest source.

    >>> manifest_path(Path("/c"), account_id=1, project_id=2, environment_id=3,
    ...               defer_to_job_id=4, target=None, vars=None).as_posix()
    '/c/account-1/project-2/environment-3/job-4/manifest.json'
    """
    if defer_to_job_id is not None:
        leaf = f"job-{defer_to_job_id}"
    else:
        spec = json.dumps({"target": target, "vars": vars or {}}, sort_keys=True, default=str)
        leaf = f"compile-{hashlib.sha256(spec.encode()).hexdigest()[:16]}"
    return (
        root
        / f"account-{account_id}"
        / f"project-{project_id}"
        / f"environment-{environment_id}"
        / leaf
        / "manifest.json"
    )


def write_atomically(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` so that readers see the old file or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".manifest-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(content)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_cached(path: Path) -> Manifest:
    """:func:`dbt_graph.load_manifest`, memoised per process by path, mtime and size.

    Raises:
        ManifestError: As :func:`dbt_graph.load_manifest` does.
    """
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    with _PARSED_LOCK:
        if key in _PARSED:
            _PARSED.move_to_end(key)
            return _PARSED[key]
    manifest = load_manifest(path)
    with _PARSED_LOCK:
        _PARSED[key] = manifest
        while len(_PARSED) > _PARSED_MAX:
            _PARSED.popitem(last=False)
    return manifest


def store_manifest(path: Path, content: bytes) -> Manifest:
    """Write a fetched manifest atomically and return it parsed (checking that it parses).

    Raises:
        ConfigurationError: ``path`` cannot be written.
        ResponseError: The content is not a manifest dbt-graph can read.
    """
    try:
        write_atomically(path, content)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the manifest to {path}: {exc}. Pass a writable manifest_dir."
        ) from None
    return read_manifest(path)


def read_manifest(path: Path) -> Manifest:
    """:func:`load_cached`, with a broken file reported as dbt Cloud's.

    Raises:
        ResponseError: The file is not a manifest dbt-graph can read.
    """
    try:
        return load_cached(path)
    except ManifestError as exc:
        raise ResponseError(
            f"dbt Cloud served a manifest.json that cannot be read: {exc}"
        ) from None
