"""dbt-exec-cloud: run dbt nodes as dbt Cloud ephemeral jobs, robustly.

:class:`DbtCloudExecutor` implements dbt-graph's executor contract over the dbt Cloud
Administrative API v2 with httpx; :class:`CloudClient` is the API client underneath. Neither
imports dbt-core or Prefect.

Example:
    >>> from dbt_exec_cloud import DbtCloudCredentials, DbtCloudExecutor
    >>> executor = DbtCloudExecutor(
    ...     DbtCloudCredentials(api_key="dbc_your_key", account_id=12345),
    ...     project_id=123456,
    ...     environment_id=654321,
    ... )
    >>> manifest_path = executor.resolve_manifest()  # doctest: +SKIP
"""

from dbt_exec_cloud._client import CloudClient
from dbt_exec_cloud._credentials import DbtCloudCredentials, Secret
from dbt_exec_cloud._errors import (
    ArtifactNotFoundError,
    AuthenticationError,
    CloudAPIError,
    CloudConnectionError,
    ConfigurationError,
    DbtCloudError,
    InvalidCliArgsError,
    InvalidRequestError,
    JobNotDeletedWarning,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ResponseError,
    RunFailedError,
    RunTimeoutError,
    ServerError,
    TransientError,
)
from dbt_exec_cloud._executor import DbtCloudExecutor
from dbt_exec_cloud._models import Job, Run, RunStatus
from dbt_exec_cloud._retry import RetryPolicy

__all__ = [
    "ArtifactNotFoundError",
    "AuthenticationError",
    "CloudAPIError",
    "CloudClient",
    "CloudConnectionError",
    "ConfigurationError",
    "DbtCloudCredentials",
    "DbtCloudError",
    "DbtCloudExecutor",
    "InvalidCliArgsError",
    "InvalidRequestError",
    "Job",
    "JobNotDeletedWarning",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ResponseError",
    "RetryPolicy",
    "Run",
    "RunFailedError",
    "RunStatus",
    "RunTimeoutError",
    "Secret",
    "ServerError",
    "TransientError",
]
