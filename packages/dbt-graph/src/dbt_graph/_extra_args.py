"""Extra dbt arguments checked against the orchestrator guide's flag table.

An executor checks the extra arguments it is given with its own ``validate_extra_args`` (see
:class:`~dbt_graph.Executor`); :func:`check_extra_args` is the guide's table for executors that
have none, and a base for those that do:

* **blocked** flags would change which nodes run or where dbt reads and writes, so they raise
  :class:`~dbt_graph.ExtraArgsError` (a ``ValueError``) saying why;
* **first-class** flags have a parameter of their own, so they raise naming it;
* **caveat** flags pass with a logged warning: they can silently change which of the requested
  nodes dbt runs.

Flags are recognised as dbt's command line (click) reads them: ``--flag value``,
``--flag=value``, short forms (``-s``, ``-m``, ``-t``, ``-f``, ``-x``), short forms with the value
attached (``-sfoo``) and clusters of short flags (``-xs foo``). Click does not expand
abbreviations, so ``--full`` or ``--sel`` are not those flags: they pass, and dbt reports them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum

from dbt_graph._errors import ExtraArgsError

logger = logging.getLogger("dbt_graph")


class _Kind(Enum):
    BLOCKED = "blocked"
    FIRST_CLASS = "first-class"
    CAVEAT = "caveat"


@dataclass(frozen=True)
class _Flag:
    name: str  # the spelling messages use
    takes_value: bool
    kind: _Kind
    why: str  # why it is blocked, the parameter to use instead, or the caveat


_SELECTS = "the orchestrator selects exactly the nodes to run"


def _blocked(name: str, why: str) -> _Flag:
    return _Flag(name, True, _Kind.BLOCKED, why)


def _first_class(name: str, parameter: str, *, takes_value: bool = True) -> _Flag:
    return _Flag(name, takes_value, _Kind.FIRST_CLASS, parameter)


def _caveat(name: str, why: str, *, takes_value: bool = True) -> _Flag:
    return _Flag(name, takes_value, _Kind.CAVEAT, why)


#: Every spelling of the guide's flags.
_TABLE: Mapping[str, _Flag] = {
    spelling: flag
    for spellings, flag in (
        (("--select", "-s"), _blocked("--select", _SELECTS)),
        (("--models", "--model", "-m"), _blocked("--models", _SELECTS)),
        (("--exclude",), _blocked("--exclude", _SELECTS)),
        (("--selector",), _blocked("--selector", _SELECTS)),
        (
            ("--indirect-selection",),
            _blocked("--indirect-selection", "the orchestrator places tests itself"),
        ),
        (("--project-dir",), _blocked("--project-dir", "the project comes from the settings")),
        (
            ("--target-path",),
            _blocked("--target-path", "the executor decides where dbt writes its artifacts"),
        ),
        (("--profiles-dir",), _blocked("--profiles-dir", "the profiles come from the settings")),
        (("--log-level",), _blocked("--log-level", "the executor captures dbt's log itself")),
        (
            ("--full-refresh", "-f"),
            _first_class("--full-refresh", "full_refresh=True", takes_value=False),
        ),
        (("--target", "-t"), _first_class("--target", 'target="..."')),
        (("--threads",), _first_class("--threads", "threads=N")),
        (
            ("--defer", "--no-defer", "--deprecated-defer"),
            _first_class("--defer", "defer=True", takes_value=False),
        ),
        (("--state", "--deprecated-state"), _first_class("--state", "state_path=Path(...)")),
        (("--defer-state",), _first_class("--defer-state", "defer_state_path=Path(...)")),
        (
            ("--favor-state", "--no-favor-state", "--deprecated-favor-state"),
            _first_class("--favor-state", "favor_state=True", takes_value=False),
        ),
        (
            ("--resource-type", "--resource-types"),
            _caveat("--resource-type", "it can silently drop requested nodes of other types"),
        ),
        (
            ("--exclude-resource-type", "--exclude-resource-types"),
            _caveat("--exclude-resource-type", "it can silently drop requested nodes"),
        ),
        (
            ("--fail-fast", "-x"),
            _caveat(
                "--fail-fast",
                "one failure makes dbt skip the other nodes of the same invocation",
                takes_value=False,
            ),
        ),
    )
    for spelling in spellings
}

#: dbt options outside the table that take exactly one value, skipped whatever it looks like.
_ONE_VALUE = frozenset(
    {
        "--vars",
        "--log-path",
        "--log-level-file",
        "--log-format",
        "--log-format-file",
        "--printer-width",
        "--event-time-start",
        "--event-time-end",
        "--sample",
        "--profile",
        "--warn-error-options",
        "--partial-parse-file-path",
        "--record-timing-info",
        "--output",
        "--output-keys",
    }
)

#: dbt's short options and whether each takes a value: needed to read clusters like ``-xs foo``.
_SHORT_TAKES_VALUE = {
    "f": False,
    "m": True,
    "o": True,
    "q": False,
    "r": True,
    "s": True,
    "t": True,
    "v": False,
    "V": False,
    "x": False,
}


def check_extra_args(args: Iterable[str] | None) -> tuple[str, ...]:
    """Check extra dbt arguments against the guide's table; return them as a tuple.

    Raises:
        ExtraArgsError: A blocked flag (the message says why) or a first-class flag (the
            message names the parameter to use instead). It is a ``ValueError``.
        TypeError: An argument is not a string.

    >>> check_extra_args(["--vars", "{day: 1}", "--full"])
    ('--vars', '{day: 1}', '--full')
    >>> check_extra_args(["-sorders"])
    Traceback (most recent call last):
    ...
    dbt_graph._errors.ExtraArgsError: Cannot pass '--select' via extra_cli_args: the \
