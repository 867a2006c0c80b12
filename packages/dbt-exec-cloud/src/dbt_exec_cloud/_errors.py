"""Errors raised by dbt-exec-cloud.

The tree::

    DbtCloudError                  root of everything this package raises
    ├── ConfigurationError         a constructor argument or a requested source is invalid
    │   └── InvalidCliArgsError        an extra dbt flag that makes no sense in a job step
    ├── CloudAPIError              dbt Cloud answered with an error status
    │   ├── InvalidRequestError        400/405/422 and other 4xx: the payload was refused
    │   ├── AuthenticationError        401: wrong API key or account id
    │   ├── PermissionDeniedError      403: the key may not do this
    │   ├── NotFoundError              404: wrong project, environment, job or run id
    │   │   └── ArtifactNotFoundError      the run or job has no such artifact
    │   └── TransientError             408/409/425: an answer that may pass, still given when
    │       │                          the retry budget ran out
    │       ├── RateLimitError             429, still refused when the retry budget ran out
    │       └── ServerError                5xx, still failing when the retry budget ran out
    ├── CloudConnectionError       no answer: DNS, refused connection, request timeout
    ├── ResponseError              the answer was not the JSON dbt Cloud documents
    ├── RunFailedError             a run the executor needed (compile, freshness) did not succeed
    └── RunTimeoutError            a run did not finish in time (also a :class:`TimeoutError`)

One warning, :class:`JobNotDeletedWarning`, reports an ephemeral job that could not be deleted.

Messages say what to do next. They never contain the API key: errors carry the method, URL
(which holds the account id, not the key) and dbt Cloud's own ``user_message``. Every error
pickles, so it crosses process pools.
"""

from __future__ import annotations


class DbtCloudError(Exception):
    """Root of every error dbt-exec-cloud raises."""


class ConfigurationError(DbtCloudError, ValueError):
    """A constructor argument or a requested source is invalid."""


class InvalidCliArgsError(ConfigurationError):
    """An extra dbt flag that makes no sense in a dbt Cloud job step; the message says what to use.

    Attributes:
        flag: The flag, in its canonical spelling (``--select`` also for ``-s``).
    """

    def __init__(self, message: str, *, flag: str | None = None) -> None:
        super().__init__(message)
        self.flag = flag


class CloudAPIError(DbtCloudError):
    """dbt Cloud answered with an error status.

    Attributes:
        status_code: The HTTP status.
        method: The request method.
        url: The request URL (it never holds the API key).
        user_message: dbt Cloud's ``status.user_message``, when the body had one.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        method: str | None = None,
        url: str | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.method = method
        self.url = url
        self.user_message = user_message


class InvalidRequestError(CloudAPIError):
    """dbt Cloud refused the payload (400, 405, 422 and other 4xx)."""


class AuthenticationError(CloudAPIError):
    """401: dbt Cloud did not accept the API key for this account."""


class PermissionDeniedError(CloudAPIError):
    """403: the API key is valid but may not do this (job admin rights are needed)."""


class NotFoundError(CloudAPIError):
    """404: the account, project, environment, job or run does not exist for this key."""


class ArtifactNotFoundError(NotFoundError):
    """The run or job has no such artifact (the step never wrote it, or the run had none)."""


class TransientError(CloudAPIError):
    """408, 409, 425 (and, as subclasses, 429 and 5xx): answers that usually pass on a retry.

    Raised when they were still given when the retry budget ran out. They are also the answers
    a gateway may give after dbt Cloud carried a request out, which is why the client checks
    whether a create or trigger happened before sending it again.
    """


class RateLimitError(TransientError):
    """429: dbt Cloud kept rate-limiting the requests until the retry budget ran out."""


class ServerError(TransientError):
    """5xx: dbt Cloud kept failing until the retry budget ran out."""


class CloudConnectionError(DbtCloudError):
    """dbt Cloud could not be reached, or did not answer in time, within the retry budget.

    Attributes:
        method: The request method.
        url: The request URL.
    """

    def __init__(self, message: str, *, method: str | None = None, url: str | None = None):
        super().__init__(message)
        self.method = method
        self.url = url


class ResponseError(DbtCloudError):
    """dbt Cloud answered, but not with the JSON its API documents."""


class RunFailedError(DbtCloudError):
    """A run the executor needed for itself (``dbt compile``, freshness) did not succeed.

    Attributes:
        run_id: The dbt Cloud run.
        status: The run's final status name (``error``, ``cancelled``).
        href: The run's page in dbt Cloud, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        run_id: int | None = None,
        status: str | None = None,
        href: str | None = None,
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.status = status
        self.href = href


class RunTimeoutError(DbtCloudError, TimeoutError):
    """A dbt Cloud run did not reach a terminal status in time; it was cancelled.

    Attributes:
        run_id: The dbt Cloud run.
        timeout_seconds: The limit that was exceeded.
        href: The run's page in dbt Cloud, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        run_id: int | None = None,
        timeout_seconds: float | None = None,
        href: str | None = None,
    ) -> None:
        super().__init__(message)
        self.run_id = run_id
        self.timeout_seconds = timeout_seconds
        self.href = href


class JobNotDeletedWarning(UserWarning):
    """An ephemeral dbt Cloud job could not be deleted within the retry budget.

    The message names the job id and the account, and says whether the executor tries again
    (the sweep at the end of the build, or :meth:`~dbt_exec_cloud.DbtCloudExecutor.close`) or
    the job must be deleted by hand under Deploy -> Jobs.
    """
