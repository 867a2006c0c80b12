"""Errors raised by dbt-graph.

The tree::

    DbtGraphError
    ├── ManifestError          manifest.json is missing, malformed or unsupported
    ├── SelectionError         a selector expression or YAML selector is invalid
    │   └── UnknownMethodError     the expression names a method dbt does not have
    ├── StateError             a state:/result:/source_status: selector lacks its artifact
    ├── CycleError             the executable graph has a cycle
    ├── ScheduleError          durations, their history, an order or a concurrency cannot be used
    │   └── ConcurrencyKeyError    a concurrency key's selector, limit or name is invalid
    ├── FingerprintConfigError a source's ``meta.data_fingerprint`` is not usable
    ├── ProfileError           the profile's target cannot be worked out without dbt
    └── ExtraArgsError         an extra dbt argument is blocked or has a parameter of its own

Every message says what went wrong and what to do next.
"""

from __future__ import annotations

from collections.abc import Sequence


class DbtGraphError(Exception):
    """Root of every error dbt-graph raises."""


class ManifestError(DbtGraphError, ValueError):
    """A manifest.json could not be read into a :class:`~dbt_graph.Manifest`.

    Attributes:
        path: The file that was read (``None`` for in-memory data).
        field: The dotted location of the offending field, when known.
    """

    def __init__(self, message: str, *, path: str | None = None, field: str | None = None) -> None:
        self.path = path
        self.field = field
        where = f"{path}: " if path else ""
        at = f" (at {field})" if field else ""
        super().__init__(f"{where}{message}{at}")


class SelectionError(DbtGraphError, ValueError):
    """A selection expression could not be parsed or evaluated.

    Attributes:
        expression: The whole expression that was given.
        part: The offending part of it.
    """

    def __init__(self, message: str, *, expression: str | None = None, part: str | None = None):
        self.expression = expression
        self.part = part
        super().__init__(message)


class UnknownMethodError(SelectionError):
    """The expression uses a selector method dbt does not define."""


class StateError(SelectionError):
    """A selector needs a comparison artifact (state manifest, run_results, sources) it lacks."""


class CycleError(DbtGraphError, ValueError):
    """The graph has a dependency cycle.

    Attributes:
        cycle: The unique_ids on the cycle, in order; the first repeats the last edge's target.
    """

    def __init__(self, cycle: Sequence[str]) -> None:
        self.cycle = tuple(cycle)
        path = " -> ".join([*self.cycle, self.cycle[0]]) if self.cycle else "?"
        super().__init__(
            f"The dbt graph contains a dependency cycle: {path}. "
            "Remove one of these references (ref/source/depends_on) to break it."
        )


class ScheduleError(DbtGraphError, ValueError):
    """Durations, their history, a submission order or a concurrency cannot be scheduled with."""


class ConcurrencyKeyError(ScheduleError):
    """A concurrency key is invalid (its selector, limit or name), or two keys clash.

    Attributes:
        selector: The offending key's selector, when one key is at fault.
    """

    def __init__(self, message: str, *, selector: str | None = None) -> None:
        self.selector = selector
        super().__init__(message)


class FingerprintConfigError(DbtGraphError, ValueError):
    """A source's ``meta.data_fingerprint`` setting cannot be used.

    Attributes:
        unique_id: The source.
    """

    def __init__(self, message: str, *, unique_id: str) -> None:
        self.unique_id = unique_id
        super().__init__(f"{unique_id}: {message}")


class ProfileError(DbtGraphError, ValueError):
    """The profile name or target cannot be worked out as dbt would (see ``effective_target``)."""


class ExtraArgsError(DbtGraphError, ValueError):
    """An extra dbt argument is refused: it conflicts with how nodes run, or has a parameter.

    Attributes:
        flag: The flag's canonical spelling (``--select``, ``--full-refresh``...).
    """

    def __init__(self, message: str, *, flag: str) -> None:
        self.flag = flag
        super().__init__(message)
