"""Finding, or making, the manifest for a target and vars (see :mod:`dbt_exec_core._manifests`).

A stored manifest whose fingerprint still matches is reused; otherwise ``dbt deps`` (unless
switched off) and ``dbt parse`` run in a worker. A pre-built manifest.json is never parsed: a
worker builds dbt's manifest object from it. Either way the manifest object is stored beside it
for every worker to load. Threads of one executor resolving the same
manifest wait for each other; processes do too, through a file lock next to its directory.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from filelock import FileLock

from dbt_exec_core._errors import ManifestResolutionError
from dbt_exec_core._invocation import command_args
from dbt_exec_core._jobs import Job
from dbt_exec_core._manifests import ResolvedManifest, manifest_dir, read_record, write_record
from dbt_exec_core._project import ProjectPaths, digest, fingerprint
from dbt_exec_core._protocol import DEPS, LOAD, PARSE, InvokeDone
from dbt_exec_core._scheduler import Scheduler


class ManifestResolver:
    """Resolves manifests for one executor (runtime state: never pickled).

    Args:
        paths: The project.
        run_deps: Run ``dbt deps`` before ``dbt parse``.
        prebuilt: A manifest.json to run from instead of parsing the project.
        target: The target when a call names none.
        vars: Vars every call starts from.
        scheduler: Returns the executor's scheduler (started on first use).
    """

    def __init__(
        self,
        *,
        paths: ProjectPaths,
        run_deps: bool,
        prebuilt: Path | None,
        target: str | None,
        vars: Mapping[str, Any],
        scheduler: Callable[[], Scheduler],
    ) -> None:
        self._paths = paths
        self._run_deps = run_deps
        self._prebuilt = prebuilt
        self._target = target
        self._vars = dict(vars)
        self._scheduler = scheduler
        self._lock = threading.Lock()
        self._resolved: dict[Path, ResolvedManifest] = {}
        self._key_locks: dict[Path, threading.Lock] = {}

    def resolve(
        self, target: str | None, vars: Mapping[str, Any] | None, *, check: bool
    ) -> ResolvedManifest:
        """The manifest for ``target`` and ``vars`` (the executor's defaults when ``None``).

        Args:
            target: The target.
            vars: Vars, merged over the executor's.
            check: Check the fingerprint even when this executor resolved it before.

        Raises:
            ManifestResolutionError: ``dbt deps`` or ``dbt parse`` failed, or a pre-built
                manifest cannot be read or run from (``command`` is ``load``).
        """
        target = target if target is not None else self._target
        merged = {**self._vars, **(vars or {})}
        directory = manifest_dir(self._paths.target_path, target, merged, prebuilt=self._prebuilt)
        with self._lock:
            known = self._resolved.get(directory)
            key_lock = self._key_locks.setdefault(directory, threading.Lock())
        if known is not None and not check:
            return known
        with key_lock:
            directory.mkdir(parents=True, exist_ok=True)
            # Another process may be resolving the same manifest.
            with FileLock(str(directory / ".resolve.lock")):
                resolved = self._resolve_here(directory, target, merged)
            with self._lock:
                known = self._resolved.get(directory)
                if known is not None and known.digest == resolved.digest:
                    return known
                self._resolved[directory] = resolved
            return resolved

    def _resolve_here(
        self, directory: Path, target: str | None, vars: Mapping[str, Any]
    ) -> ResolvedManifest:
        current = self._fingerprint(target, vars)
        record = read_record(directory)
        source = self._prebuilt or directory / "manifest.json"
        if record is None or record.get("fingerprint") != current or not source.is_file():
            if self._prebuilt is None:
                record = self._parse(directory, target, vars)
            else:
                record = self._load(directory, target, vars, current)
        elif not (directory / "manifest.pickle").is_file():
            # The manifest.json matches but its object is missing (say, only the JSON was
            # kept): build the object from the JSON rather than parse the project again.
            record = self._load(directory, target, vars, current)
        return ResolvedManifest.from_record(directory, record, prebuilt=self._prebuilt)

    def _fingerprint(self, target: str | None, vars: Mapping[str, Any]) -> dict[str, Any]:
        current = fingerprint(self._paths, target=target, vars=vars)
        if self._prebuilt is not None:
            try:
                current["manifest"] = hashlib.sha256(self._prebuilt.read_bytes()).hexdigest()
            except OSError as exc:
                raise ManifestResolutionError(
                    f"Cannot read the pre-built manifest {self._prebuilt}: {exc}. Build it with "
                    "`dbt parse`, or construct the executor without manifest_path to let it "
                    "parse the project itself.",
                    command="load",
                    dbt_message="",
                ) from exc
        return current

    def _parse(self, directory: Path, target: str | None, vars: Mapping[str, Any]) -> dict:
        if self._run_deps:
            deps = command_args(self._paths, "deps", vars=vars)
            self._run(Job(kind=DEPS, args=tuple(deps), environ=dict(os.environ)), "deps")
        current = fingerprint(self._paths, target=target, vars=vars)  # after deps installed
        current_digest = digest(current)
        args = command_args(
            self._paths, "parse", "--target-path", str(directory), target=target, vars=vars
        )
        job = Job(
            kind=PARSE,
            args=tuple(args),
            environ=dict(os.environ),
            pickle_to=str(directory / "manifest.pickle"),
            digest=current_digest,
        )
        done = self._run(job, "parse", target=target)
        if not (directory / "manifest.json").is_file():
            raise ManifestResolutionError(
                f"`dbt parse` wrote no manifest.json for target {target or '(profile default)'}",
                command="parse",
                dbt_message="",
            )
        record = {
            "fingerprint": current,
            "digest": current_digest,
            "adapter_type": done.info.get("adapter_type"),
            "duckdb_path": done.info.get("duckdb_path"),
            "threads": done.info.get("threads"),
            "parsed_at": datetime.now(UTC).isoformat(),
        }
        write_record(directory, record)
        return record

    def _load(
        self, directory: Path, target: str | None, vars: Mapping[str, Any], current: dict
    ) -> dict:
        """Build the manifest object from manifest.json in a worker (no parsing), and learn
        the target's adapter from a ``dbt ls`` that selects nothing."""
        current_digest = digest(current)
        job = Job(
            kind=LOAD,
            args=tuple(command_args(self._paths, "ls", target=target, vars=vars)),
            environ=dict(os.environ),
            source=str(self._prebuilt or directory / "manifest.json"),
            pickle_to=str(directory / "manifest.pickle"),
            digest=current_digest,
        )
        done = self._run(job, "load", target=target)
        record = {
            "fingerprint": current,
            "digest": current_digest,
            "adapter_type": done.info.get("adapter_type"),
            "duckdb_path": done.info.get("duckdb_path"),
            "threads": done.info.get("threads"),
            "loaded_at": datetime.now(UTC).isoformat(),
        }
        write_record(directory, record)
        return record

    def _run(self, job: Job, command: str, *, target: str | None = None) -> InvokeDone:
        """Run a deps or parse job; raise dbt's message when it fails."""
        done: InvokeDone = self._scheduler().submit(job).result()
        if done.success:
            return done
        message = done.error.message if done.error else f"dbt {command} failed"
        if command == "deps":
            what = f"`dbt deps` failed in {self._paths.project_dir}"
        elif command == "parse":
            what = f"`dbt parse` failed for target {target or '(profile default)'}"
        else:
            what = f"Cannot run from {job.source} for target {target or '(profile default)'}"
        raise ManifestResolutionError(f"{what}: {message}", command=command, dbt_message=message)
