"""How long to wait before trying a dbt Cloud request again, and when to stop.

Exponential backoff with jitter, ``Retry-After`` honoured on 429 and 503, and a budget bounded
both in attempts and in total waiting time so a failing service cannot stall a build forever.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """The retry budget for one logical dbt Cloud call.

    Args:
        max_attempts: Attempts in total, the first included (``1`` disables retries).
        initial_delay: Seconds before the first retry.
        max_delay: Longest single wait between attempts.
        multiplier: Growth of the delay per attempt.
        jitter: Fraction of each delay that is randomised (``0.2``: between 80 % and 100 %), so
            many nodes that failed together do not retry together.
        max_total_delay: Longest total waiting across all retries of one call.
        request_timeout: Seconds one HTTP request may take (connect, read, write, pool).

    Example:
        >>> policy = RetryPolicy(initial_delay=1.0, multiplier=2.0, jitter=0.0)
        >>> [policy.backoff(n) for n in range(1, 4)]
        [1.0, 2.0, 4.0]
    """

    max_attempts: int = 6
    initial_delay: float = 1.0
    max_delay: float = 60.0
    multiplier: float = 2.0
    jitter: float = 0.2
    max_total_delay: float = 300.0
    request_timeout: float = 30.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")
        if min(self.initial_delay, self.max_delay, self.max_total_delay) < 0:
            raise ValueError("delays must not be negative")
        if self.request_timeout <= 0:
            raise ValueError("request_timeout must be positive")

    def backoff(self, retry: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        delay = min(self.max_delay, self.initial_delay * self.multiplier ** (retry - 1))
        if self.jitter:
            delay *= 1.0 - self.jitter * (rng or random).random()
        return delay


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a ``Retry-After`` header: delta-seconds or an HTTP date; ``None`` if absent.

    >>> parse_retry_after("7")
    7.0
    >>> parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT",
    ...                   now=datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC))
    10.0
    >>> parse_retry_after("soon") is None
    True
    """
    if value is None:
        return None
    text = value.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())
