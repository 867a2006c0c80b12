"""Where the dbt project and its profile live."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dbt_graph import find_profiles_dir
from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_log_level() -> str:
    level = logging.getLogger("prefect").getEffectiveLevel()
    return logging.getLevelName(level).lower() if level != logging.NOTSET else "info"


class PrefectDbtSettings(BaseSettings):
    """Settings of a dbt project, read from arguments or ``DBT_``-prefixed environment variables.

    Attributes:
        project_dir: The dbt project (holds ``dbt_project.yml``). Default: the working directory.
        profiles_dir: The directory holding ``profiles.yml``. Default, as dbt
            (:func:`dbt_graph.find_profiles_dir`): ``DBT_PROFILES_DIR``, else the project
            directory if it has a ``profiles.yml``, else the working directory if it has one,
            else ``~/.dbt``.
        target_path: dbt's target directory, relative to ``project_dir`` unless absolute.
        log_level: The level of dbt log lines forwarded to Prefect logs.

    Example:
        >>> from pathlib import Path
        >>> settings = PrefectDbtSettings(project_dir=Path("/srv/analytics"))
        >>> settings.resolved_target_path()
        PosixPath('/srv/analytics/target')
    """

    model_config = SettingsConfigDict(env_prefix="DBT_", extra="ignore")

    project_dir: Path = Field(default_factory=Path.cwd)
    profiles_dir: Path | None = None
    target_path: Path = Path("target")
    log_level: str = Field(default_factory=_default_log_level)

    @model_validator(mode="after")
    def _default_profiles_dir(self) -> PrefectDbtSettings:
        if self.profiles_dir is None:
            self.profiles_dir = find_profiles_dir(self.project_dir)
        return self

    def resolved_target_path(self) -> Path:
        """The absolute target directory."""
        path = self.target_path
        return path if path.is_absolute() else (self.project_dir / path).absolute()

    def copy_with(self, **changes: Any) -> PrefectDbtSettings:
        """A copy with some fields changed; the original is never mutated."""
        return self.model_copy(update=changes, deep=True)
