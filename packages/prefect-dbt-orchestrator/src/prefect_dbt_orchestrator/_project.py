"""The project's own configuration, as cache keys need it: the effective vars and target.

Files are read here (the edge); what dbt would make of them is decided by
:func:`dbt_graph.effective_target`, the one implementation every package uses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from dbt_graph import effective_target

from prefect_dbt_orchestrator._settings import PrefectDbtSettings


@dataclass(frozen=True, kw_only=True)
class ProjectConfig:
    """``dbt_project.yml`` and ``profiles.yml``, parsed.

    Attributes:
        project: ``dbt_project.yml`` (empty when it cannot be read).
        profiles: ``profiles.yml``, or ``None`` when there is none (a dbt Cloud project).
    """

    project: Mapping[str, Any]
    profiles: Mapping[str, Any] | None = None

    @classmethod
    def read(cls, settings: PrefectDbtSettings) -> ProjectConfig:
        """Read both files from the settings' project and profiles directories."""
        project = _yaml_mapping(settings.project_dir / "dbt_project.yml")
        profiles_dir = settings.profiles_dir or settings.project_dir
        return cls(project=project or {}, profiles=_yaml_mapping(profiles_dir / "profiles.yml"))

    def target(
        self, run_target: str | None, environ: Mapping[str, str] | None = None
    ) -> str | None:
        """The target a run with ``run_target`` uses (see :func:`dbt_graph.effective_target`).

        Raises:
            dbt_graph.ProfileError: The profile's target cannot be rendered without dbt.

        >>> config = ProjectConfig(project={"profile": "shop"},
        ...                        profiles={"shop": {"target": "{{ env_var('T', 'dev') }}"}})
        >>> config.target(None, environ={}), config.target("prod", environ={})
        ('dev', 'prod')
        """
        return effective_target(self.project, self.profiles, target=run_target, environ=environ)

    def vars(self, run_vars: Mapping[str, Any] | None) -> dict[str, Any]:
        """The project's ``vars:`` overlaid with the run's vars: what dbt renders nodes with.

        >>> ProjectConfig(project={"vars": {"a": 1, "b": 2}}).vars({"b": 3})
        {'a': 1, 'b': 3}
        """
        declared = self.project.get("vars")
        return {**(declared if isinstance(declared, dict) else {}), **(run_vars or {})}


def _yaml_mapping(path: Path) -> Mapping[str, Any] | None:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None
