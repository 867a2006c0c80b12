"""Where the dbt project lives, and a fingerprint of everything a parsed manifest depends on.

A manifest is only valid for the project files, the profile, the target, the vars and the dbt
version it was parsed with. :func:`fingerprint` captures all of those (file contents by hash,
environment variables the project reads by a digest of their values, never the values) so a
manifest parsed for another target, other vars or older files is never reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

from dbt_graph import find_profiles_dir

from dbt_exec_core._errors import ProjectConfigError

#: File types dbt reads while parsing a project.
_PROJECT_SUFFIXES = frozenset({".sql", ".py", ".yml", ".yaml", ".csv", ".md", ".jinja", ".jinja2"})
_SKIPPED_DIRS = frozenset({"logs", "__pycache__", "node_modules", "venv"})
_OUR_PACKAGES = frozenset({"dbt-graph", "dbt-cachekeys", "dbt-exec-core", "dbt-exec-cloud"})
_ENV_VAR = re.compile(r"""env_var\(\s*['"]([^'"]+)['"]""")


@dataclass(frozen=True, kw_only=True)
class ProjectPaths:
    """The absolute directories of a dbt project, checked to exist.

    Attributes:
        project_dir: The directory holding ``dbt_project.yml``.
        profiles_dir: The directory holding ``profiles.yml``.
        target_path: The project's target directory (absolute).
    """

    project_dir: Path
    profiles_dir: Path
    target_path: Path

    @classmethod
    def from_settings(cls, settings: Any) -> ProjectPaths:
        """Read ``project_dir``, ``profiles_dir`` and ``target_path`` from any settings object.

        ``target_path`` may be relative to the project directory (dbt's default is ``target``).
        A missing ``profiles_dir`` is looked for as dbt looks (:func:`dbt_graph.find_profiles_dir`:
        ``DBT_PROFILES_DIR``, the project directory, the working directory, ``~/.dbt``).

        Raises:
            ProjectConfigError: A directory or its ``dbt_project.yml``/``profiles.yml`` is
                missing. It is a ``ValueError``.
        """
        raw_project = getattr(settings, "project_dir", None)
        project_dir = Path(raw_project if raw_project is not None else Path.cwd())
        project_dir = project_dir.expanduser().resolve()
        if not project_dir.is_dir():
            raise ProjectConfigError(
                f"The dbt project directory {project_dir} does not exist. Pass settings whose "
                "project_dir is your dbt project.",
                path=str(project_dir),
            )
        if not (project_dir / "dbt_project.yml").is_file():
            raise ProjectConfigError(
                f"{project_dir} has no dbt_project.yml, so it is not a dbt project. Pass settings "
                "whose project_dir is the directory that holds dbt_project.yml.",
                path=str(project_dir / "dbt_project.yml"),
            )
        raw_profiles = getattr(settings, "profiles_dir", None)
        explicit = Path(raw_profiles) if raw_profiles is not None else None
        profiles_dir = find_profiles_dir(project_dir, explicit=explicit).expanduser().resolve()
        if not profiles_dir.is_dir():
            raise ProjectConfigError(
                f"The dbt profiles directory {profiles_dir} does not exist. Pass settings whose "
                "profiles_dir holds your profiles.yml.",
                path=str(profiles_dir),
            )
        if not (profiles_dir / "profiles.yml").is_file():
            raise ProjectConfigError(
                f"{profiles_dir} has no profiles.yml. Pass settings whose profiles_dir is the "
                "directory that holds profiles.yml.",
                path=str(profiles_dir / "profiles.yml"),
            )
        raw_target = getattr(settings, "target_path", None)
        target_path = Path(raw_target if raw_target is not None else "target").expanduser()
        if not target_path.is_absolute():
            target_path = project_dir / target_path
        return cls(project_dir=project_dir, profiles_dir=profiles_dir, target_path=target_path)


def canonical_vars(vars: Mapping[str, Any] | None) -> str:
    """Vars as canonical JSON (sorted keys), the form dbt is given and fingerprints compare.

    >>> canonical_vars({"b": 1, "a": [2]})
    '{"a": [2], "b": 1}'
    >>> canonical_vars(None)
    '{}'
    """
    return json.dumps(dict(vars or {}), sort_keys=True, default=str)


def fingerprint(
    paths: ProjectPaths,
    *,
    target: str | None,
    vars: Mapping[str, Any] | None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Everything a manifest parsed for ``target`` and ``vars`` depends on.

    Args:
        paths: The project.
        target: The target, ``None`` for the profile's default.
        vars: The vars.
        environ: The environment (``os.environ`` when ``None``); only a digest of the variables
            the project files reference with ``env_var()`` is kept.

    Returns:
        A JSON-serialisable mapping; two equal fingerprints mean the manifest can be reused.
    """
    env = os.environ if environ is None else environ
    files = hashlib.sha256()
    env_names: set[str] = set()
    sources = sorted(_project_files(paths), key=lambda p: p.as_posix())
    profiles = paths.profiles_dir / "profiles.yml"
    for path in [*sources, profiles]:
        try:
            content = path.read_bytes()
        except OSError:
            continue  # vanished while scanning; a later check sees the new state
        files.update(str(path).encode() + b"\0" + hashlib.sha256(content).digest())
        env_names.update(_ENV_VAR.findall(content.decode("utf-8", "replace")))
    env_digest = hashlib.sha256(
        json.dumps({name: env.get(name) for name in sorted(env_names)}).encode()
    ).hexdigest()
    return {
        "project_dir": str(paths.project_dir),
        "profiles_dir": str(paths.profiles_dir),
        "target": target,
        "vars": canonical_vars(vars),
        "versions": _dbt_versions(),
        "files": files.hexdigest(),
        "env": env_digest,
    }


def digest(fingerprint: Mapping[str, Any]) -> str:
    """A short stable digest of a fingerprint."""
    text = json.dumps(fingerprint, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _project_files(paths: ProjectPaths) -> list[Path]:
    # Installed packages are often symlinks (local packages), so links are followed; a set of
    # visited real paths stops symlink loops.
    seen = {paths.target_path.resolve()}
    found: list[Path] = []
    for root, dirs, names in os.walk(paths.project_dir, followlinks=True):
        here = Path(root)
        kept = []
        for d in dirs:
            real = (here / d).resolve()
            if d.startswith(".") or d in _SKIPPED_DIRS or real in seen:
                continue
            if (here / d / "pyvenv.cfg").exists():
                continue
            seen.add(real)
            kept.append(d)
        dirs[:] = kept
        found.extend(here / n for n in names if Path(n).suffix in _PROJECT_SUFFIXES)
    return found


@cache
def _dbt_versions() -> dict[str, str]:
    """Installed versions of dbt-core and every dbt adapter (a new dbt means a new manifest)."""
    versions: dict[str, str] = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("dbt-") and name not in _OUR_PACKAGES:
            versions[name] = dist.version
    return dict(sorted(versions.items()))
