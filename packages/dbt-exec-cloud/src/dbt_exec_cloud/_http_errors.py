"""Where httpx errors and dbt Cloud error statuses become :mod:`dbt_exec_cloud._errors` types.

The one place third-party errors are translated. Messages name the method and URL (which hold
the account id, never the API key) and what to do next.
"""

from __future__ import annotations

import json

import httpx

from dbt_exec_cloud._errors import (
    AuthenticationError,
    CloudAPIError,
    CloudConnectionError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    TransientError,
)
from dbt_exec_cloud._models import user_message

#: 4xx answers that a gateway or proxy may give while, or after, dbt Cloud carried the request
#: out (a timeout, a conflict with the request itself still in flight, "too early", a rate
#: limit in front of the service). Like 5xx they are retried, and they do not prove that a
#: create or trigger did not happen.
UNCONFIRMED_4XX = frozenset({408, 409, 425, 429})


def is_unconfirmed(status_code: int) -> bool:
    """Whether an error status leaves open that dbt Cloud acted (and so is worth a retry).

    >>> [code for code in (400, 404, 408, 409, 422, 425, 429, 500, 503) if is_unconfirmed(code)]
    [408, 409, 425, 429, 500, 503]
    """
    return status_code in UNCONFIRMED_4XX or status_code >= 500


def error_for_transport(
    exc: httpx.TransportError, request: httpx.Request, attempts: int
) -> CloudConnectionError:
    """Translate an httpx transport error (the message names the URL, never a header)."""
    kind = "did not answer in time" if isinstance(exc, httpx.TimeoutException) else "failed"
    return CloudConnectionError(
        f"{request.method} {request.url} {kind} after {attempts} attempt(s) "
        f"({type(exc).__name__}: {exc or 'no detail'}). Check the credentials' domain, the "
        "network and https://status.getdbt.com.",
        method=request.method,
        url=str(request.url),
    )


def error_for_response(response: httpx.Response, attempts: int) -> CloudAPIError:
    """Translate an error status into the matching :class:`CloudAPIError` subclass."""
    request = response.request
    code = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    said = user_message(body)
    details = body.get("data") if isinstance(body, dict) else None
    told = [said.rstrip(". ")] if said else []
    if isinstance(details, dict) and details:
        told.append(json.dumps(details, sort_keys=True, default=str))
    heard = f"HTTP {code} to {request.method} {request.url}"
    if told:
        heard += f" ({'; '.join(told)})"
    kind: type[CloudAPIError]
    if code == 401:
        kind, advice = AuthenticationError, "check the API key / account id"
    elif code == 403:
        kind, advice = (
            PermissionDeniedError,
            "the API key lacks permission; use a service token with Job Admin permission on "
            "this project",
        )
    elif code == 404:
        kind, advice = NotFoundError, "check project/environment/job ids and the account id"
    elif code == 429:
        kind, advice = (
            RateLimitError,
            f"still rate-limited after {attempts} attempt(s); run fewer nodes at once or "
            "raise the retry budget",
        )
    elif code >= 500:
        kind, advice = (
            ServerError,
            f"dbt Cloud kept failing after {attempts} attempt(s); check "
            "https://status.getdbt.com and try again",
        )
    elif code in UNCONFIRMED_4XX:
        kind, advice = (
            TransientError,
            f"dbt Cloud kept giving this answer after {attempts} attempt(s); check "
            "https://status.getdbt.com and try again later, or raise the retry budget",
        )
    else:
        kind, advice = InvalidRequestError, "dbt Cloud refused the request as invalid"
    return kind(
        f"dbt Cloud answered {heard}: {advice}.",
        status_code=code,
        method=request.method,
        url=str(request.url),
        user_message=said,
    )
