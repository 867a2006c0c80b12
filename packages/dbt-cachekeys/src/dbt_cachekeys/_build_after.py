"""dbt's ``freshness.build_after`` model config, as a pure decision.

dbt 1.10+ lets a model say how often it may be rebuilt when new data arrives::

    models:
      - name: orders_daily
        config:
          freshness:
            build_after: {count: 4, period: hour, updates_on: all}

dbt writes it to manifest.json as ``config.freshness.build_after`` (``count`` and ``period``
both set or both absent; ``updates_on`` defaults to ``any``). In data-aware mode a model whose
code is unchanged but whose inputs have new data is rebuilt only when

* at least one direct input has new data (``updates_on: any``), or every one has
  (``updates_on: all``), and
* ``count`` ``period``\\ s have passed since its last real build.

Otherwise its last result is served. Absent or unrecognised config changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

logger = logging.getLogger("dbt_cachekeys")

_PERIODS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1), "day": timedelta(days=1)}


class UpdatesOn(StrEnum):
    """Which direct inputs must have new data before a rebuild."""

    ANY = "any"
    ALL = "all"


@dataclass(frozen=True, kw_only=True)
class BuildAfter:
    """A model's ``freshness.build_after``.

    Attributes:
        count: How many periods must pass between builds (0: no wait).
        period: ``minute``, ``hour`` or ``day`` (``None`` with ``count`` 0).
        updates_on: Whether any or all direct inputs must have new data.
    """

    count: int = 0
    period: str | None = None
    updates_on: UpdatesOn = UpdatesOn.ANY

    @property
    def interval(self) -> timedelta:
        """The least time between two builds.

        >>> BuildAfter(count=4, period="hour").interval
        datetime.timedelta(seconds=14400)
        """
        return _PERIODS[self.period] * self.count if self.period else timedelta(0)

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BuildAfter | None:
        """Read ``freshness.build_after`` from a node's resolved config.

        Returns ``None`` when it is absent or not understood (logged), which changes nothing.

        Example:
            >>> BuildAfter.from_config({"freshness": {"build_after":
            ...     {"count": 1, "period": "day", "updates_on": "all"}}})
            BuildAfter(count=1, period='day', updates_on=<UpdatesOn.ALL: 'all'>)
            >>> BuildAfter.from_config({"freshness": None}) is None
            True
        """
        freshness = config.get("freshness")
        raw = freshness.get("build_after") if isinstance(freshness, Mapping) else None
        if raw is None:
            return None
        try:
            return cls._parse(raw)
        except (TypeError, ValueError) as exc:
            logger.warning("ignoring freshness.build_after %r: %s", raw, exc)
            return None

    @classmethod
    def _parse(cls, raw: Any) -> BuildAfter:
        if not isinstance(raw, Mapping):
            raise TypeError("build_after must be a mapping")
        count, period = raw.get("count"), raw.get("period")
        updates_on = UpdatesOn(str(raw.get("updates_on") or "any").lower())
        if count is None and period is None:
            return cls(updates_on=updates_on)
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise ValueError("count must be a non-negative integer")
        if period not in _PERIODS:
            raise ValueError(f"period must be one of {', '.join(_PERIODS)}")
        return cls(count=count, period=period, updates_on=updates_on)

    def describe(self) -> str:
        """``"build_after 4 hours"``, ``"build_after updates_on all"``..."""
        parts = []
        if self.count and self.period:
            parts.append(f"{self.count} {self.period}{'s' if self.count != 1 else ''}")
        if self.updates_on is UpdatesOn.ALL:
            parts.append("updates_on all")
        return "build_after " + (", ".join(parts) or "any")


@dataclass(frozen=True, kw_only=True)
class BuildAfterDecision:
    """Whether a model with new input data is rebuilt now.

    Attributes:
        rebuild: Rebuild (``True``) or serve the last result (``False``).
        reason: Why it is served (for people); ``None`` when it is rebuilt.
    """

    rebuild: bool
    reason: str | None = None


def decide_build_after(
    build_after: BuildAfter | None,
    *,
    last_built: datetime | None,
    now: datetime,
    inputs: Collection[str],
    changed: Collection[str],
) -> BuildAfterDecision:
    """Decide whether a model whose code is unchanged is rebuilt for new input data.

    Args:
        build_after: The model's ``freshness.build_after``, or ``None``.
        last_built: When it last really ran (its stored record), or ``None`` if never.
        now: The current time (timezone-aware).
        inputs: Its direct inputs (sources and models, seen through ephemeral models).
        changed: Those of ``inputs`` that have new data since ``last_built``.

    Returns:
        Rebuild, or serve from cache with the reason.

    Example:
        >>> built = datetime(2026, 1, 1, 8, tzinfo=UTC)
        >>> rule = BuildAfter(count=4, period="hour")
        >>> decide_build_after(rule, last_built=built, now=built + timedelta(hours=1),
        ...                    inputs={"a"}, changed={"a"}).reason
        'build_after 4 hours: built 2026-01-01 08:00:00 UTC, next build due 2026-01-01 12:00:00 UTC'
        >>> decide_build_after(rule, last_built=built, now=built + timedelta(hours=5),
        ...                    inputs={"a"}, changed={"a"}).rebuild
        True
    """
    if build_after is None or last_built is None:
        return BuildAfterDecision(rebuild=True)
    if not changed:
        return BuildAfterDecision(
            rebuild=False, reason=f"{build_after.describe()}: no direct input has new data"
        )
    if build_after.updates_on is UpdatesOn.ALL:
        waiting = sorted(set(inputs) - set(changed))
        if waiting:
            names = ", ".join(f"`{w}`" for w in waiting)
            return BuildAfterDecision(
                rebuild=False,
                reason=f"{build_after.describe()}: waiting for new data in {names}",
            )
    due = last_built + build_after.interval
    if now < due:
        return BuildAfterDecision(
            rebuild=False,
            reason=f"{build_after.describe()}: built {_when(last_built)}, next build due "
            f"{_when(due)}",
        )
    return BuildAfterDecision(rebuild=True)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
