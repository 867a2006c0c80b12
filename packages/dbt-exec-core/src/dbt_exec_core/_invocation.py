"""Building dbt's command lines for the executor, and small helpers around them."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dbt_graph import ExecutionRequest

from dbt_exec_core._jobs import Lane
from dbt_exec_core._manifests import ResolvedManifest
from dbt_exec_core._project import ProjectPaths, canonical_vars

FULL_REFRESH_COMMANDS = frozenset({"build", "run", "seed"})
#: dbt threads of a streaming session when callers did not say how many requests they keep in
#: flight (``run_scope(concurrency=...)``); at least ``threads`` (or the profile's).
SESSION_THREADS = 8
#: Extra arguments that keep requests out of streaming sessions.
NO_SESSION_FLAGS = frozenset({"--fail-fast", "-x"})
#: Sent to dbt with every invocation: output is captured from events, not the console.
QUIET = ("--log-level", "none", "--no-use-colors")
_SECRET_KEY = re.compile(r"pass|secret|token|key|credential", re.IGNORECASE)


@dataclass(frozen=True)
class RunArgs:
    """Builds a run batch's dbt arguments (kept apart from the executor so the scheduler holds
    no reference to it)."""

    paths: ProjectPaths
    threads: int | None
    state_path: Path | None
    defer: bool
    defer_state_path: Path | None
    favor_state: bool

    def __call__(
        self,
        command: str,
        selectors: tuple[str, ...],
        lane: Lane,
        *,
        full_refresh: bool,
        requests: int,
        session: bool,
        in_flight: int | None,
    ) -> tuple[str, ...]:
        args = [
            command,
            "--project-dir",
            str(self.paths.project_dir),
            "--profiles-dir",
            str(self.paths.profiles_dir),
            *QUIET,
            # Per-node runs need no JSON artifacts, and dbt's relation cache only for the
            # schemas of the nodes being run (not one Relation per manifest node).
            "--no-write-json",
            "--cache-selected-only",
        ]
        if not has_flag(lane.extra_args, "--log-level-file"):
            args += ["--log-level-file", "none"]
        if "DBT_SEND_ANONYMOUS_USAGE_STATS" not in os.environ:
            args.append("--no-send-anonymous-usage-stats")
        args += ["--select", *selectors, "--indirect-selection", "empty"]
        if lane.target:
            args += ["--target", lane.target]
        if lane.vars_json != "{}":
            args += ["--vars", lane.vars_json]
        threads = self._threads(lane, requests=requests, session=session, in_flight=in_flight)
        if threads is not None:
            args += ["--threads", str(threads)]
        if full_refresh and command in FULL_REFRESH_COMMANDS:
            args.append("--full-refresh")
        if self.state_path is not None:
            args += ["--state", str(self.state_path)]
        if self.defer:
            args.append("--defer")
        if self.defer_state_path is not None:
            args += ["--defer-state", str(self.defer_state_path)]
        if self.favor_state:
            args.append("--favor-state")
        return (*args, *lane.extra_args)

    def _threads(
        self, lane: Lane, *, requests: int, session: bool, in_flight: int | None
    ) -> int | None:
        """dbt's ``--threads``: how many of the invocation's nodes dbt may run at once."""
        own = self.threads or lane.profile_threads or 1
        if session:
            # Callers decide how many nodes are in flight (the orchestrator's concurrency);
            # a session must never be what limits them, whatever `threads` says.
            return max(own, in_flight or SESSION_THREADS)
        if self.threads is None and requests > 1:
            return max(requests, own)  # coalesced requests each get a thread
        return self.threads


def command_args(
    paths: ProjectPaths,
    *command: str,
    target: str | None = None,
    vars: Mapping[str, Any] | None = None,
) -> list[str]:
    """A quiet dbt command line for the project (output is captured from events)."""
    args = [
        *command,
        "--project-dir",
        str(paths.project_dir),
        "--profiles-dir",
        str(paths.profiles_dir),
        *QUIET,
        "--log-level-file",
        "none",
    ]
    if target:
        args += ["--target", target]
    if vars:
        args += ["--vars", canonical_vars(vars)]
    return args


def session_key(lane: Lane, full_refresh: bool) -> str:
    """Single-node requests with equal keys may share one streaming ``dbt build``."""
    return hashlib.sha256(repr((lane, full_refresh)).encode()).hexdigest()[:16]


def split_orphan_unit_tests(
    request: ExecutionRequest, selectors: Mapping[str, str], resolved: ResolvedManifest
) -> list[tuple[str, dict[str, str]]]:
    """The request's (command, selectors) parts: ``dbt build`` runs a unit test only together
    with the model it tests, so unit tests whose model is not in a build request run as
    ``dbt test`` beside it."""
    command = request.command.value
    if command != "build":
        return [(command, dict(selectors))]
    graph = resolved.graph
    orphans = {
        uid: sel
        for uid, sel in selectors.items()
        if uid.startswith("unit_test.")
        and not set(graph.parent_map.get(uid, ())) & selectors.keys()
    }
    rest = {uid: sel for uid, sel in selectors.items() if uid not in orphans}
    return [(c, part) for c, part in (("build", rest), ("test", orphans)) if part]


def absolute(path: str | Path | None) -> Path | None:
    return Path(path).expanduser().resolve() if path is not None else None


def env_digest(environ: Mapping[str, str]) -> str:
    return hashlib.sha256(json.dumps(sorted(environ.items())).encode()).hexdigest()


def has_flag(args: Sequence[str], flag: str) -> bool:
    return any(a == flag or a.startswith(flag + "=") for a in args)


def display_args(args: Sequence[str]) -> tuple[str, ...]:
    """Arguments for display: values of secret-looking vars are masked."""
    out = list(args)
    for i, arg in enumerate(out[:-1]):
        if arg == "--vars":
            try:
                values = json.loads(out[i + 1])
            except ValueError:
                continue
            masked = {k: "***" if _SECRET_KEY.search(str(k)) else v for k, v in values.items()}
            out[i + 1] = json.dumps(masked, sort_keys=True)
    return tuple(out)