orchestrator selects exactly the nodes to run
    >>> check_extra_args(["--threads=4"])
    Traceback (most recent call last):
    ...
    dbt_graph._errors.ExtraArgsError: Cannot pass '--threads' via extra_cli_args; use the \
threads parameter instead (threads=N).
    """
    tokens = tuple(args or ())
    for token in tokens:
        if not isinstance(token, str):
            raise TypeError(f"extra CLI arguments must be strings, got {token!r}")
    for flag, spelled in _flags_in(tokens):
        if flag.kind is _Kind.BLOCKED:
            raise ExtraArgsError(
                f"Cannot pass {flag.name!r} via extra_cli_args: {flag.why}", flag=flag.name
            )
        if flag.kind is _Kind.FIRST_CLASS:
            raise ExtraArgsError(
                f"Cannot pass {flag.name!r} via extra_cli_args; use the "
                f"{flag.why.split('=')[0]} parameter instead ({flag.why}).",
                flag=flag.name,
            )
        logger.warning(
            "Passing %r (as %r) to dbt: %s. Prefer selecting the nodes to run.",
            flag.name,
            spelled,
            flag.why,
        )
    return tokens


def _flags_in(tokens: tuple[str, ...]) -> Iterator[tuple[_Flag, str]]:
    """Each flag of the table in ``tokens``, with the token that spelled it."""
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if token == "--":
            return
        if token.startswith("--"):
            name, has_value, _ = token.partition("=")
            flag = _TABLE.get(name)
            if flag is not None:
                yield flag, token
            if not has_value:
                i = i + 1 if name in _ONE_VALUE else _after_values(tokens, i, flag)
        elif token.startswith("-") and len(token) > 1:
            i = yield from _short_cluster(tokens, i, token)


def _short_cluster(tokens: tuple[str, ...], i: int, token: str) -> Iterator[tuple[_Flag, str]]:
    """The flags of a cluster such as ``-xs``; returns where the next option starts."""
    for position, char in enumerate(token[1:], start=1):
        flag = _TABLE.get(f"-{char}")
        if flag is not None:
            yield flag, token
        takes_value = _SHORT_TAKES_VALUE.get(char)
        if takes_value is None:
            break  # not a dbt short option: dbt reports it
        if takes_value:
            # The rest of the token is the value (-sfoo), or the value follows (-s foo).
            return _after_values(tokens, i, flag) if position == len(token) - 1 else i
    return i


def _after_values(tokens: tuple[str, ...], i: int, flag: _Flag | None) -> int:
    """Step over the value(s) of an option given without ``=``."""
    if flag is not None and not flag.takes_value:
        return i
    # dbt's commands take no positional arguments, so the tokens up to the next option are this
    # option's values (--select takes several; an unknown option may take one).
    while i < len(tokens) and not tokens[i].startswith("-"):
        i += 1
    return i
