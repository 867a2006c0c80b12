"""Which extra dbt flags make sense in a dbt Cloud job step.

The executor writes the step itself: it selects exactly the requested nodes, and dbt Cloud
supplies the project checkout, the profile, the target path and the logs. Flags that would
contradict either raise :class:`~dbt_exec_cloud.InvalidCliArgsError` (a ``ValueError``) saying
what to use instead. Flags that can silently change which requested nodes dbt runs pass with a
logged warning. Everything else (``--vars``, ``--empty``, ``--warn-error``, ``--defer``, ...)
passes through unchanged, shell-quoted.

Flags are read the way dbt's command line reads them: ``--flag value``, ``--flag=value``, short
forms (``-s``, ``-m``, ``-t``, ``-f``, ``-x``) with the value attached or not, and clusters of
short flags (``-xs foo``). Abbreviations are not expanded (``--sel`` is not ``--select``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dbt_exec_cloud._errors import InvalidCliArgsError

logger = logging.getLogger("dbt_exec_cloud")


@dataclass(frozen=True, kw_only=True)
class _Rule:
    name: str  # canonical spelling, used in messages
    values: int  # 0: a switch, 1: one value, 2: one or more values
    why: str  # what to do instead (refused) or the caveat (passed with a warning)
    refused: bool = True


_SELECTION = (
    "the executor selects exactly the requested nodes; choose them with the orchestrator's "
    "select/exclude (the request's nodes)"
)
_PROFILE = (
    "dbt Cloud generates the profile from the environment's connection and credentials; "
    "choose the environment with environment_id"
)
_STATE = (
    "paths on this machine do not exist on dbt Cloud's runners; dbt Cloud defers through the "
    "environment's deferral settings, and defer_to_job_id chooses the manifest"
)
_LOGS = (
    "dbt Cloud keeps the step's logs (debug logs included); read them on the run's page, "
    "linked in the result's logs"
)

_RULES: tuple[tuple[tuple[str, ...], _Rule], ...] = (
    (("--select", "-s"), _Rule(name="--select", values=2, why=_SELECTION)),
    (("--models", "--model", "-m"), _Rule(name="--models", values=2, why=_SELECTION)),
    (("--exclude",), _Rule(name="--exclude", values=2, why=_SELECTION)),
    (("--selector",), _Rule(name="--selector", values=1, why=_SELECTION)),
    (
        ("--indirect-selection",),
        _Rule(
            name="--indirect-selection",
            values=1,
            why="the orchestrator schedules tests itself, so build and test steps always get "
            "--indirect-selection empty",
        ),
    ),
    (
        ("--project-dir",),
        _Rule(
            name="--project-dir",
            values=1,
            why="dbt Cloud runs the step in the environment's checkout of the project; choose "
            "the project with project_id",
        ),
    ),
    (("--profiles-dir",), _Rule(name="--profiles-dir", values=1, why=_PROFILE)),
    (("--profile",), _Rule(name="--profile", values=1, why=_PROFILE)),
    (
        ("--target-path",),
        _Rule(
            name="--target-path",
            values=1,
            why="the executor reads run_results.json from the artifacts dbt Cloud keeps from "
            "its own target path",
        ),
    ),
    (("--log-path",), _Rule(name="--log-path", values=1, why=_LOGS)),
    (("--log-level",), _Rule(name="--log-level", values=1, why=_LOGS)),
    (
        ("--threads",),
        _Rule(name="--threads", values=1, why="use DbtCloudExecutor(threads=N) instead"),
    ),
    (
        ("--target", "-t"),
        _Rule(
            name="--target",
            values=1,
            why='use run_build(target="...") (the request\'s target) instead; the executor '
            "puts it in the job settings, because a dbt Cloud job's generated profile has only "
            "the target the job names",
        ),
    ),
    (
        ("--full-refresh", "-f"),
        _Rule(
            name="--full-refresh",
            values=0,
            why="use run_build(full_refresh=True) (the request's full_refresh) instead",
        ),
    ),
    (("--state", "--deprecated-state"), _Rule(name="--state", values=1, why=_STATE)),
    (("--defer-state",), _Rule(name="--defer-state", values=1, why=_STATE)),
    (
        ("--resource-type", "--resource-types"),
        _Rule(
            name="--resource-type",
            values=2,
            why="it can silently drop requested nodes of other resource types",
            refused=False,
        ),
    ),
    (
        ("--exclude-resource-type", "--exclude-resource-types"),
        _Rule(
            name="--exclude-resource-type",
            values=2,
            why="it can silently drop requested nodes of the excluded resource types",
            refused=False,
        ),
    ),
    (
        ("--fail-fast", "-x"),
        _Rule(
            name="--fail-fast",
            values=0,
            why="one failure makes dbt skip every other node of the same request",
            refused=False,
        ),
    ),
)
_BY_SPELLING = {spelling: rule for spellings, rule in _RULES for spelling in spellings}
#: Options outside the table whose one value is skipped whatever it looks like (as dbt does).
_ONE_VALUE = frozenset(
    {"--vars", "--log-format", "--log-format-file", "--log-level-file", "--printer-width"}
)
#: dbt's short options that take a value.
_SHORT_WITH_VALUE = frozenset("mosrt")


def check_extra_args(args: Sequence[str], *, warn: bool = True) -> tuple[str, ...]:
    """Check extra dbt flags for a dbt Cloud job step and return them as a tuple.

    Args:
        args: The flags, as they would follow ``dbt build`` on a command line.
        warn: Log a warning for each flag that passes with a caveat.

    Raises:
        InvalidCliArgsError: A flag the step must not carry; the message says what to use.
        TypeError: An argument is not a string.

    Example:
        >>> check_extra_args(["--vars", "{day: 1}", "--empty"])
        ('--vars', '{day: 1}', '--empty')
        >>> check_extra_args(["-sorders"])
        Traceback (most recent call last):
        ...
        dbt_exec_cloud._errors.InvalidCliArgsError: Cannot pass '--select' to a dbt Cloud job \
step: the executor selects exactly the requested nodes; choose them with the orchestrator's \
select/exclude (the request's nodes).
    """
    if isinstance(args, str):
        raise TypeError("extra dbt arguments must be a sequence of strings, not one string")
    tokens = tuple(args)
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(f"extra dbt arguments must be strings, got {token!r}")
    for rule, spelled in _flags_in(tokens):
        if rule.refused:
            raise InvalidCliArgsError(
                f"Cannot pass {rule.name!r} to a dbt Cloud job step: {rule.why}.", flag=rule.name
            )
        if warn:
            logger.warning("Passing %r (as %r) to dbt Cloud: %s.", rule.name, spelled, rule.why)
    return tokens


def _flags_in(tokens: tuple[str, ...]) -> Iterator[tuple[_Rule, str]]:
    """Each flag of the table in ``tokens``, with the spelling used."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            return
        if token.startswith("--"):
            name, has_value, _ = token.partition("=")
            rule = _BY_SPELLING.get(name)
            if rule is not None:
                yield rule, token
            if not has_value and (name in _ONE_VALUE or (rule is not None and rule.values == 1)):
                i += 1
        elif token.startswith("-") and len(token) > 1:
            for position, char in enumerate(token[1:], start=1):
                rule = _BY_SPELLING.get(f"-{char}")
                if rule is not None:
                    yield rule, token
                if char in _SHORT_WITH_VALUE:
                    if position == len(token) - 1 and rule is not None and rule.values == 1:
                        i += 1
                    break  # the rest of the token is this option's value
