"""Which profiles directory and which target a dbt invocation uses, decided as dbt decides.

dbt-core is not needed (a dbt Cloud user may not have it), and no file is read here: callers
pass the directories they know, the environment, and the parsed ``dbt_project.yml`` and
``profiles.yml``. dbt renders those files with Jinja; the only Jinja a project's profile name or
a profile's ``target:`` can sensibly hold is ``env_var()``, which :func:`render_env_vars`
renders (with or without a default). Anything else raises :class:`~dbt_graph.ProfileError`
rather than being taken as a literal name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dbt_graph._errors import ProfileError

PROFILES_FILE = "profiles.yml"

_ENV_VAR = re.compile(
    r"\{\{-?\s*env_var\(\s*(['\"])(?P<name>[^'\"]+)\1\s*"  # {{ env_var('NAME'
    r"(?:,\s*(['\"])(?P<default>.*?)\3\s*)?"  # , 'default'
    r"\)\s*-?\}\}"  # ) }}
)
_JINJA = re.compile(r"\{\{|\{%")


def find_profiles_dir(
    project_dir: Path,
    *,
    explicit: Path | None = None,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
    has_profiles: Callable[[Path], bool] | None = None,
) -> Path:
    """The directory whose ``profiles.yml`` dbt reads.

    In order: ``explicit`` (``--profiles-dir``, settings), ``DBT_PROFILES_DIR``, the project
    directory if it holds ``profiles.yml``, the working directory if it does (dbt's own
    default), else ``~/.dbt``.

    Args:
        project_dir: The dbt project.
        explicit: A directory given on purpose.
        environ: The environment (default ``os.environ``).
        cwd: The working directory (default ``Path.cwd()``).
        home: The home directory (default ``Path.home()``).
        has_profiles: Whether a directory holds ``profiles.yml`` (default: look on disk).

    >>> find_profiles_dir(Path("/srv/shop"), environ={}, cwd=Path("/tmp"), home=Path("/home/me"),
    ...                   has_profiles=lambda d: d == Path("/srv/shop"))
    PosixPath('/srv/shop')
    >>> find_profiles_dir(Path("/srv/shop"), environ={"DBT_PROFILES_DIR": "/etc/dbt"})
    PosixPath('/etc/dbt')
    """
    if explicit is not None:
        return explicit
    env = os.environ if environ is None else environ
    if env.get("DBT_PROFILES_DIR"):
        return Path(env["DBT_PROFILES_DIR"])
    holds = has_profiles or (lambda directory: (directory / PROFILES_FILE).is_file())
    for candidate in (project_dir, Path.cwd() if cwd is None else cwd):
        if holds(candidate):
            return candidate
    return (Path.home() if home is None else home) / ".dbt"


def render_env_vars(text: str, environ: Mapping[str, str], *, where: str = "the value") -> str:
    """Render the ``{{ env_var('NAME') }}`` and ``{{ env_var('NAME', 'default') }}`` in ``text``.

    Raises:
        ProfileError: A variable without a default is not set, or ``text`` holds other Jinja.

    >>> render_env_vars("{{ env_var('DBT_TARGET') }}", {"DBT_TARGET": "prod"})
    'prod'
    >>> render_env_vars('{{ env_var("DBT_TARGET", "dev") }}', {})
    'dev'
    """

    def value(match: re.Match[str]) -> str:
        name, default = match.group("name"), match.group("default")
        if name in environ:
            return environ[name]
        if default is None:
            raise ProfileError(
                f"{where} needs the environment variable {name!r}, which is not set. Set it, "
                "or give env_var() a default."
            )
        return default

    rendered = _ENV_VAR.sub(value, text)
    if _JINJA.search(rendered):
        raise ProfileError(
            f"{where} ({text!r}) uses Jinja other than env_var(), which cannot be rendered "
            "without dbt. Pass the target explicitly (target=...), or set DBT_TARGET."
        )
    return rendered


def effective_target(
    project: Mapping[str, Any] | None,
    profiles: Mapping[str, Any] | None,
    *,
    target: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> str | None:
    """The target dbt runs against, from the same inputs dbt uses.

    The run's ``target``; else ``DBT_TARGET``; else the profile's ``target:`` (rendered), or
    ``default`` when the profile names none. The profile is ``DBT_PROFILE`` or the project's
    ``profile:`` (rendered).

    Args:
        project: The parsed ``dbt_project.yml`` (``None`` when it could not be read).
        profiles: The parsed ``profiles.yml`` (``None`` when there is none).
        target: The target the run asks for.
        environ: The environment (default ``os.environ``).

    Returns:
        The target's name, or ``None`` when there is no profile to read it from (no
        ``profiles.yml``, or the profile is not in it, as for a dbt Cloud project).

    Raises:
        ProfileError: The profile name or target uses Jinja this module cannot render, or an
            environment variable without a default is not set.

    >>> project = {"name": "shop", "profile": "shop"}
    >>> profiles = {"shop": {"target": "{{ env_var('DBT_TARGET_NAME', 'dev') }}", "outputs": {}}}
    >>> effective_target(project, profiles, environ={})
    'dev'
    >>> effective_target(project, profiles, environ={"DBT_TARGET_NAME": "prod"})
    'prod'
    >>> effective_target(project, profiles, target="ci", environ={})
    'ci'
    """
    env = os.environ if environ is None else environ
    if target:
        return target
    if env.get("DBT_TARGET"):
        return env["DBT_TARGET"]
    name = env.get("DBT_PROFILE") or _text((project or {}).get("profile"))
    if not name:
        return None
    name = render_env_vars(name, env, where="dbt_project.yml's profile")
    profile = (profiles or {}).get(name)
    if not isinstance(profile, Mapping):
        return None
    raw = _text(profile.get("target"))
    if raw is None:
        return "default"
    return render_env_vars(raw, env, where=f"the target of profile {name!r} in profiles.yml")


def _text(value: Any) -> str | None:
    # YAML may read a bare name as a number or a boolean; dbt treats it as text.
    return None if value is None else str(value)
