"""Errors raised by dbt-exec-core.

The tree::

    DbtExecCoreError
    ├── ProjectConfigError      the project or profiles directory is unusable (also a ValueError)
    ├── InvalidCliArgsError     an extra CLI argument is blocked or first-class (also a ValueError)
    ├── ManifestResolutionError ``dbt deps`` or ``dbt parse`` failed; carries dbt's own message
    ├── FreshnessError          ``dbt source freshness`` could not run at all
    └── WorkerError             a dbt worker process could not start or died between requests

A node that fails is never an exception: it is a :class:`~dbt_graph.NodeResult` with status
``error``. These errors mean dbt could not be run at all, and every message says what to do next.
"""

from __future__ import annotations


class DbtExecCoreError(Exception):
    """Root of every error dbt-exec-core raises."""


class ProjectConfigError(DbtExecCoreError, ValueError):
    """The settings point at a directory without ``dbt_project.yml`` or ``profiles.yml``.

    Attributes:
        path: The directory or file that is missing.
    """

    def __init__(self, message: str, *, path: str) -> None:
        self.path = path
        super().__init__(message)


class InvalidCliArgsError(DbtExecCoreError, ValueError):
    """An extra CLI argument may not be passed through.

    Attributes:
        flag: The offending flag as dbt spells it (``--select``), even when it was given in a
            short or ``=`` form.
    """

    def __init__(self, message: str, *, flag: str) -> None:
        self.flag = flag
        super().__init__(message)


class ManifestResolutionError(DbtExecCoreError, RuntimeError):
    """``dbt deps`` or ``dbt parse`` failed, so there is no manifest to run.

    Attributes:
        command: ``deps`` or ``parse``.
        dbt_message: What dbt said, unchanged.
    """

    def __init__(self, message: str, *, command: str, dbt_message: str) -> None:
        self.command = command
        self.dbt_message = dbt_message
        super().__init__(message)


class FreshnessError(DbtExecCoreError, RuntimeError):
    """``dbt source freshness`` could not run (not: a source is stale, which is data)."""


class WorkerError(DbtExecCoreError, RuntimeError):
    """A dbt worker process could not be started or stopped answering."""
