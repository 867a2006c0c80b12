"""dbt-exec-core: run dbt-core locally, per node, at close to ``dbt build`` speed.

:class:`DbtCoreExecutor` implements the executor contract of :mod:`dbt_graph` with long-lived
worker processes that hold the parsed manifest and coalesce requests arriving together into one
dbt invocation. :func:`validate_extra_cli_args` checks extra dbt arguments against the
orchestrator's flag table.

Example:
    >>> from dbt_exec_core import DbtCoreExecutor, validate_extra_cli_args
    >>> validate_extra_cli_args(["--vars", "{day: 1}"])
    ('--vars', '{day: 1}')
    >>> executor = DbtCoreExecutor(settings)  # doctest: +SKIP
"""

from dbt_exec_core._cli_args import validate_extra_cli_args
from dbt_exec_core._errors import (
    DbtExecCoreError,
    FreshnessError,
    InvalidCliArgsError,
    ManifestResolutionError,
    ProjectConfigError,
    WorkerError,
)
from dbt_exec_core._executor import DbtCoreExecutor
from dbt_exec_core._project import ProjectPaths

__all__ = [
    "DbtCoreExecutor",
    "DbtExecCoreError",
    "FreshnessError",
    "InvalidCliArgsError",
    "ManifestResolutionError",
    "ProjectConfigError",
    "ProjectPaths",
    "WorkerError",
    "validate_extra_cli_args",
]
