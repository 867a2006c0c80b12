"""One logical dbt Cloud request: sent, retried within the budget, and its errors translated.

Retried: connection errors, timeouts, 5xx and the 4xx answers a gateway may give (408, 409, 425,
429), with backoff and jitter or as ``Retry-After`` says. Every other 4xx fails at once.

A non-idempotent call (create a job, trigger a run) passes ``recover``: after any failure that
leaves open whether dbt Cloud acted - every retried status, and a transport error once the
request may have left this machine - ``recover`` is asked for what the call produced, and what
it finds is adopted instead of sending the request again.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

from dbt_exec_cloud._errors import DbtCloudError
from dbt_exec_cloud._http_errors import error_for_response, error_for_transport, is_unconfirmed
from dbt_exec_cloud._retry import RetryPolicy, parse_retry_after

logger = logging.getLogger("dbt_exec_cloud")

_T = TypeVar("_T")

#: Transport errors raised before the request left this machine: the server cannot have acted.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True, kw_only=True)
class _Failure:
    """One failed attempt of a call.

    Attributes:
        error: What to raise if no further attempt is made.
        retryable: Another attempt may succeed (connection errors, 408/409/425/429, 5xx).
        maybe_acted: dbt Cloud may have carried the request out although its answer was lost.
        reason: A short name of the failure for the retry log line.
        retry_after: Seconds the ``Retry-After`` header asked for, if any.
    """

    error: DbtCloudError
    retryable: bool
    maybe_acted: bool
    reason: str
    retry_after: float | None = None


def send(
    http: httpx.Client,
    build: Callable[[], httpx.Request],
    *,
    retry: RetryPolicy,
    sleep: Callable[[float], None],
    rng: random.Random,
    recover: Callable[[], _T | None] | None = None,
) -> httpx.Response | _T:
    """Send the request ``build`` makes, with retries (a fresh one per attempt).

    Returns the successful response, or what ``recover`` found.

    Raises:
        DbtCloudError: The translated last failure, once it cannot or may not be retried.
    """
    waited = 0.0
    attempt = 0
    while True:
        attempt += 1
        request = build()
        outcome = _attempt(http, request, attempt)
        if isinstance(outcome, httpx.Response):
            return outcome
        if not outcome.retryable:
            raise outcome.error
        if recover is not None and outcome.maybe_acted:
            found = recover()
            if found is not None:
                return found
        if attempt >= retry.max_attempts:
            raise outcome.error
        delay = outcome.retry_after
        if delay is None:
            delay = retry.backoff(attempt, rng)
        if waited + delay > retry.max_total_delay:
            raise outcome.error
        logger.warning(
            "dbt Cloud %s %s failed (%s); retrying in %.1f s (attempt %d of %d)",
            request.method,
            request.url.path,
            outcome.reason,
            delay,
            attempt + 1,
            retry.max_attempts,
        )
        sleep(delay)
        waited += delay


def _attempt(http: httpx.Client, request: httpx.Request, attempt: int) -> httpx.Response | _Failure:
    """Send ``request`` once: the successful response, or what went wrong."""
    try:
        response = http.send(request)
    except httpx.TransportError as exc:
        return _Failure(
            error=error_for_transport(exc, request, attempt),
            retryable=True,
            maybe_acted=not isinstance(exc, _NOT_SENT),
            reason=type(exc).__name__,
        )
    logger.debug("%s %s -> %s", request.method, request.url.path, response.status_code)
    if response.is_success:
        return response
    unconfirmed = is_unconfirmed(response.status_code)
    return _Failure(
        error=error_for_response(response, attempt),
        retryable=unconfirmed,
        # Whatever the status, a gateway may have sent it after dbt Cloud acted (a 429 in
        # front of a create that went through is the classic case).
        maybe_acted=unconfirmed,
        reason=f"HTTP {response.status_code}",
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )
